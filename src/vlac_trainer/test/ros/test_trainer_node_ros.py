"""The trainer node in a live ROS graph: episodes in, policy versions out, announced so late joiners converge.

A tiny policy is trained from episodes published on /episodes; after episodes_per_update of them a
PolicyVersion with version 1 and a loadable checkpoint folder is announced on /policy_version, and
/trainer_backlog tells the arms how many episodes wait for an update at every change. The
trainer announces the version it starts from too, transient-local: after a restart, a subscriber
that joins later still gets the resumed version (the actor then serves what the trainer trains).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed here; runs in the ROS 2 docker image")
pytest.importorskip("vlac_msgs.msg", reason="vlac_msgs is not built (colbuild the workspace in the ROS image)")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ppo_trainer_helpers as h  # noqa: E402

from vlac_core.config import ConfigError  # noqa: E402
from vlac_core.convert import episode_to_msg  # noqa: E402
from vlac_core.ros.background_spin import BackgroundSpin  # noqa: E402
from vlac_core.ros.message_set import rclpy_message_set  # noqa: E402
from vlac_core.ros.qos import EPISODES_QOS  # noqa: E402
from vlac_msgs.msg import Episode, PolicyVersion, TrainerBacklog  # noqa: E402
from vlac_trainer.ros.trainer_node import TrainerNode  # noqa: E402

#: A late joiner's view of /policy_version: transient-local, deep enough to keep every version seen.
LATE_JOINER_QOS = QoSProfile(
    depth=10, reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL
)
WAIT_S = 120.0


def wait_until(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Graph:
    """A trainer node and a peer node (publisher of /episodes, subscriber of /policy_version and
    /trainer_backlog) spinning."""

    def __init__(self, overrides: list[Parameter]) -> None:
        self.node = TrainerNode(parameter_overrides=overrides)
        self.peer = rclpy.create_node("peer")
        self.versions: list[PolicyVersion] = []
        self.peer.create_subscription(PolicyVersion, "/policy_version", self.versions.append, LATE_JOINER_QOS)
        self.backlogs: list[TrainerBacklog] = []
        self.peer.create_subscription(TrainerBacklog, "/trainer_backlog", self.backlogs.append, LATE_JOINER_QOS)
        self.episodes = self.peer.create_publisher(Episode, "/episodes", EPISODES_QOS)
        self.executor = MultiThreadedExecutor()
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        self.spinner = BackgroundSpin(self.executor)

    def close(self) -> None:
        self.spinner.stop()
        self.node.destroy_node()  # finishes the running update and saves the training state
        self.peer.destroy_node()


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def test_episodes_in_versions_out_and_a_restarted_trainer_announces_its_resumed_version(ros, tmp_path):
    policy_dir = h.build_policy_dir(tmp_path / "policy")
    overrides = [
        Parameter("checkpoint_path", value=str(policy_dir)),
        Parameter("output_dir", value=str(tmp_path / "out")),
        Parameter("episodes_per_update", value=2),
        Parameter("minibatch_size", value=4),
        Parameter("update_epochs", value=1),
    ]
    msgs = rclpy_message_set()
    graph = Graph(overrides)
    try:
        wait_until(lambda: graph.versions, "the start announcement")
        assert (graph.versions[0].version, graph.versions[0].checkpoint_path) == (0, str(policy_dir))
        wait_until(lambda: graph.episodes.get_subscription_count() > 0, "the trainer's /episodes subscription")

        malformed = episode_to_msg(h.episode("bad", [0.2], seed=9), msgs)
        malformed.transitions[0].progress_parsed, malformed.transitions[0].progress_pct = True, math.nan
        graph.episodes.publish(malformed)
        wait_until(lambda: graph.node.malformed_episodes == 1, "the malformed episode to be dropped")

        for i in range(2):
            graph.episodes.publish(episode_to_msg(h.episode(f"e{i}", [0.2, -0.1], seed=i), msgs))
        wait_until(lambda: any(v.version == 1 for v in graph.versions), "policy version 1")
        published = next(v for v in graph.versions if v.version == 1).checkpoint_path
        assert (Path(published) / "value_head.safetensors").exists()
        assert graph.node.trainer.status.episodes_received == 2
        # the backlog the arms hold back on: empty at start, one per episode, emptied by the update, in order
        wait_until(lambda: len(graph.backlogs) >= 4, "the backlog after the update took its batch")
        assert [b.waiting_episodes for b in graph.backlogs] == [0, 1, 2, 0]
        assert {b.episodes_per_update for b in graph.backlogs} == {2}
    finally:
        graph.close()

    restarted = Graph(overrides)  # its peer subscribes after the restart: a late joiner
    try:
        wait_until(lambda: restarted.versions, "the resumed trainer's announcement")
        assert (restarted.versions[0].version, restarted.versions[0].checkpoint_path) == (1, published)
        assert restarted.node.trainer.status.episodes_received == 2
        wait_until(lambda: restarted.backlogs, "the resumed trainer's backlog")
        assert restarted.backlogs[-1].waiting_episodes == 0 and restarted.backlogs[-1].policy_version == 1
    finally:
        restarted.close()


def test_a_missing_checkpoint_fails_at_start_naming_the_path(ros, tmp_path):
    missing = tmp_path / "no_policy"
    with pytest.raises(ConfigError, match=str(missing)):
        TrainerNode(
            parameter_overrides=[
                Parameter("checkpoint_path", value=str(missing)),
                Parameter("output_dir", value=str(tmp_path / "out")),
            ]
        )


def test_a_trainer_started_on_recorded_bags_trains_the_episodes_it_does_not_hold(ros, tmp_path):
    """A trainer that died before saving (or was down while episodes were sent) reads them back from
    the arms' bag folders at start; one sent on /episodes as well is taken once."""
    from vlac_core.bag import write_episode

    policy_dir = h.build_policy_dir(tmp_path / "policy")
    bags = [tmp_path / "bags" / f"arm_{k}" / "train" for k in (0, 1)]
    episodes = [h.episode(f"arm_{k}-e{k}", [0.2, -0.1], seed=k, robot_id=f"arm_{k}") for k in (0, 1)]
    for folder, episode in zip(bags, episodes, strict=True):
        write_episode(folder / episode.episode_id, episode)
    (bags[0] / "arm_0-unfinished").mkdir()  # a bag still being written: its episode comes on /episodes
    overrides = [
        Parameter("checkpoint_path", value=str(policy_dir)),
        Parameter("output_dir", value=str(tmp_path / "out")),
        Parameter("bag_dirs", value=[str(b) for b in bags] + [str(tmp_path / "no_arm_yet")]),
        Parameter("episodes_per_update", value=2),
        Parameter("minibatch_size", value=4),
        Parameter("update_epochs", value=1),
    ]
    graph = Graph(overrides)
    try:
        assert graph.node.reingested == 2
        wait_until(lambda: any(v.version == 1 for v in graph.versions), "policy version 1 from the recorded episodes")
        wait_until(lambda: graph.episodes.get_subscription_count() > 0, "the trainer's /episodes subscription")
        graph.episodes.publish(episode_to_msg(episodes[0], rclpy_message_set()))  # already read back
        graph.episodes.publish(episode_to_msg(h.episode("arm_0-new", [0.1], seed=5), rclpy_message_set()))
        wait_until(lambda: graph.node.trainer.status.episodes_received == 3, "the new episode")
        assert sorted(graph.node.trainer.ingested_ids) == ["arm_0-e0", "arm_0-new", "arm_1-e1"]
    finally:
        graph.close()


def test_an_episode_recorded_while_the_trainer_runs_but_never_received_is_read_back_from_its_bag(ros, tmp_path):
    """/episodes is volatile: an episode sent before the arm's publisher matched the trainer reaches no one,
    and the read-back at start has run. The node's rescan finds the finished bag and trains on it."""
    from vlac_core.bag import write_episode

    policy_dir = h.build_policy_dir(tmp_path / "policy")
    bags = tmp_path / "bags" / "arm_0" / "train"
    overrides = [
        Parameter("checkpoint_path", value=str(policy_dir)),
        Parameter("output_dir", value=str(tmp_path / "out")),
        Parameter("bag_dirs", value=[str(bags)]),
        Parameter("bag_rescan_s", value=0.2),
        Parameter("episodes_per_update", value=2),
    ]
    graph = Graph(overrides)
    try:
        wait_until(lambda: graph.versions, "the start announcement")
        assert graph.node.reingested == 0
        lost = h.episode("arm_0-lost", [0.2, -0.1], seed=3)
        write_episode(bags / lost.episode_id, lost)  # recorded, its message never sent
        # counted once the scan is through (the episode is submitted during it)
        wait_until(lambda: graph.node.late_bag_episodes == 1, "the lost episode read back")
        assert graph.node.trainer.ingested_ids == ["arm_0-lost"]
    finally:
        graph.close()


def test_each_update_publishes_its_defined_figures_on_trainer_topics_as_it_logs_them(ros, tmp_path):
    """rqt_plot's view of training: every trainer/<name> topic carries what updates.jsonl records for that update,
    the KL anchor's and the lessons' figures included, and a figure an update leaves undefined (the first lesson
    has no past to agree with) is not published rather than published as a zero."""
    from std_msgs.msg import Float64

    from vlac_trainer.online.update_log import TOPIC_STATS, read_update_log

    policy_dir = h.build_policy_dir(tmp_path / "policy")
    overrides = [
        Parameter("checkpoint_path", value=str(policy_dir)),
        Parameter("output_dir", value=str(tmp_path / "out")),
        Parameter("episodes_per_update", value=2),
        Parameter("minibatch_size", value=2),  # steps after the first minibatch's move off pi_old and the prior
        Parameter("update_epochs", value=1),
        Parameter("value_warmup_updates", value=0),
        Parameter("prior_kl_coef", value=1.0),
        Parameter("lesson_agreement", value=True),
    ]
    msgs = rclpy_message_set()
    graph = Graph(overrides)
    received: dict[str, list[float]] = {name: [] for name in TOPIC_STATS}
    for name in TOPIC_STATS:
        graph.peer.create_subscription(
            Float64, f"/trainer/{name}", lambda msg, name=name: received[name].append(msg.data), 10
        )
    try:
        wait_until(lambda: graph.episodes.get_subscription_count() > 0, "the trainer's /episodes subscription")
        wait_until(lambda: graph.node.stat_pubs["policy_version"].get_subscription_count() > 0, "the stat topics")
        actor = h.load(policy_dir)  # the episodes carry the log-probs the starting policy sampled them with
        for i in range(4):
            episode = h.sampled(actor, h.episode(f"e{i}", [0.2, -0.1, 0.3, -0.2][: 3 + i % 2], seed=i))
            graph.episodes.publish(episode_to_msg(episode, msgs))
        wait_until(lambda: len(received["policy_version"]) == 2, "two updates' figures")
        records = read_update_log(tmp_path / "out" / "trainer")
        assert [r["policy_version"] for r in records] == [1, 2]
        expected = {name: [r[field] for r in records if r[field] is not None] for name, field in TOPIC_STATS.items()}
        assert len(expected["prior_kl"]) == 2 and len(expected["lesson_norm"]) == 2 and expected["prior_kl"][1] > 0
        assert len(expected["lesson_agreement"]) == 1  # the second lesson's agreement with the first only
        wait_until(
            lambda: all(len(received[n]) == len(v) for n, v in expected.items()),
            f"every defined figure: {expected} logged, {received} received",
        )
        assert received.keys() == expected.keys()
        for name, values in expected.items():  # pytest.approx compares flat sequences only (nested: an error)
            assert received[name] == pytest.approx(values), name
    finally:
        graph.close()
