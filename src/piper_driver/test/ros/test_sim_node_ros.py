"""The sim node in a real ROS 2 graph: it publishes what the driver and camera nodes publish.

Runs in the ROS 2 docker image (rclpy and a built vlac_msgs); skipped elsewhere.
"""

from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: the sim node test runs in the ROS image")
pytest.importorskip("vlac_msgs.msg", reason="vlac_msgs is not built in this workspace")
pytest.importorskip("mujoco", reason="the sim node runs MuJoCo")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402

from piper_driver.ros.sim_node import SimNode  # noqa: E402


def test_sim_node_publishes_arm_state_and_camera_images():
    rclpy.init()
    try:
        node = SimNode(
            parameter_overrides=[
                Parameter("task", value="sweep"),
                Parameter("image_size_px", value=32),
                Parameter("camera_rate_hz", value=20.0),
            ]
        )
        probe = rclpy.create_node("sim_node_probe")
        received: dict[str, object] = {}
        probe.create_subscription(JointState, "joint_states_single", lambda m: received.setdefault("joints", m), 10)
        probe.create_subscription(PoseStamped, "end_pose_stamped", lambda m: received.setdefault("pose", m), 10)
        probe.create_subscription(
            Image, "front_camera/image_raw", lambda m: received.setdefault("image", m), qos_profile_sensor_data
        )
        executor = MultiThreadedExecutor()
        executor.add_node(node)
        executor.add_node(probe)
        node.trigger_configure()
        node.trigger_activate()
        deadline = time.monotonic() + 10.0
        while len(received) < 3 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert set(received) == {"joints", "pose", "image"}
        assert list(received["joints"].name) == ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]
        assert received["pose"].header.frame_id == "base_link"
        assert (received["image"].height, received["image"].width, received["image"].encoding) == (32, 32, "rgb8")
        node.destroy_node()
        probe.destroy_node()
    finally:
        rclpy.try_shutdown()
