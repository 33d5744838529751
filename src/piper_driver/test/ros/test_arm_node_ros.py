"""The one arm node under rclpy, with either backend chosen by its ``backend`` parameter.

sim: it publishes what a real arm's driver and camera nodes publish, rendering on one thread.
sdk: against the fake PiPER on python-can's virtual bus, configure connects, activate enables, a
PolicyAction moves the arm through the envelope, e-stop refuses motion; configure fails when no arm answers.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import uuid

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: ROS node tests run where it is")
pytest.importorskip("vlac_msgs.msg", reason="vlac_msgs is not built in this workspace")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.action import GoalResponse  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from piper_driver.fake_piper import FakePiper  # noqa: E402
from piper_driver.robot import RobotState  # noqa: E402
from piper_driver.ros.arm_node import ArmNode  # noqa: E402
from piper_driver.sim.node_arm import SimNodeArm  # noqa: E402
from vlac_core.config import ConfigError  # noqa: E402
from vlac_core.ros.background_spin import BackgroundSpin  # noqa: E402
from vlac_msgs.action import ResetArm  # noqa: E402
from vlac_msgs.msg import PolicyAction  # noqa: E402


def _sim_node(**parameters) -> ArmNode:
    """The arm node on the sim backend: a small sweep scene, plus ``parameters``."""
    values = {"backend": "sim", "task": "sweep", "image_size_px": 32, **parameters}
    return ArmNode("sim_node", parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])


def test_sim_backend_publishes_arm_state_and_camera_images_and_its_start_state_id():
    rclpy.init()
    try:
        node = _sim_node(camera_rate_hz=20.0)
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
        assert node._on_reset_goal(_goal("random", seed=6)) == GoalResponse.ACCEPT
        assert node.arm.reset("random", seed=6).ok
        reply = node._on_start_state_id(Trigger.Request(), Trigger.Response())
        assert reply.success and reply.message == "sweep-seed6"
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
    original_images = SimNodeArm.images

    def images_recording_thread(self):
        render_threads.add(threading.get_ident())
        return original_images(self)

    monkeypatch.setattr(SimNodeArm, "images", images_recording_thread)
    unraisable: list = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    rclpy.init()
    try:
        node = _sim_node(camera_rate_hz=50.0, wrist_camera=True)
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
        spinner = BackgroundSpin(executor)
        # Besides the executor's own workers, publish from plain threads at the same time.
        callers = [threading.Thread(target=_call_repeatedly, args=(node._publish_images, 5)) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=60.0)
        assert enough.wait(timeout=60.0), f"only {len(frames)} camera frames in 60 s"
        assert render_threads == {node._owner.ident}, "rendering left the render thread"
        spinner.stop()
        node.destroy_node()
        probe.destroy_node()
        assert node._owner.closed and node.arm is None
        assert not any(t.ident == node._owner.ident for t in threading.enumerate()), "render thread still running"
        del node
        gc.collect()
        assert unraisable == [], [f"{u.exc_type.__name__}: {u.exc_value}" for u in unraisable]
    finally:
        rclpy.try_shutdown()


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


def test_sdk_backend_configure_activate_and_a_policy_action_moves_the_arm(ros):
    with FakePiper(f"vcan_{uuid.uuid4().hex[:10]}") as fake:
        node = ArmNode(
            "driver_node",
            parameter_overrides=[
                Parameter("backend", value="sdk"),
                Parameter("can_port", value=fake.channel),
                Parameter("bustype", value="virtual"),
                Parameter("autostart", value=False),
                # Not under test: a loaded machine can stall the fake arm's feedback past 0.5 s.
                Parameter("link_timeout_s", value=10.0),
            ],
        )
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert node.arm.safe_arm.status().state is RobotState.ENABLED
            assert node._on_reset_goal(_goal("random", seed=1)) == GoalResponse.REJECT  # a real arm only homes
            assert not node._on_start_state_id(Trigger.Request(), Trigger.Response()).success
            start_x = fake.pose_mm_deg[0]
            msg = PolicyAction()
            msg.delta.dx_mm, msg.delta.open = 20, 1
            msg.obs_stamp = node.get_clock().now().to_msg()
            node._on_policy_action(msg)
            assert spin_until(node, lambda: abs(fake.pose_mm_deg[0] - (start_x + 20.0)) < 2.0)
            assert node._on_estop(Trigger.Request(), Trigger.Response()).success
            assert node.arm.safe_arm.status().state is RobotState.ESTOPPED
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        finally:
            node.destroy_node()


def test_sdk_backend_configure_fails_when_no_arm_answers(ros):
    node = ArmNode(
        "driver_node",
        parameter_overrides=[
            Parameter("backend", value="sdk"),
            Parameter("can_port", value=f"vcan_{uuid.uuid4().hex[:10]}"),
            Parameter("bustype", value="virtual"),
            Parameter("autostart", value=False),
        ],
    )
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.arm is None  # nothing half-open is kept
    finally:
        node.destroy_node()


def test_an_unknown_backend_fails_at_start_up_naming_the_choices(ros):
    with pytest.raises(ConfigError, match=r"backend.*gazebo.*sdk.*sim"):
        ArmNode("arm_node", parameter_overrides=[Parameter("backend", value="gazebo")])


def _goal(mode: str, seed: int = 0) -> ResetArm.Goal:
    goal = ResetArm.Goal()
    goal.mode, goal.seed = mode, seed
    return goal


def _call_repeatedly(fn, times: int) -> None:
    for _ in range(times):
        fn()
