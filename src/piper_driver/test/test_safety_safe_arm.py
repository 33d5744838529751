"""SafeArm: every move goes through the envelope; rejections move nothing; the watchdog holds."""

import math
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piper_driver.config_checks import ConfigError
from piper_driver.fake_piper import FakePiper
from piper_driver.robot import ArmState, MotionRefused, RobotBackend, RobotState, RobotStatus
from piper_driver.safe_arm import SafeArm
from piper_driver.safety import SafetyConfig
from piper_driver.sdk_backend import SdkBackend, SdkConfig
from piper_driver.watchdog import CommandWatchdog
from vlac_core.types import DeltaAction, EndPose

CONFIG = SafetyConfig(max_step_mm=40.0, max_step_deg=10.0, min_command_period_s=0.0, watchdog_timeout_s=1.0)
START = EndPose(250.0, 0.0, 200.0, 180.0, 0.0, 0.0)


class RecordingArm(RobotBackend):
    """An arm that jumps to each target at once and records what it was sent."""

    def __init__(self) -> None:
        self.pose, self.gripper_mm, self.sent = START, 0.0, []
        self.state = RobotState.ENABLED

    def connect(self) -> None: ...
    def disconnect(self) -> None: ...
    def enable(self, timeout_s: float = 5.0) -> None: ...
    def disable(self) -> None: ...
    def home(self) -> None: ...
    def emergency_stop(self) -> None: ...
    def resume(self) -> None: ...

    def observe(self) -> ArmState:
        return ArmState(end_pose=self.pose, joints_rad=(0.0,) * 6, gripper_mm=self.gripper_mm, stamp_s=clock.now)

    def execute(self, delta: DeltaAction) -> None:
        raise AssertionError("SafeArm must send absolute, checked targets through move_to")

    def move_to(self, target: EndPose, gripper_mm: float) -> None:
        self.sent.append((target, gripper_mm))
        self.pose, self.gripper_mm = target, gripper_mm

    def wait_until_still(self, timeout_s: float) -> bool:
        return True

    def status(self) -> RobotStatus:
        return RobotStatus(self.state, counters={"commands": len(self.sent)})


class Clock:
    now = 10.0

    def __call__(self) -> float:
        return self.now


clock = Clock()


@pytest.fixture
def arm():
    clock.now = 10.0
    inner = RecordingArm()
    return inner, SafeArm(inner, CONFIG, clock=clock)


def test_actions_reach_the_backend_clamped_and_absolute(arm):
    inner, safe = arm
    command = safe.execute(DeltaAction(100, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)
    assert command.clamps == ("step_translation",)
    assert inner.sent == [(EndPose(290.0, 0.0, 200.0, -180.0, 0.0, 0.0), CONFIG.gripper_max_mm)]


def test_rejection_raises_and_sends_nothing(arm):
    inner, safe = arm
    with pytest.raises(MotionRefused, match="stale"):
        safe.execute(DeltaAction(1, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now - 5.0)
    with pytest.raises(MotionRefused, match="nonfinite"):
        safe.execute([0, 0, math.nan, 0, 0, 0, 1], obs_stamp_s=clock.now)
    assert inner.sent == []
    counters = safe.status().counters
    assert counters["safety.rejected.stale"] == 1
    assert counters["safety.rejected.nonfinite"] == 1
    assert counters["commands"] == 0  # the backend's own counters are kept beside them


def test_absolute_targets_are_limited_too(arm):
    inner, safe = arm
    safe.move_to(EndPose(1000.0, 0.0, 200.0, 180.0, 0.0, 0.0), gripper_mm=99.0, obs_stamp_s=clock.now)
    target, gripper_mm = inner.sent[-1]
    assert target.x_mm == pytest.approx(290.0)
    assert gripper_mm == CONFIG.gripper_max_mm


def test_unstamped_actions_are_counted(arm):
    _, safe = arm
    safe.execute(DeltaAction(1, 0, 0, 0, 0, 0, 1))
    assert safe.status().counters["safety.unstamped"] == 1


def test_watchdog_holds_once_when_commands_stop(arm):
    inner, safe = arm
    safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)
    clock.now += 0.5
    assert not safe.tick()
    clock.now += 0.6
    assert safe.tick()
    assert inner.sent[-1] == (inner.pose, inner.gripper_mm)  # held where it is
    clock.now += 5.0
    assert not safe.tick()  # once per silence
    assert safe.status().counters["safety.watchdog_hold"] == 1


def test_watchdog_does_not_command_an_arm_that_refuses_motion(arm):
    inner, safe = arm
    safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)
    inner.state = RobotState.ERROR
    clock.now += 2.0
    sent = len(inner.sent)
    assert not safe.tick()
    assert len(inner.sent) == sent


def test_emergency_stop_disarms_the_watchdog(arm):
    _, safe = arm
    safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)
    safe.emergency_stop()
    assert not safe.watchdog.armed


def test_watchdog_time_out_must_be_positive():
    with pytest.raises(ConfigError, match="watchdog_timeout_s"):
        CommandWatchdog(0.0)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.lists(st.one_of(st.floats(), st.integers(-(10**6), 10**6)), min_size=7, max_size=7),
            st.builds(
                DeltaAction,
                *[st.integers(-1000, 1000)] * 3,
                *[st.integers(-180, 180)] * 3,
                st.sampled_from([0, 1]),
            ),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_no_sequence_of_actions_drives_the_arm_out_of_the_workspace(steps):
    clock.now = 10.0
    inner = RecordingArm()
    safe = SafeArm(inner, CONFIG, clock=clock)
    for action in steps:
        before = inner.pose
        clock.now += 0.1
        try:
            safe.execute(action, obs_stamp_s=clock.now)
        except MotionRefused:
            assert inner.pose == before
            continue
        assert CONFIG.contains(inner.pose)
        assert math.dist(inner.pose.as_array()[:3], before.as_array()[:3]) <= CONFIG.max_step_mm + 1e-6


def test_safe_arm_over_the_sdk_backend_limits_what_the_real_arm_does():
    with FakePiper(f"vcan_{uuid.uuid4().hex[:10]}") as fake:
        # Generous time limits (none is under test): a loaded machine stalls the fake arm's feedback.
        backend = SdkBackend(
            SdkConfig(can_port=fake.channel, bustype="virtual", connect_timeout_s=10.0, link_timeout_s=10.0)
        )
        safe = SafeArm(
            backend,
            SafetyConfig(
                max_step_mm=30.0, min_command_period_s=0.0, max_observation_age_s=10.0, watchdog_timeout_s=10.0
            ),
        )
        safe.connect()
        try:
            safe.enable(timeout_s=10.0)
            start_x = safe.observe().end_pose.x_mm
            safe.execute(DeltaAction(500, 0, 0, 0, 0, 0, 1), obs_stamp_s=safe.observe().stamp_s)
            assert safe.wait_until_still(timeout_s=10.0)
            assert fake.pose_mm_deg[0] == pytest.approx(start_x + 30.0, abs=2.0)
        finally:
            safe.disconnect()


class DeltaOnlyArm(RecordingArm):
    """A backend written before ``move_to`` existed: relative actions only."""

    def execute(self, delta: DeltaAction) -> None:
        self.sent.append(delta)

    move_to = RobotBackend.move_to


def test_backends_without_move_to_get_a_delta_that_stops_short_of_the_checked_target():
    inner = DeltaOnlyArm()
    SafeArm(inner, CONFIG, clock=clock).move_to(
        EndPose(262.9, -3.5, 200.0, -175.5, 0.0, 0.0), gripper_mm=50.0, obs_stamp_s=clock.now
    )
    assert inner.sent == [DeltaAction(12, -3, 0, 4, 0, 0, open=1)]  # truncated toward the pose; 180 -> -175.5 is +4.5


class HomingArm(RecordingArm):
    """Tries to sneak an action in while it homes (as a second ROS callback thread would)."""

    def __init__(self) -> None:
        super().__init__()
        self.safe: SafeArm | None = None
        self.refusal = ""

    def home(self) -> None:
        try:
            self.safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)
        except MotionRefused as exc:
            self.refusal = str(exc)


def test_actions_are_refused_while_homing():
    inner = HomingArm()
    inner.safe = SafeArm(inner, CONFIG, clock=clock)
    inner.safe.home()
    assert "homing in progress" in inner.refusal
    assert inner.sent == []
    inner.safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)  # home done: accepted again
    assert len(inner.sent) == 1


def test_an_arm_that_refuses_motion_is_not_commanded_and_keeps_the_rate_window_closed():
    clock.now = 10.0
    inner = RecordingArm()
    safe = SafeArm(inner, SafetyConfig(min_command_period_s=1.0), clock=clock)
    inner.state = RobotState.ESTOPPED
    with pytest.raises(MotionRefused, match="estopped"):
        safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)
    assert inner.sent == []
    assert safe.status().counters["safety.rejected.arm_estopped"] == 1
    inner.state = RobotState.ENABLED
    safe.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1), obs_stamp_s=clock.now)  # not rate limited by the refusal
    assert len(inner.sent) == 1
