"""The arm node's sim backend without ROS: actions through the envelope on the node's clock, resets by
mode with the one start-state id, cameras and diagnostics; and the backend parameter's choices."""

from __future__ import annotations

import numpy as np
import pytest

from piper_driver.node_arm import ArmBackendChoice, SdkNodeArm, node_arm_class
from piper_driver.robot import MotionRefused
from piper_driver.sim.node_arm import SimNodeArm
from piper_driver.sim.node_config import SimNodeConfig
from vlac_core.config import ConfigError, from_mapping
from vlac_core.types import DeltaAction


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def arm(clock):
    served = SimNodeArm(SimNodeConfig(task="sweep", image_size_px=40, wrist_camera=True), clock)
    served.enable()
    yield served
    served.close()


def _run_ticks(arm, clock, n):
    for _ in range(n):
        clock.now_s += arm.config.physics_tick_s
        arm.tick()


def test_an_action_moves_the_arm_only_as_the_clock_ticks(arm, clock):
    start = arm.safe_arm.observe().end_pose
    arm.safe_arm.execute(DeltaAction(0, 0, -30, 0, 0, 0, 1), obs_stamp_s=clock.now_s)
    assert arm.safe_arm.observe().end_pose == start  # the node's timer has not run yet
    _run_ticks(arm, clock, 5)  # 0.1 s of the 0.2 s move
    assert arm.safe_arm.observe().moving
    _run_ticks(arm, clock, 15)
    assert arm.safe_arm.observe().end_pose.z_mm == pytest.approx(start.z_mm - 30, abs=1.5)


def test_actions_pass_the_safety_envelope_on_the_node_clock(arm, clock):
    arm.safe_arm.execute(DeltaAction(0, 0, -30, 0, 0, 0, 1), obs_stamp_s=clock.now_s)
    clock.now_s += 1.0
    with pytest.raises(MotionRefused, match="safety envelope"):
        arm.safe_arm.execute(DeltaAction(0, 0, -30, 0, 0, 0, 1), obs_stamp_s=clock.now_s - 5.0)  # stale
    assert arm.safe_arm.status().counters["safety.rejected.stale"] == 1


def test_reset_modes_and_the_start_state_id(arm):
    assert arm.start_state_id() is None  # no reset yet
    outcome = arm.reset("random", seed=4)
    assert outcome.ok and outcome.end_pose is not None
    assert arm.start_state_id() == "sweep-seed4"  # the one scheme, as the embedded session's arms
    scene_4 = arm.sim.backend.describe()["trash_m"].copy()
    arm.reset("random", seed=9)
    assert not np.allclose(arm.sim.backend.describe()["trash_m"], scene_4)
    assert arm.reset("stored", state_id="sweep-seed4").ok
    np.testing.assert_array_equal(arm.sim.backend.describe()["trash_m"], scene_4)
    assert arm.start_state_id() == "sweep-seed4"
    assert arm.reset("home").ok
    unknown = arm.reset("stored", state_id="nope")
    assert not unknown.ok and "'nope'" in unknown.message and "seed" in unknown.message
    teleport = arm.reset("teleport")
    assert not teleport.ok and "mode" in teleport.message


def test_home_is_refused_with_a_reason_when_estopped(arm):
    arm.safe_arm.emergency_stop()
    outcome = arm.reset("home")
    assert not outcome.ok and "emergency stop" in outcome.message


def test_cameras_and_diagnostics(arm):
    assert [(c.name, c.topic) for c in arm.cameras] == [
        ("front", "front_camera/image_raw"),
        ("wrist", "wrist_camera/image_raw"),
    ]
    frames = arm.images()
    assert set(frames) == {"front", "wrist"} and frames["front"].shape == (40, 40, 3)
    extra = arm.diagnostics_extra()
    assert extra["task"] == "sweep" and extra["ground_truth_success"] == "false"
    assert arm.identity() == ("simulated PiPER (sweep)", "sim:sweep")


def test_bad_node_parameters_name_the_key():
    with pytest.raises(ConfigError, match="task"):
        from_mapping(SimNodeConfig, {"task": "fold_towel"})
    with pytest.raises(ConfigError, match="fog"):
        from_mapping(SimNodeConfig, {"variation": "lighting,fog"})
    with pytest.raises(ConfigError, match="image_size_px"):
        from_mapping(SimNodeConfig, {"image_size_px": 4})


def test_the_backend_parameter_picks_the_node_arm_and_names_the_choices():
    assert node_arm_class("sim") is SimNodeArm and node_arm_class("sdk") is SdkNodeArm
    assert from_mapping(ArmBackendChoice, {"backend": "sim"}).backend == "sim"
    with pytest.raises(ConfigError, match=r"backend.*sdk.*sim"):
        from_mapping(ArmBackendChoice, {"backend": "gazebo"})
    with pytest.raises(ValueError, match="gazebo"):
        node_arm_class("gazebo")
