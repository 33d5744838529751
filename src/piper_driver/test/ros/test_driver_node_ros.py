"""The driver and camera nodes under rclpy (ROS 2 docker image only).

The driver node runs against the fake PiPER on python-can's virtual bus: configure connects,
activate enables, a PolicyAction moves the arm through the envelope, e-stop refuses motion.
"""

import time
import uuid

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed: ROS-only node tests run in the ROS 2 image")
pytest.importorskip("vlac_msgs", reason="vlac_msgs is not built: source the workspace's install/setup.bash")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from piper_driver.fake_piper import FakePiper  # noqa: E402
from piper_driver.robot import RobotState  # noqa: E402
from piper_driver.ros.camera_node import CameraNode  # noqa: E402
from piper_driver.ros.driver_node import DriverNode  # noqa: E402
from vlac_msgs.msg import PolicyAction  # noqa: E402


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def spin_until(node, predicate, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.02)
        if predicate():
            return True
    return predicate()


def test_configure_activate_and_a_policy_action_moves_the_arm(ros):
    with FakePiper(f"vcan_{uuid.uuid4().hex[:10]}") as fake:
        node = DriverNode(
            parameter_overrides=[
                Parameter("can_port", value=fake.channel),
                Parameter("bustype", value="virtual"),
                Parameter("autostart", value=False),
                # Not under test: a loaded machine can stall the fake arm's feedback past 0.5 s.
                Parameter("link_timeout_s", value=10.0),
            ]
        )
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert node.arm.status().state is RobotState.ENABLED
            start_x = fake.pose_mm_deg[0]
            msg = PolicyAction()
            msg.delta.dx_mm, msg.delta.open = 20, 1
            msg.obs_stamp = node.get_clock().now().to_msg()
            node._on_policy_action(msg)
            assert spin_until(node, lambda: abs(fake.pose_mm_deg[0] - (start_x + 20.0)) < 2.0)
            assert node._on_estop(Trigger.Request(), Trigger.Response()).success
            assert node.arm.status().state is RobotState.ESTOPPED
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        finally:
            node.destroy_node()


def test_configure_fails_when_no_arm_answers(ros):
    node = DriverNode(
        parameter_overrides=[
            Parameter("can_port", value=f"vcan_{uuid.uuid4().hex[:10]}"),
            Parameter("bustype", value="virtual"),
            Parameter("autostart", value=False),
        ]
    )
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.arm is None  # nothing half-open is kept
    finally:
        node.destroy_node()


def test_camera_node_configure_fails_on_a_missing_device(ros):
    node = CameraNode(
        parameter_overrides=[Parameter("device", value="/dev/video97"), Parameter("autostart", value=False)]
    )
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    finally:
        node.destroy_node()
