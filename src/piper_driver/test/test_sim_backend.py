"""SimBackend behaves like a RobotBackend: moves by the action, refuses when it must, snapshots exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from piper_driver.robot import MotionRefused, RobotState
from piper_driver.safe_arm import SafeArm
from piper_driver.sim.backend import SimBackend, SimConfig
from piper_driver.sim.tasks import make_task
from vlac_core.types import DeltaAction, EndPose


@pytest.fixture(scope="module")
def sim() -> SimBackend:
    backend = SimBackend(make_task("pick_bowl"), SimConfig(image_size_px=64))
    backend.connect()
    return backend


@pytest.fixture
def arm(sim: SimBackend) -> SimBackend:
    sim.resume()
    sim.reset(0)
    sim.enable()
    return sim


def test_execute_moves_the_flange_by_the_delta(arm):
    before = arm.observe().end_pose.as_array()
    arm.execute(DeltaAction(20, -15, -10, 0, 0, 5, 1))
    arm.wait_until_still(1.0)
    after = arm.observe().end_pose.as_array()
    np.testing.assert_allclose(after[:3] - before[:3], [20, -15, -10], atol=1.5)
    assert abs(((after[5] - before[5] + 180) % 360 - 180) - 5) < 1.0


def test_gripper_closes_and_opens_in_mm(arm):
    assert arm.observe().gripper_mm == pytest.approx(70.0, abs=1.0)
    arm.execute(DeltaAction(0, 0, 0, 0, 0, 0, 0))
    arm.wait_until_still(1.0)
    assert arm.observe().gripper_mm < 5.0
    arm.execute(DeltaAction(0, 0, 0, 0, 0, 0, 1))
    arm.execute(DeltaAction(0, 0, 0, 0, 0, 0, 1))
    assert arm.observe().gripper_mm > 60.0


def test_a_move_takes_the_control_period_of_simulated_time(arm):
    start = arm.observe().stamp_s
    arm.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    assert arm.observe().stamp_s - start == pytest.approx(arm.config.control_period_s, abs=1e-9)


def test_external_clock_mode_shows_the_arm_moving_mid_action():
    backend = SimBackend(make_task("sweep"), SimConfig(image_size_px=64, step_mode="external"))
    backend.connect()
    backend.enable()
    start = backend.observe()
    backend.execute(DeltaAction(0, 0, -30, 0, 0, 0, 1))
    assert backend.observe().stamp_s == start.stamp_s  # nothing happens until the clock owner steps
    backend.advance(0.1)
    halfway = backend.observe()
    assert halfway.moving
    assert start.end_pose.z_mm - 25 < halfway.end_pose.z_mm < start.end_pose.z_mm - 5
    assert backend.wait_until_still(2.0)
    assert backend.observe().end_pose.z_mm == pytest.approx(start.end_pose.z_mm - 30, abs=1.5)


def test_motion_is_refused_unless_enabled_and_counted(sim):
    sim.reset(1)
    sim.disable()
    with pytest.raises(MotionRefused, match="connected"):
        sim.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1))
    assert sim.status().counters["refused_connected"] >= 1


def test_emergency_stop_latches_until_resumed(arm):
    arm.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    arm.emergency_stop()
    assert arm.status().state is RobotState.ESTOPPED
    with pytest.raises(MotionRefused, match="emergency stop"):
        arm.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    with pytest.raises(MotionRefused):
        arm.enable()
    held = arm.observe().end_pose.as_array()
    arm.advance(0.5)
    np.testing.assert_allclose(arm.observe().end_pose.as_array()[:3], held[:3], atol=1.0)
    arm.resume()
    assert arm.status().accepts_motion
    arm.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))


def test_home_returns_to_the_task_home_pose(arm):
    arm.execute(DeltaAction(25, 25, -20, 0, 0, 10, 0))
    arm.execute(DeltaAction(25, 25, -20, 0, 0, 10, 0))
    arm.home()
    np.testing.assert_allclose(arm.observe().end_pose.as_array()[:3], arm.task.home_pose[:3], atol=2.0)


def test_restoring_a_snapshot_reproduces_the_same_future(arm):
    actions = [
        DeltaAction(15, -10, -20, 0, 0, 3, 1),
        DeltaAction(-5, 20, -25, 0, 2, 0, 0),
        DeltaAction(0, 0, 25, 1, 0, 0, 0),
    ]
    arm.execute(DeltaAction(5, 5, -10, 0, 0, 0, 1))
    snapshot = arm.save_state()

    def future():
        poses = []
        for action in actions:
            arm.execute(action)
            poses.append(np.concatenate([arm.observe().end_pose.as_array(), arm.describe()["bowl_m"]]))
        return np.array(poses)

    first = future()
    arm.reset(7)  # somewhere else entirely
    arm.restore_state(snapshot)
    second = future()
    np.testing.assert_array_equal(first, second)


def test_snapshot_of_another_task_is_refused(arm):
    other = SimBackend(make_task("sweep"), SimConfig(image_size_px=64))
    other.connect()
    with pytest.raises(ValueError, match="snapshot"):
        arm.restore_state(other.save_state())


def test_move_to_takes_an_absolute_target(arm):
    pose = arm.observe().end_pose.as_array()
    target = pose + np.array([30.0, 0.0, -30.0, 0.0, 0.0, 0.0])
    arm.move_to(EndPose.from_array(target), 70.0)
    arm.wait_until_still(1.0)
    np.testing.assert_allclose(arm.observe().end_pose.as_array()[:3], target[:3], atol=1.5)


def test_front_and_wrist_images_are_rgb_frames_of_the_configured_size():
    backend = SimBackend(make_task("pick_bowl"), SimConfig(image_size_px=48, wrist_camera=True))
    backend.connect()
    front, wrist = backend.images()
    for image in (front, wrist):
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert image.std() > 5  # a scene, not a blank frame
    assert not np.array_equal(front, wrist)
    observation = backend.observation(robot_id="arm_0", seq=3)
    assert observation.task == "Pick up the bowl and put it on the plate"
    assert len(observation.images) == 2 and observation.gripper_open


def test_arms_on_their_own_threads_render_one_at_a_time_and_see_what_they_would_alone():
    # Concurrent GL work of several contexts crashed sessions inside mjr_readPixels (render.GL_LOCK says why).
    from piper_driver.sim import render

    backends = [SimBackend(make_task("pick_bowl"), SimConfig(image_size_px=48)) for _ in range(3)]
    threads = [ThreadPoolExecutor(1) for _ in backends]  # one thread per arm, as evaluation arms have
    try:
        for thread, backend, seed in zip(threads, backends, (1, 2, 3), strict=True):
            thread.submit(backend.connect).result()
            thread.submit(backend.reset, seed).result()
        alone = [thread.submit(b.images).result() for thread, b in zip(threads, backends, strict=True)]
        held = []
        for backend in backends:
            gl = backend._renderer._renderer  # the mujoco.Renderer: record whether the lock is held inside it

            def spy(original=gl.render):
                held.append(render.GL_LOCK.locked())
                return original()

            gl.render = spy
        together = [f.result() for f in [t.submit(b.images) for t, b in zip(threads, backends, strict=True)]]
        assert held == [True] * 3  # each arm's frame was drawn holding the lock
        for a, b in zip(alone, together, strict=True):
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert not np.array_equal(alone[0][0], alone[1][0])  # three scenes, not one
    finally:
        for thread, backend in zip(threads, backends, strict=True):
            thread.submit(backend.disconnect).result()
            thread.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"control_period_s": 0.0}, "control_period_s"),
        ({"image_size_px": 8}, "image_size_px"),
        ({"step_mode": "realtime"}, "step_mode"),
        ({"gripper_open_mm": 120.0}, "gripper_open_mm"),
    ],
)
def test_bad_config_names_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        SimConfig(**kwargs)


def test_sim_is_drivable_through_the_safety_envelope(arm):
    safe = SafeArm(arm, clock=arm.sim_time_s)
    observed = arm.observe()
    safe.execute(DeltaAction(20, 0, -10, 0, 0, 0, 1), obs_stamp_s=observed.stamp_s)
    arm.wait_until_still(1.0)
    moved = arm.observe().end_pose.as_array() - observed.end_pose.as_array()
    np.testing.assert_allclose(moved[:3], [20, 0, -10], atol=1.5)
    with pytest.raises(MotionRefused, match="stale"):  # that observation is older than a second of sim time now
        arm.advance(1.0)
        safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=observed.stamp_s)


def test_an_arm_from_a_menagerie_folder_is_attached_to_the_scene(tmp_path, monkeypatch):
    """The Menagerie code path, exercised with a stand-in: our own arm written as ``piper.xml``.

    The real Menagerie model is not available here; this pins the attach mechanics (names,
    TCP site and wrist camera added, actuators found), not Menagerie's meshes or inertias.
    """
    import re

    from piper_driver.sim import model as sim_model

    arm_xml = (
        '<mujoco model="piper"><compiler angle="radian" autolimits="true"/><asset>'
        '<material name="arm"/><material name="joint"/><material name="finger"/></asset>'
        f"<worldbody>{sim_model.own_arm_xml()}</worldbody><actuator>{sim_model.actuators_xml()}</actuator></mujoco>"
    )
    arm_xml = re.sub(r'<(site name="tcp"|camera name="wrist")[^>]*/>', "", arm_xml)  # Menagerie has neither
    (tmp_path / "piper.xml").write_text(arm_xml)
    monkeypatch.setenv(sim_model.MENAGERIE_ENV, str(tmp_path))
    backend = SimBackend(make_task("pick_bowl"), SimConfig(image_size_px=32, wrist_camera=True))
    backend.connect()
    backend.enable()
    before = backend.observe().end_pose.z_mm
    backend.execute(DeltaAction(0, 0, -20, 0, 0, 0, 1))
    backend.wait_until_still(1.0)
    assert backend.observe().end_pose.z_mm == pytest.approx(before - 20, abs=1.5)
    assert len(backend.images()) == 2


def test_a_menagerie_folder_without_the_model_is_refused(tmp_path, monkeypatch):
    from piper_driver.sim import model as sim_model

    monkeypatch.setenv(sim_model.MENAGERIE_ENV, str(tmp_path))
    with pytest.raises(ConnectionError, match=r"piper\.xml"):
        SimBackend(make_task("sweep")).connect()
