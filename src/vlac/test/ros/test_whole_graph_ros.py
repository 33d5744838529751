"""The whole ROS graph as processes: sim node(s), actor, critic, trainer and episode manager(s).

Started from the node list ``vlac.graph.node_list`` computes for the launch file (console scripts
from install/, the session YAML as the parameter file plus the per-arm overrides), on tiny random
models. One arm: RunEpisode goals complete with feedback and a result, every episode's MCAP bag is
on disk and readable, the trainer announces version 1 and later episodes' actions carry it; the
trainer is killed (SIGKILL) without waiting for a checkpoint of its latest episode and restarted:
it reads the missing episode back from its bag, so one more episode makes the next update (version
2); Ctrl-C (SIGINT) of the episode manager mid-episode keeps the steps recorded so far, as a
``shutdown`` episode (the embedded session's word for it).
Two arms (arm_0, arm_1): goals on both at once complete, the one critic scores both arms' requests,
both arms' next episodes carry the new version, and every topic that the shipped rqt perspective and rviz
config show is one the graph publishes. Every wait is on a message or a file with a
generous deadline: the machine may be loaded.
"""

from __future__ import annotations

import ast
import json
import signal
import sys
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: the graph runs as rclpy processes")
pytest.importorskip("vlac_msgs.action", reason="vlac_msgs is not built in this workspace")

import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph_processes import INSTALL, GraphProcesses, Probe  # noqa: E402
from session_helpers import build_models  # noqa: E402

from vlac.graph import node_list  # noqa: E402
from vlac_core.bag import inspect_bag, read_episode  # noqa: E402
from vlac_msgs.action import RunEpisode  # noqa: E402
from vlac_trainer.training_state import load_training_state  # noqa: E402

REPO = INSTALL.parent
TASK = "Pick up the bowl and put it on the plate"
STEPS = 2
START_S = 300.0  # seven Python processes importing torch and loading models on two shared cores
EPISODE_S = 180.0
UPDATE_S = 300.0

pytestmark = pytest.mark.skipif(
    not (INSTALL / "vlac" / "lib" / "vlac" / "episode_manager_node").exists(),
    reason="the workspace is not built (colcon build): the graph runs the installed console scripts",
)


def write_session(root: Path) -> Path:
    """A session file in the shipped form, in <root>/config/, its relative paths under <root>."""
    build_models(root / "models")
    sections = {
        "/**/sim_node": {"task": "pick_bowl", "image_size_px": 64, "camera_rate_hz": 10.0},
        "actor_node": {"checkpoint_path": "models/actor", "devices": ["cpu"], "seed": 0},
        "critic_node": {"checkpoint": "models/critic", "device": "cpu", "max_new_tokens": 4},
        "trainer_node": {
            "checkpoint_path": "models/actor",
            "output_dir": "out/trainer",
            "learning_rate": 1e-4,
            "episodes_per_update": 2,
            "checkpoint_every_episodes": 1000,  # saved after updates only: a kill loses received episodes
            "minibatch_size": 4,
            "update_epochs": 1,
            "value_warmup_updates": 0,
        },
        "/**/episode_manager": {
            "task": TASK,
            "max_steps": STEPS,
            "observe_delay_s": 0.05,
            "front_image_max_age_s": 5.0,
            "service_timeout_s": 120.0,
            "bag_dir": "out/bags",
        },
    }
    path = root / "config" / "session.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    return path


@pytest.fixture
def graph(tmp_path, request):
    arms = request.param
    config = write_session(tmp_path)
    specs = node_list(config, arms)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = GraphProcesses(specs, logs)
    rclpy.init()
    probe = Probe([f"arm_{k}" for k in range(arms)])
    procs.start()
    try:
        assert probe.wait_servers(START_S), f"run_episode servers not up in {START_S} s\n{procs.logs()}"
        wait_ready(probe, procs)
        yield procs, probe, tmp_path
    finally:
        procs.close()
        probe.close()
        rclpy.try_shutdown()


def wait_ready(probe: Probe, procs: GraphProcesses) -> None:
    """Critic model loaded, actor serving, trainer subscribed to /episodes as the probe sees it. The arm's
    publisher may match the trainer later (discovery is pairwise): an episode sent before reaches no one on
    the volatile topic, and the trainer reads it back from its bag at its next rescans (bag_rescan_s, 10 s)."""
    probe.wait_for(lambda: "pairs_scored" in (probe.diagnostic("critic_node") or {}), START_S, "critic", procs.logs)
    probe.wait_for(lambda: probe.diagnostic("actor_node"), START_S, "actor diagnostics", procs.logs)
    probe.wait_for(lambda: probe.diagnostic("trainer_node"), START_S, "trainer diagnostics", procs.logs)
    probe.wait_for(lambda: probe.episodes_subscribers() >= 2, START_S, "trainer on /episodes", procs.logs)


def run_round(probe: Probe, procs: GraphProcesses, namespaces: list[str], max_steps: int = STEPS):
    """One training episode on each arm at once; checks goal, feedback, result and bag; the results."""
    calls = {ns: probe.send(ns, RunEpisode.Goal(max_steps=max_steps)) for ns in namespaces}
    results = {}
    for ns, call in calls.items():
        assert call.done.wait(EPISODE_S), f"{ns}: no RunEpisode result in {EPISODE_S} s\n{procs.logs()}"
        assert call.accepted and call.succeeded, f"{ns}: status {call.status}, {call.result}\n{procs.logs()}"
        result = call.result
        assert result.termination in ("step_limit", "done") and 1 <= result.length <= max_steps
        # Feedback and result travel on different channels: the last step's feedback may come after the result.
        assert call.wait_feedback(result.length, EPISODE_S), f"{ns}: {len(call.feedback)} feedback messages"
        assert len(call.feedback) == result.length, "one feedback per recorded step"
        assert [f.step for f in call.feedback] == list(range(1, result.length + 1))
        episode = read_episode(result.bag_path)  # finished, readable MCAP on disk
        assert (episode.episode_id, episode.robot_id, episode.length) == (result.episode_id, ns, result.length)
        results[ns] = result
    return results


def monitored_topics() -> set[str]:
    """The topics config/vlac_session.perspective (rqt) and rviz/vlac_session.rviz show.

    rqt_plot names a topic and its field (/arm_0/reward/data: topic /arm_0/reward); the image view and rviz's
    displays name topics."""
    topics = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "topics" and isinstance(value, dict):  # rqt_plot: a repr'd list of topic/field
                    topics.update(entry.rsplit("/", 1)[0] for entry in ast.literal_eval(value["repr"]))
                elif key == "topic" and isinstance(value, dict):  # rqt_image_view: a repr'd topic
                    topics.add(ast.literal_eval(value["repr"]))
                elif key == "Topic" and isinstance(value, dict) and "Value" in value:  # rviz
                    topics.add(value["Value"])
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((REPO / "config" / "vlac_session.perspective").read_text()))
    walk(yaml.safe_load((REPO / "rviz" / "vlac_session.rviz").read_text()))
    return topics


def test_the_monitored_topics_are_read_from_both_configs():
    topics = monitored_topics()
    assert {"/arm_0/reward", "/trainer/loss", "/trainer/prior_kl", "/arm_0/front_camera/image_raw"} <= topics
    assert "/arm_1/end_pose_stamped" in topics  # from the rviz config
    assert all(t.startswith("/") and not t.endswith("/data") for t in topics), topics


def trainer_checkpoint_ids(out: Path) -> list[str]:
    state = load_training_state(out / "trainer" / "trainer")
    return list(state.counters["ingested_ids"]) if state is not None else []


@pytest.mark.parametrize("graph", [1], indirect=True)
def test_one_arm_trains_survives_a_trainer_kill_and_keeps_a_ctrl_c_episode(graph):
    procs, probe, root = graph
    out, arm = root / "out", ["arm_0"]
    results = [run_round(probe, procs, arm)["arm_0"] for _ in range(2)]

    # Two training episodes make an update: version 1 is announced, the actor loads it, actions carry it.
    probe.wait_for(lambda: 1 in probe.versions, UPDATE_S, "policy version 1", procs.logs)
    probe.wait_for(
        lambda: (probe.diagnostic("actor_node") or {}).get("replica_versions") == "1",
        UPDATE_S,
        "actor on version 1",
        procs.logs,
    )
    results.append(run_round(probe, procs, arm)["arm_0"])
    assert inspect_bag(results[-1].bag_path).policy_versions == (1,)

    # SIGKILL the trainer without waiting for its latest episode to be checkpointed (only the first
    # update's save, the one its version 1 restarts from); the restarted one reads the rest back from bags.
    ids = [r.episode_id for r in results]
    probe.wait_for(lambda: trainer_checkpoint_ids(out), UPDATE_S, "the first update's checkpoint", procs.logs)
    subscribers = probe.episodes_subscribers()  # the probe's and the trainer's
    procs.signal("/trainer_node", signal.SIGKILL)
    only_in_bags = set(ids) - set(trainer_checkpoint_ids(out))
    # The last episode ran after version 1 was published, so after that update's save: only its bag has it.
    assert ids[-1] in only_in_bags, (ids, only_in_bags)
    # Until discovery drops the dead trainer's /episodes subscription, a count could not tell the new one from it.
    probe.wait_for(
        lambda: probe.episodes_subscribers() < subscribers, START_S, "the killed trainer to leave", procs.logs
    )
    probe.forget_diagnostics("trainer_node")
    procs.start("/trainer_node")
    restored = probe.wait_for(
        lambda: probe.diagnostic("trainer_node"), START_S, "restarted trainer's diagnostics", procs.logs
    )
    probe.wait_for(lambda: probe.episodes_subscribers() >= 2, START_S, "restarted trainer on /episodes", procs.logs)
    assert restored["episodes_received"] == str(len(ids)) and restored["policy_version"] == "1", restored
    assert restored["reingested_episodes"] == str(len(only_in_bags)), (only_in_bags, restored)
    # Two new episodes make an update: the one read back from its bag and one more.
    results.append(run_round(probe, procs, arm)["arm_0"])
    probe.wait_for(lambda: 2 in probe.versions, UPDATE_S, "policy version 2 after the restart", procs.logs)

    # Ctrl-C of the episode manager mid-episode: the steps recorded so far stay in the bag.
    call = probe.send("arm_0", RunEpisode.Goal(max_steps=40))
    assert call.wait_feedback(2, EPISODE_S), f"no 2 steps of feedback in {EPISODE_S} s\n{procs.logs()}"
    assert procs.signal("/arm_0/episode_manager", signal.SIGINT) == 0, procs.logs()
    known = {Path(r.bag_path) for r in results}
    bags = [b for b in (out / "bags" / "arm_0" / "train").iterdir() if b not in known]
    assert len(bags) == 1, bags
    info = inspect_bag(bags[0])
    assert info.episode.length >= 2, info.summary()
    assert info.episode.termination.value == "shutdown", info.summary()


@pytest.mark.parametrize("graph", [2], indirect=True)
def test_two_arms_share_the_critic_and_the_new_policy_version(graph):
    procs, probe, _root = graph
    arms = ["arm_0", "arm_1"]
    first = run_round(probe, procs, arms)  # both arms' episodes run at once: one update's worth
    # The one critic node scored both arms' requests: each step asks it for progress and done.
    # Both counters are awaited in one status: a status published between a step's progress and its done call
    # counts the pair but not yet the frame, and the diagnostics are the node's periodic snapshot.
    steps = sum(r.length for r in first.values())

    def counts_every_step(status: dict[str, str] | None) -> bool:
        return bool(status) and min(int(status["pairs_scored"]), int(status["images_done_checked"])) >= steps

    probe.wait_for(
        lambda: counts_every_step(probe.diagnostic("critic_node")),
        START_S,
        f"critic diagnostics counting {steps} scored pairs and {steps} done-checked frames",
        procs.logs,
    )
    sent = probe.wait_for(
        lambda: {m.robot_id for m in probe.episodes} >= set(arms) and probe.episodes, START_S, "/episodes", procs.logs
    )
    assert {m.robot_id for m in sent} == set(arms)

    probe.wait_for(lambda: 1 in probe.versions, UPDATE_S, "policy version 1", procs.logs)
    probe.wait_for(
        lambda: (probe.diagnostic("actor_node") or {}).get("replica_versions") == "1",
        UPDATE_S,
        "actor on version 1",
        procs.logs,
    )
    second = run_round(probe, procs, arms)
    assert {ns: inspect_bag(r.bag_path).policy_versions for ns, r in second.items()} == {ns: (1,) for ns in arms}
    # What rqt and rviz are set up to show is what the graph publishes (a renamed topic would plot nothing).
    wanted = monitored_topics()
    probe.wait_for(lambda: wanted <= probe.topic_names(), START_S, f"the monitored topics {sorted(wanted)}", procs.logs)
    assert {inspect_bag(r.bag_path).episode.robot_id for r in second.values()} == set(arms)
