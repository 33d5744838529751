"""The camera node under rclpy: configure fails, with the reason, when the device is missing."""

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed: ROS-only node tests run where it is")
pytest.importorskip("vlac_msgs", reason="vlac_msgs is not built: source the workspace's install/setup.bash")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from piper_driver.ros.camera_node import CameraNode  # noqa: E402


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def test_camera_node_configure_fails_on_a_missing_device(ros):
    node = CameraNode(
        parameter_overrides=[Parameter("device", value="/dev/video97"), Parameter("autostart", value=False)]
    )
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    finally:
        node.destroy_node()
