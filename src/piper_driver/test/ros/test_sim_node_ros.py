"""The sim node in a real ROS 2 graph: it publishes what the driver and camera nodes publish.

Needs rclpy and a built vlac_msgs (the pinned wheels or a sourced ROS 2); skipped elsewhere.
"""

from __future__ import annotations

import gc
import sys
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: the sim node test runs in the ROS image")
pytest.importorskip("vlac_msgs.msg", reason="vlac_msgs is not built in this workspace")
pytest.importorskip("mujoco", reason="the sim node runs MuJoCo")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402

from piper_driver.ros.sim_node import SimNode  # noqa: E402
from piper_driver.sim.node_core import SimNodeCore  # noqa: E402


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


def test_rendering_from_several_executor_threads_stays_on_one_thread_and_the_node_is_destroyed_cleanly(monkeypatch):
    """The EGL context lives on the node's render thread: camera callbacks on any thread, then destroy.

    Before the render thread, a second thread's render failed with EGL_BAD_ACCESS (eglMakeCurrent)
    and ``Renderer.__del__`` failed the same way when the node was dropped.
    """
    render_threads: set[int] = set()
    original_images = SimNodeCore.images

    def images_recording_thread(self):
        render_threads.add(threading.get_ident())
        return original_images(self)

    monkeypatch.setattr(SimNodeCore, "images", images_recording_thread)
    unraisable: list = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    rclpy.init()
    try:
        node = SimNode(
            parameter_overrides=[
                Parameter("task", value="sweep"),
                Parameter("image_size_px", value=32),
                Parameter("camera_rate_hz", value=50.0),
                Parameter("wrist_camera", value=True),
            ]
        )
        probe = rclpy.create_node("sim_node_render_probe")
        frames: list[Image] = []
        enough = threading.Event()

        def on_image(msg: Image) -> None:
            frames.append(msg)
            if len(frames) >= 20:
                enough.set()

        probe.create_subscription(Image, "front_camera/image_raw", on_image, qos_profile_sensor_data)
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.add_node(probe)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        # Besides the executor's own workers, publish from plain threads at the same time.
        callers = [threading.Thread(target=_call_repeatedly, args=(node._publish_images, 5)) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=60.0)
        assert enough.wait(timeout=60.0), f"only {len(frames)} camera frames in 60 s"
        assert render_threads == {node._render.ident}, "rendering left the render thread"
        executor.shutdown(timeout_sec=30.0)
        spinner.join(timeout=30.0)
        node.destroy_node()
        probe.destroy_node()
        assert node._render.closed and node.core is None
        assert not any(t.ident == node._render.ident for t in threading.enumerate()), "render thread still running"
        del node
        gc.collect()
        assert unraisable == [], [f"{u.exc_type.__name__}: {u.exc_value}" for u in unraisable]
    finally:
        rclpy.try_shutdown()


def _call_repeatedly(fn, times: int) -> None:
    for _ in range(times):
        fn()
