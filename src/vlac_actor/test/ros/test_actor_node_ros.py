"""The actor node under rclpy: GetAction through the pool, bad input refused, reload on PolicyVersion.

The trainer announces its version on a transient-local topic: an actor that starts after the
announcement still loads it (a late actor, or an actor restarted after the trainer resumed).
"""

import math
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed: ROS-only node tests run in the ROS 2 image")
pytest.importorskip("vlac_msgs", reason="vlac_msgs is not built: source the workspace's install/setup.bash")

from actor_testing import make_observation  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from vlac_actor.ros.actor_node import ActorNode  # noqa: E402
from vlac_core.config import ConfigError  # noqa: E402
from vlac_core.convert import observation_to_msg  # noqa: E402
from vlac_core.ros.background_spin import BackgroundSpin  # noqa: E402
from vlac_core.ros.message_set import rclpy_message_set  # noqa: E402
from vlac_core.ros.qos import POLICY_VERSION_QOS  # noqa: E402
from vlac_msgs.msg import PolicyVersion  # noqa: E402
from vlac_msgs.srv import GetAction  # noqa: E402


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def _call(executor, client, request, timeout_s=60.0):
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=timeout_s)
    assert future.done(), "no answer from get_action"
    return future.result()


def test_actor_node_serves_actions_refuses_bad_input_and_reloads(ros, policy_dir, policy_dir_v2):
    node = ActorNode(
        parameter_overrides=[
            Parameter("checkpoint_path", value=str(policy_dir)),
            Parameter("policy_version", value=1),
            Parameter("devices", value=["cpu", "cpu"]),
            Parameter("seed", value=0),
        ]
    )
    client_node = rclpy.create_node("actor_test_client")
    executor = MultiThreadedExecutor(num_threads=8)
    executor.add_node(node)
    executor.add_node(client_node)
    msgs = rclpy_message_set()
    try:
        client = client_node.create_client(GetAction, "get_action")
        assert client.wait_for_service(timeout_sec=10.0)
        request = GetAction.Request(observation=observation_to_msg(make_observation(1), msgs), greedy=True)
        reply = _call(executor, client, request)
        assert reply.ok, reply.error
        assert reply.action.policy_version == 1 and reply.action.text.startswith("{x: ")
        assert reply.queue_wait_s >= 0.0 and len(reply.action.token_logprobs) > 0

        far = GetAction.Request(observation=observation_to_msg(make_observation(1, z_mm=5000.0), msgs))
        refused = _call(executor, client, far)
        assert not refused.ok and "outside the arm's range" in refused.error

        for spoil, reason in (
            (lambda m: setattr(m.images[0], "encoding", "mono16"), "mono16"),
            (lambda m: setattr(m, "task", "  "), "empty task"),
            (lambda m: setattr(m.end_pose, "y_mm", math.nan), "y_mm"),
        ):
            bad = observation_to_msg(make_observation(1), msgs)
            spoil(bad)
            refused = _call(executor, client, GetAction.Request(observation=bad))
            assert not refused.ok and reason in refused.error, refused.error
        assert _call(executor, client, request).ok  # still serving

        publisher = client_node.create_publisher(PolicyVersion, "policy_version", POLICY_VERSION_QOS)
        deadline = time.monotonic() + 60
        while max(node.service.pool.versions) < 2 and time.monotonic() < deadline:
            publisher.publish(PolicyVersion(version=2, checkpoint_path=str(policy_dir_v2)))
            executor.spin_once(timeout_sec=0.2)
        assert node.service.wait_for_version(2, timeout_s=60)
        assert _call(executor, client, request).action.policy_version == 2
    finally:
        executor.shutdown()
        client_node.destroy_node()
        node.destroy_node()


def start_late_actor(policy_dir, policy_dir_v2, trainer_parameters: dict):
    """A trainer stand-in with ``trainer_parameters`` announces version 3; then an actor starts and spins."""
    trainer_stand_in = rclpy.create_node("trainer_announcer")
    for name, value in trainer_parameters.items():
        trainer_stand_in.declare_parameter(name, value)
    publisher = trainer_stand_in.create_publisher(PolicyVersion, "/policy_version", POLICY_VERSION_QOS)
    publisher.publish(PolicyVersion(version=3, checkpoint_path=str(policy_dir_v2)))  # no actor exists yet
    node = ActorNode(
        parameter_overrides=[
            Parameter("checkpoint_path", value=str(policy_dir)),
            Parameter("devices", value=["cpu"]),
            Parameter("seed", value=0),
        ]
    )
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    executor.add_node(trainer_stand_in)
    spinner = BackgroundSpin(executor)

    def stop():
        spinner.stop()
        node.destroy_node()
        trainer_stand_in.destroy_node()

    return node, stop


def test_an_actor_started_after_the_announcement_loads_the_trainers_version(ros, policy_dir, policy_dir_v2):
    node, stop = start_late_actor(policy_dir, policy_dir_v2, {"max_task_chars": 300, "policy_version": 0})
    try:
        assert node.service.wait_for_version(3, timeout_s=120), node.service.diagnostics()
        assert node.trainer_mismatch == ""
    finally:
        stop()


def test_a_version_from_a_trainer_with_other_input_checks_is_refused(ros, policy_dir, policy_dir_v2):
    node, stop = start_late_actor(policy_dir, policy_dir_v2, {"max_task_chars": 40})
    try:
        deadline = time.monotonic() + 120
        while not node.trainer_mismatch:
            assert time.monotonic() < deadline, "the announcement was never checked"
            time.sleep(0.05)
        assert "/trainer_announcer.max_task_chars = 40 but /actor.max_task_chars = 300" in node.trainer_mismatch
        assert node.service.pool.versions == (0,)
    finally:
        stop()


def test_a_missing_checkpoint_fails_at_start_naming_the_path(ros, tmp_path):
    missing = tmp_path / "no_policy"
    with pytest.raises(ConfigError, match=str(missing)):
        ActorNode(parameter_overrides=[Parameter("checkpoint_path", value=str(missing))])
