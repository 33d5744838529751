"""The episode manager node in a live ROS graph (runs in the ROS 2 docker image; skipped without rclpy).

Checks the node's interface: the run_episode action server, the rqt_plot topics and the episode
stream for the trainer exist with the right types, and a goal with no actor, critic or arm behind
it ends as an aborted goal instead of hanging, with the reason in the result's ``error`` and on
/diagnostics; a goal without a task says so too. In autorun with backpressure the node starts no episode
while the trainer's /trainer_backlog says a batch waits, and goes on once an update has taken it. Against
the sim arm node, its fresh starts cycle over its scene pool, and a restarted node goes on in the cycle.
"""

from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed here; runs in the ROS 2 docker image")
pytest.importorskip("vlac_msgs.action", reason="vlac_msgs is not built (colbuild the workspace in the ROS image)")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from vlac.ros.episode_manager_node import EpisodeManagerNode, ShutdownFlag  # noqa: E402
from vlac_core.ros.action_client import RecordedActionClient  # noqa: E402
from vlac_core.ros.background_spin import BackgroundSpin  # noqa: E402
from vlac_core.ros.qos import TRAINER_BACKLOG_QOS  # noqa: E402
from vlac_msgs.action import RunEpisode  # noqa: E402
from vlac_msgs.msg import TrainerBacklog  # noqa: E402

WAIT_S = 60.0  # generous: the machine may be loaded


def wait_until(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def manager_node(tmp_path, service_timeout_s: float = 1.0, **params) -> EpisodeManagerNode:
    """An episode manager with its bags in ``tmp_path``, a task, and ``params`` on top."""
    values = {
        "bag_dir": str(tmp_path),
        "service_timeout_s": service_timeout_s,
        "task": "Pick up the bowl and put it on the plate",
        **params,
    }
    return EpisodeManagerNode(parameter_overrides=[Parameter(name, value=value) for name, value in values.items()])


@pytest.fixture
def graph(tmp_path):
    rclpy.init()
    node = manager_node(tmp_path)
    client_node = rclpy.create_node("test_client")
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.add_node(client_node)
    spinner = BackgroundSpin(executor)
    yield node, client_node
    spinner.stop()
    node.destroy_node()
    client_node.destroy_node()
    rclpy.try_shutdown()


def test_interface_topics_and_action(graph):
    _node, client_node = graph
    deadline = time.monotonic() + 5
    names = {}
    while time.monotonic() < deadline:
        names = dict(client_node.get_topic_names_and_types())
        if "/reward" in names:
            break
        time.sleep(0.1)
    for topic in ("/reward", "/progress_pct", "/value_pct", "/done_prob", "/success_rate", "/intervention_rate"):
        assert names[topic] == ["std_msgs/msg/Float64"]
    assert names["/episode_summary"] == ["vlac_msgs/msg/EpisodeSummary"]
    assert names["/episodes"] == ["vlac_msgs/msg/Episode"]
    assert names["/policy_action"] == ["vlac_msgs/msg/PolicyAction"]


def test_a_goal_without_an_arm_is_aborted_not_hung(graph):
    _, client_node = graph
    client = RecordedActionClient(client_node, RunEpisode, "run_episode")
    assert client.wait_for_server(timeout_sec=5)
    send = client.send_goal_async(RunEpisode.Goal(max_steps=2))
    deadline = time.monotonic() + 10
    while not send.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    result_future = send.result().get_result_async()
    while not result_future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    result = result_future.result().result
    assert result.aborted and result.termination == "aborted"
    assert "not available within 1.0 s" in result.error, result.error  # why, in the result itself


def test_a_goal_with_the_actor_and_critic_down_is_aborted_and_diagnostics_say_why(graph):
    _, client_node = graph
    reports: list = []
    errored = threading.Event()

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "episode manager" in status.name and "get_action" in values.get("last_error", ""):
                reports.append((status, values))
                errored.set()

    client_node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    client = RecordedActionClient(client_node, RunEpisode, "run_episode")
    assert client.wait_for_server(timeout_sec=60)
    done = threading.Event()
    outcome = {}

    def on_result(future) -> None:
        outcome["result"], outcome["status"] = future.result().result, future.result().status
        done.set()

    client.send_goal_async(RunEpisode.Goal(max_steps=2)).add_done_callback(
        lambda f: f.result().get_result_async().add_done_callback(on_result)
    )
    assert done.wait(60.0), "the goal hung with the actor and critic down"
    assert outcome["result"].aborted and outcome["result"].termination == "aborted"
    assert outcome["result"].length == 0 and outcome["result"].episode_id == ""
    assert "/get_action" in outcome["result"].error and "/score_done" in outcome["result"].error
    assert errored.wait(60.0), "no /diagnostics report naming the missing actor"
    status, values = reports[-1]
    assert status.level == DiagnosticStatus.ERROR
    assert status.message == "actor and critic node down: episodes cannot run"
    assert (values["actor_service"], values["critic_services"]) == ("down", "down")
    assert "/score_progress" in values["last_error"] and "/score_done" in values["last_error"]


def test_a_goal_without_a_task_says_so_in_its_result(tmp_path):
    rclpy.init()
    node = EpisodeManagerNode(parameter_overrides=[Parameter("bag_dir", value=str(tmp_path))])
    client_node = rclpy.create_node("test_client")
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.add_node(client_node)
    spinner = BackgroundSpin(executor)
    try:
        client = RecordedActionClient(client_node, RunEpisode, "run_episode")
        assert client.wait_for_server(timeout_sec=60)
        done, outcome = threading.Event(), {}

        def on_result(future) -> None:
            outcome["result"] = future.result().result
            done.set()

        client.send_goal_async(RunEpisode.Goal(max_steps=2)).add_done_callback(
            lambda f: f.result().get_result_async().add_done_callback(on_result)
        )
        assert done.wait(60.0), "no result for a goal without a task"
        result = outcome["result"]
        assert (result.aborted, result.length) == (True, 0)
        assert result.error == "no task: set episode_manager.task or the goal's task"
        assert node.last_error == result.error
    finally:
        spinner.stop()
        node.destroy_node()
        client_node.destroy_node()
        rclpy.try_shutdown()


def test_the_stop_flag_reads_set_once_the_context_is_down_before_any_callback_runs():
    """SIGINT shuts the rclpy context in its signal handler: a step failing then is a shutdown, not an abort."""
    context = rclpy.Context()
    context.init()
    flag = ShutdownFlag(context)
    assert not flag.is_set()
    context.shutdown()  # what rclpy's SIGINT handler does; no Python code of ours has run
    assert flag.is_set()
    live = rclpy.Context()
    live.init()
    explicit = ShutdownFlag(live)
    explicit.set()  # destroy_node's way, with the context still up
    assert explicit.is_set() and live.ok()
    live.shutdown()


def test_autorun_holds_its_next_episode_while_the_trainer_has_a_batch_waiting(tmp_path):
    rclpy.init()
    node = manager_node(tmp_path, service_timeout_s=0.2, autorun_episodes=-1, max_waiting_batches=1)
    # Each autorun attempt first checks the actor and critic (down here, so it retries every second): count them.
    attempts, check = [], node._peers_missing
    node._peers_missing = lambda: (attempts.append(1), check())[1]
    trainer = rclpy.create_node("trainer_stand_in")
    backlog = trainer.create_publisher(TrainerBacklog, "/trainer_backlog", TRAINER_BACKLOG_QOS)
    reports: list[str] = []

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            reports.extend(kv.value for kv in status.values if kv.key == "trainer_backlog")

    trainer.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.add_node(trainer)
    spinner = BackgroundSpin(executor)
    try:
        wait_until(lambda: len(attempts) >= 1, "an autorun attempt before the trainer is heard (nothing waits)")
        backlog.publish(TrainerBacklog(waiting_episodes=4, episodes_per_update=4, policy_version=3))
        wait_until(lambda: node.holding, "autorun to hold on a full batch")
        held_at = len(attempts)
        backlog.publish(TrainerBacklog(waiting_episodes=3, episodes_per_update=4, policy_version=3))
        wait_until(lambda: len(attempts) > held_at, "autorun to go on once fewer than a batch wait")
        backlog.publish(TrainerBacklog(waiting_episodes=8, episodes_per_update=4, policy_version=3))
        wait_until(lambda: node.holding, "autorun to hold again")
        held_at, seen = len(attempts), len(reports)
        # two diagnostics periods (1 s each) say so, longer than one retry of a free autorun: none came
        wait_until(lambda: reports[seen:].count("8 waiting, limit 4: holding autorun") >= 2, "the hold on /diagnostics")
        assert len(attempts) == held_at
    finally:
        spinner.stop()
        node.destroy_node()  # the stop flag releases the held autorun thread
        wait_until(lambda: not node.holding, "the stop flag to release autorun")
        trainer.destroy_node()
        rclpy.try_shutdown()


@pytest.mark.parametrize(("recorded", "expected"), [(0, [40, 41, 40]), (3, [41, 40, 41])])
def test_fresh_starts_through_the_sim_node_cycle_over_the_scene_pool_and_a_restart_goes_on_in_it(
    tmp_path, recorded, expected
):
    """The arm's reset_arm goals follow the embedded session's rule (SceneSeeds): a pool of 2 from seed 40; a
    node restarted on a folder with 3 recorded episodes starts at position 3 mod 2 of the same pool."""
    from piper_driver.ros.arm_node import ArmNode

    for k in range(recorded):
        (tmp_path / "train" / f"episode_{k}").mkdir(parents=True)
    rclpy.init()
    node = manager_node(tmp_path, service_timeout_s=WAIT_S, scene_seed=40, scene_pool=2)
    values = {"backend": "sim", "task": "sweep", "image_size_px": 32, "camera_rate_hz": 20.0}
    arm = ArmNode("sim_node", parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.add_node(arm)
    arm.trigger_configure()
    arm.trigger_activate()
    spinner = BackgroundSpin(executor)
    try:
        drawn = [node.robot.reset(None) for _ in expected]
        assert [s.state_id for s in drawn] == [f"sweep-seed{seed}" for seed in expected]
        assert [s.params["seed"] for s in drawn] == expected
    finally:
        spinner.stop()
        node.destroy_node()
        arm.destroy_node()
        rclpy.try_shutdown()
