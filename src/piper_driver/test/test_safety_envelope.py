"""The safety envelope: what it clamps, what it rejects, what it counts — and, by property
tests, that nothing it lets through is outside the envelope, whatever went in."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piper_driver.safety import SafetyConfig, SafetyEnvelope
from vlac_core.config import ConfigError
from vlac_core.types import DeltaAction, EndPose

CONFIG = SafetyConfig(
    workspace_min_mm=(100.0, -200.0, 50.0),
    workspace_max_mm=(400.0, 200.0, 400.0),
    max_step_mm=50.0,
    max_step_deg=20.0,
    gripper_min_mm=5.0,
    gripper_max_mm=60.0,
    max_observation_age_s=0.5,
    min_command_period_s=0.1,
)
HOME = EndPose(250.0, 0.0, 200.0, 180.0, 0.0, 90.0)
NOW = 100.0


def check(action, current=HOME, stamp=NOW - 0.1, now=NOW, gripper_mm=None, envelope=None):
    envelope = envelope or SafetyEnvelope(CONFIG)
    return envelope.check(current, action, stamp, now, gripper_mm=gripper_mm)


def angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def assert_inside(decision, current: EndPose, config: SafetyConfig = CONFIG) -> None:
    target, here = decision.command.target, current.as_array()
    xyz = target.as_array()[:3]
    assert np.all(xyz >= np.array(config.workspace_min_mm)) and np.all(xyz <= np.array(config.workspace_max_mm))
    assert np.linalg.norm(xyz - here[:3]) <= config.max_step_mm + 1e-6
    for axis in range(3):
        assert angle_diff(target.as_array()[3 + axis], here[3 + axis]) <= config.max_step_deg + 1e-6
    assert config.gripper_min_mm <= decision.command.gripper_mm <= config.gripper_max_mm
    assert all(math.isfinite(v) for v in target.as_array())


# --- plain behaviour ---------------------------------------------------------------------------


def test_small_action_passes_unchanged():
    decision = check(DeltaAction(10, -5, 3, 0, 0, -4, 1))
    assert decision.accepted and decision.command.clamps == ()
    assert decision.command.target == EndPose(260.0, -5.0, 203.0, -180.0, 0.0, 86.0)
    assert decision.command.gripper_mm == 60.0


def test_long_step_is_shortened_along_its_direction():
    decision = check(DeltaAction(90, 0, -120, 0, 0, 0, 0))
    target = decision.command.target
    assert (target.x_mm - 250.0, target.z_mm - 200.0) == pytest.approx((30.0, -40.0))  # 3:4 kept, length 50
    assert decision.command.clamps == ("step_translation",)
    assert decision.command.gripper_mm == 5.0


def test_rotation_is_limited_per_axis_and_wraps():
    decision = check(DeltaAction(0, 0, 0, 45, -5, 0, 1))
    assert decision.command.target.roll_deg == pytest.approx(-160.0)  # 180 + 20 wraps to -160
    assert decision.command.target.pitch_deg == pytest.approx(-5.0)
    assert "step_rotation" in decision.command.clamps


def test_workspace_edge_clamps_the_target():
    decision = check(DeltaAction(0, 0, -30, 0, 0, 0, 1), current=EndPose(250.0, 0.0, 60.0, 180.0, 0.0, 0.0))
    assert decision.command.target.z_mm == 50.0
    assert decision.command.clamps == ("workspace",)


def test_arm_far_outside_the_box_is_rejected_not_yanked_back():
    decision = check(DeltaAction(0, 0, 0, 0, 0, 0, 1), current=EndPose(250.0, 0.0, -100.0, 0.0, 0.0, 0.0))
    assert decision.rejection.reason == "outside_workspace"
    assert "home the arm" in decision.rejection.detail


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ([1, 2, math.nan, 0, 0, 0, 1], "nonfinite"),
        ([1, 2, 3, math.inf, 0, 0, 1], "nonfinite"),
        ([1, 2, 3], "malformed"),
        ("{x: 1mm}", "malformed"),
        (None, "malformed"),
        ([1, 2, "3", 0, 0, 0, 1], "malformed"),
        ([1, 2, 3, 0, 0, 0, 0.5], "malformed"),
        ([True, 2, 3, 0, 0, 0, 1], "malformed"),
    ],
)
def test_garbage_is_rejected_with_a_reason(action, reason):
    decision = check(action)
    assert not decision.accepted
    assert decision.command is None
    assert decision.rejection.reason == reason


def test_stale_and_future_observations_are_rejected():
    assert check(DeltaAction(1, 0, 0, 0, 0, 0, 1), stamp=NOW - 0.8).rejection.reason == "stale"
    assert "0.800 s old" in check(DeltaAction(1, 0, 0, 0, 0, 0, 1), stamp=NOW - 0.8).rejection.detail
    assert check(DeltaAction(1, 0, 0, 0, 0, 0, 1), stamp=NOW + 1.0).rejection.reason == "future_stamp"
    assert check(DeltaAction(1, 0, 0, 0, 0, 0, 1), stamp=math.nan).rejection.reason == "bad_stamp"


def test_rate_limit_counts_from_the_last_accepted_command():
    envelope = SafetyEnvelope(CONFIG)
    action = DeltaAction(1, 0, 0, 0, 0, 0, 1)
    assert check(action, now=NOW, envelope=envelope).accepted
    assert check(action, now=NOW + 0.05, stamp=NOW, envelope=envelope).rejection.reason == "rate_limited"
    assert check(action, now=NOW + 0.11, stamp=NOW, envelope=envelope).accepted


def test_gripper_request_in_mm_is_clamped_to_the_range():
    decision = check(DeltaAction(0, 0, 0, 0, 0, 0, 1), gripper_mm=75.0)
    assert decision.command.gripper_mm == 60.0
    assert decision.command.clamps == ("gripper",)


def test_every_rejection_and_clamp_is_counted_by_reason():
    envelope = SafetyEnvelope(CONFIG)
    check([math.nan] * 7, envelope=envelope)
    check([math.nan] * 7, envelope=envelope)
    check(DeltaAction(500, 0, 0, 0, 0, 0, 1), envelope=envelope)
    assert envelope.counters["rejected.nonfinite"] == 2
    assert envelope.counters["clamped.step_translation"] == 1
    assert envelope.counters["accepted"] == 1


def test_absolute_target_gets_the_same_limits():
    envelope = SafetyEnvelope(CONFIG)
    far = EndPose(1000.0, 0.0, 200.0, 180.0, 0.0, 90.0)
    decision = envelope.check_target(HOME, far, 30.0, NOW, NOW)
    assert decision.command.target.x_mm == pytest.approx(300.0)
    assert decision.command.gripper_mm == 30.0


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"workspace_min_mm": (0.0, 0.0, 600.0)}, "workspace_max_mm.z"),
        ({"max_step_mm": 0.0}, "max_step_mm"),
        ({"max_step_deg": 270.0}, "max_step_deg"),
        ({"gripper_min_mm": 50.0, "gripper_max_mm": 10.0}, "gripper_max_mm"),
        ({"max_observation_age_s": math.nan}, "max_observation_age_s"),
        ({"workspace_max_mm": (1.0, 2.0)}, "workspace_max_mm"),
    ],
)
def test_bad_config_fails_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        SafetyConfig(**overrides)


# --- properties --------------------------------------------------------------------------------

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.binary(max_size=4),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(min_value=-1e6, max_value=1e6),
)
actions = st.one_of(
    st.builds(
        DeltaAction,
        *[st.integers(-(10**9), 10**9)] * 3,
        *[st.integers(-180, 180)] * 3,
        st.sampled_from([0, 1]),
    ),
    st.lists(numbers, min_size=7, max_size=7),
    st.lists(st.one_of(numbers, anything), min_size=0, max_size=9),
    st.lists(numbers, min_size=7, max_size=7).map(np.array),
    anything,
)
finite = st.floats(min_value=-2000.0, max_value=2000.0)
poses = st.builds(EndPose, finite, finite, finite, *[st.floats(-180.0, 180.0)] * 3)
stamps = st.one_of(st.floats(min_value=90.0, max_value=110.0), anything)


@settings(max_examples=400, deadline=None)
@given(current=poses, action=actions, stamp=stamps, gripper=st.one_of(st.none(), numbers, anything))
def test_no_input_yields_a_command_outside_the_envelope(current, action, stamp, gripper):
    envelope = SafetyEnvelope(CONFIG)
    decision = envelope.check(current, action, stamp, NOW, gripper_mm=gripper)
    if decision.accepted:
        assert decision.rejection is None
        assert_inside(decision, current)
    else:
        assert decision.command is None
        assert decision.rejection.reason and decision.rejection.detail
    assert sum(envelope.counters.values()) >= 1


@settings(max_examples=200, deadline=None)
@given(current=poses, target=poses, gripper=numbers)
def test_no_absolute_target_lands_outside_the_envelope(current, target, gripper):
    decision = SafetyEnvelope(CONFIG).check_target(current, target, gripper, NOW, NOW)
    if decision.accepted:
        assert_inside(decision, current)


@settings(max_examples=200, deadline=None)
@given(action=actions, stamp=stamps)
def test_a_rejection_leaves_the_rate_limit_untouched(action, stamp):
    envelope = SafetyEnvelope(CONFIG)
    decision = envelope.check(HOME, action, stamp, NOW)
    follow_up = envelope.check(HOME, DeltaAction(1, 0, 0, 0, 0, 0, 1), NOW, NOW + 0.01)
    # Only an accepted command starts the rate-limit window.
    assert follow_up.accepted is (not decision.accepted)
