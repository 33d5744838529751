"""The sim node's core: actions through the envelope on an external clock, resets by mode, stored states."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the sim node's core runs the MuJoCo simulation")

from piper_driver.robot import MotionRefused
from piper_driver.sim.node_config import SimNodeConfig
from piper_driver.sim.node_core import SimNodeCore
from vlac_core.config import ConfigError, from_mapping
from vlac_core.types import DeltaAction


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def core():
    clock = FakeClock()
    sim = SimNodeCore(SimNodeConfig(task="sweep", image_size_px=40, wrist_camera=True), clock)
    sim.start()
    sim.arm.enable()
    sim.clock = clock
    return sim


def _run_ticks(core, n):
    for _ in range(n):
        core.clock.now_s += core.config.physics_tick_s
        core.tick()


def test_an_action_moves_the_arm_only_as_the_clock_ticks(core):
    start = core.arm.observe().end_pose
    core.arm.execute(DeltaAction(0, 0, -30, 0, 0, 0, 1), obs_stamp_s=core.clock.now_s)
    assert core.arm.observe().end_pose == start  # the node's timer has not run yet
    _run_ticks(core, 5)  # 0.1 s of the 0.2 s move
    assert core.arm.observe().moving
    _run_ticks(core, 15)
    assert core.arm.observe().end_pose.z_mm == pytest.approx(start.z_mm - 30, abs=1.5)


def test_actions_pass_the_safety_envelope(core):
    core.arm.execute(DeltaAction(0, 0, -30, 0, 0, 0, 1), obs_stamp_s=core.clock.now_s)
    core.clock.now_s += 1.0
    with pytest.raises(MotionRefused, match="safety envelope"):
        core.arm.execute(DeltaAction(0, 0, -30, 0, 0, 0, 1), obs_stamp_s=core.clock.now_s - 5.0)  # stale
    assert core.arm.status().counters["safety.rejected.stale"] == 1


def test_reset_modes(core):
    outcome = core.reset("random", seed=4)
    assert outcome.ok and outcome.end_pose is not None
    scene_4 = core.backend.describe()["trash_m"].copy()
    state_id = core.store_state()
    core.reset("random", seed=9)
    assert not np.allclose(core.backend.describe()["trash_m"], scene_4)
    assert core.reset("stored", state_id=state_id).ok
    np.testing.assert_array_equal(core.backend.describe()["trash_m"], scene_4)
    assert core.reset("home").ok
    unknown = core.reset("stored", state_id="nope")
    assert not unknown.ok and state_id in unknown.message
    assert not core.reset("teleport").ok


def test_home_is_refused_with_a_reason_when_estopped(core):
    core.arm.emergency_stop()
    outcome = core.reset("home")
    assert not outcome.ok and "emergency stop" in outcome.message


def test_cameras_and_diagnostics(core):
    frames = core.images()
    assert set(frames) == {"front", "wrist"} and frames["front"].shape == (40, 40, 3)
    extra = core.diagnostics_extra()
    assert extra["task"] == "sweep" and extra["ground_truth_success"] == "false"


def test_bad_node_parameters_name_the_key():
    with pytest.raises(ConfigError, match="task"):
        from_mapping(SimNodeConfig, {"task": "fold_towel"})
    with pytest.raises(ConfigError, match="fog"):
        from_mapping(SimNodeConfig, {"variation": "lighting,fog"})
    with pytest.raises(ConfigError, match="image_size_px"):
        from_mapping(SimNodeConfig, {"image_size_px": 4})
