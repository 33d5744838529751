"""Core types <-> vlac_msgs, both ways, with rosbags' classes built from the real definitions and CDR bytes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sample_episodes import (
    assert_episodes_equal,
    assert_observations_equal,
    assert_transitions_equal,
    episode,
    observation,
    policy_action,
    transition,
)

from vlac_core import convert
from vlac_core.convert import ConversionError
from vlac_core.message_set import MessageSet, rosbags_message_set, split_stamp_s, stamp_s_from_time
from vlac_core.ros.message_set import _float32_array, _float64_array, _uint8_array
from vlac_core.type_store import make_typestore
from vlac_core.types import DeltaAction, EndPose, Termination, ValidationError

STORE = make_typestore()
MSGS = rosbags_message_set(STORE)
#: rosbags' classes with rclpy's array builders: what the read side sees from a node (array.array fields).
RCLPY_STYLE = dataclasses.replace(
    MSGS, uint8_array=_uint8_array, float32_array=_float32_array, float64_array=_float64_array
)


def _through_cdr(msg):
    typename = msg.__msgtype__
    return STORE.deserialize_cdr(STORE.serialize_cdr(msg, typename), typename)


def test_end_pose_and_delta_action_round_trip():
    pose = EndPose(x_mm=1.5, y_mm=-2.25, z_mm=300.0, roll_deg=179.0, pitch_deg=-0.5, yaw_deg=45.125)
    assert convert.end_pose_from_msg(_through_cdr(convert.end_pose_to_msg(pose, MSGS))) == pose
    delta = DeltaAction(dx_mm=-47, dy_mm=0, dz_mm=1000, droll_deg=-180, dpitch_deg=180, dyaw_deg=3, open=1)
    msg = _through_cdr(convert.delta_action_to_msg(delta, MSGS))
    assert (msg.dx_mm, msg.dz_mm, msg.open) == (-47, 1000, 1)
    assert convert.delta_action_from_msg(msg) == delta


@pytest.mark.parametrize("msgs", [MSGS, RCLPY_STYLE], ids=["numpy-arrays", "array.array"])
def test_observation_round_trips_with_every_view(msgs: MessageSet):
    obs = observation(3, views=3)
    msg = convert.observation_to_msg(obs, msgs)
    assert [m.encoding for m in msg.images] == ["rgb8"] * 3
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_001, 750_000_000)
    assert_observations_equal(convert.observation_from_msg(msg), obs)


def test_observation_round_trips_through_cdr_bytes():
    obs = observation(2)
    assert_observations_equal(convert.observation_from_msg(_through_cdr(convert.observation_to_msg(obs, MSGS))), obs)


def test_policy_action_round_trips_and_carries_the_summed_logprob():
    action = policy_action(2)
    msg = _through_cdr(convert.policy_action_to_msg(action, MSGS))
    assert msg.logprob == pytest.approx(-1.765625)
    assert msg.token_logprobs.dtype == np.float32
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_001, 375_000_000)  # obs + latency
    assert convert.policy_action_from_msg(msg) == action
    assert convert.policy_action_from_msg(convert.policy_action_to_msg(action, RCLPY_STYLE)) == action


def test_policy_action_log_probs_are_rounded_to_float32_on_the_wire():
    action = dataclasses.replace(policy_action(0), token_logprobs=(-0.1,))
    back = convert.policy_action_from_msg(_through_cdr(convert.policy_action_to_msg(action, MSGS)))
    assert back.token_logprobs == (float(np.float32(-0.1)),)
    assert back.token_logprobs != action.token_logprobs


@pytest.mark.parametrize("step", [0, 1, 2], ids=["human-step", "unparsed-progress", "done"])
def test_transition_round_trips_through_cdr(step):
    original = transition(step)
    msg = _through_cdr(convert.transition_to_msg(original, MSGS))
    assert_transitions_equal(convert.transition_from_msg(msg), original)


def test_unparsed_progress_is_sent_as_nan_with_the_flag_down():
    msg = convert.transition_to_msg(transition(1), MSGS)
    assert msg.progress_parsed is False and math.isnan(msg.progress_pct)
    assert convert.transition_from_msg(msg).progress_pct is None


def test_parsed_progress_must_be_finite():
    msg = dataclasses.replace(convert.transition_to_msg(transition(0), MSGS), progress_pct=math.inf)
    with pytest.raises(ConversionError, match=r"Transition\.progress_pct: inf with progress_parsed true"):
        convert.transition_from_msg(msg)


def test_episode_round_trips_through_cdr_with_every_key():
    original = episode(3)
    msg = _through_cdr(convert.episode_to_msg(original, MSGS))
    assert (msg.termination, msg.success, msg.start_state_id) == ("done", 1, "state-42")
    assert_episodes_equal(convert.episode_from_msg(msg), original)


@pytest.mark.parametrize(
    ("success", "termination", "start_state_id"),
    [(None, None, None), (False, Termination.ABORTED, None), (True, Termination.STEP_LIMIT, "s")],
)
def test_episode_optional_keys_survive(success, termination, start_state_id):
    original = episode(1, success=success, termination=termination, start_state_id=start_state_id)
    back = convert.episode_from_msg(_through_cdr(convert.episode_to_msg(original, MSGS)))
    assert (back.success, back.termination, back.start_state_id) == (success, termination, start_state_id)


def test_missing_final_observation_is_an_observation_without_images():
    original = episode(0, final_observation=None)
    msg = _through_cdr(convert.episode_to_msg(original, MSGS))
    assert len(msg.final_observation.images) == 0
    assert convert.episode_from_msg(msg).final_observation is None


def test_episode_summary_totals():
    ep = episode(3)
    msg = _through_cdr(convert.episode_summary_to_msg(ep, MSGS, stamp_s=5.0, duration_s=2.5, bag_path="/bags/e1"))
    assert (msg.length, msg.human_steps, msg.policy_version, msg.termination, msg.success) == (3, 1, 7, "done", 1)
    assert msg.episode_return == pytest.approx(ep.episode_return) and msg.duration_s == 2.5
    assert msg.bag_path == "/bags/e1"


def test_values_that_do_not_fit_the_wire_type_are_named():
    with pytest.raises(ConversionError, match=r"Observation.seq: -1 does not fit the message's uint32"):
        convert.observation_to_msg(dataclasses.replace(observation(0), seq=-1), MSGS)
    with pytest.raises(ConversionError, match=r"PolicyAction.policy_version: 4294967296 does not fit"):
        convert.policy_action_to_msg(dataclasses.replace(policy_action(0), policy_version=2**32), MSGS)
    big = DeltaAction(dx_mm=2**31, dy_mm=0, dz_mm=0, droll_deg=0, dpitch_deg=0, dyaw_deg=0, open=0)
    with pytest.raises(ConversionError, match=r"DeltaAction.dx_mm: 2147483648 does not fit the message's int32"):
        convert.delta_action_to_msg(big, MSGS)


def test_bad_messages_are_rejected_naming_the_field():
    episode_msg = convert.episode_to_msg(episode(1), MSGS)
    with pytest.raises(ConversionError, match=r"termination: 'finished' is not one of done, step_limit"):
        convert.episode_from_msg(dataclasses.replace(episode_msg, termination="finished"))
    with pytest.raises(ConversionError, match=r"success: expected 1 \(success\), 0 \(failure\) or -1.*got 2"):
        convert.episode_from_msg(dataclasses.replace(episode_msg, success=2))
    obs_msg = convert.observation_to_msg(observation(0), MSGS)
    broken = dataclasses.replace(obs_msg.images[1], encoding="yuv422")
    with pytest.raises(ConversionError, match=r"Observation.images\[1\]: .*'yuv422' is not supported"):
        convert.observation_from_msg(dataclasses.replace(obs_msg, images=[obs_msg.images[0], broken]))
    with pytest.raises(ValidationError, match=r"Observation.images: expected 1 to 3 camera views, got 0"):
        convert.observation_from_msg(dataclasses.replace(obs_msg, images=[]))
    delta_msg = dataclasses.replace(convert.delta_action_to_msg(policy_action(0).delta, MSGS), open=2)
    with pytest.raises(ValidationError, match=r"DeltaAction\.open: expected 0 or 1, got 2"):
        convert.delta_action_from_msg(delta_msg)
    nested = dataclasses.replace(
        episode_msg, transitions=[dataclasses.replace(episode_msg.transitions[0], progress_pct=math.nan)]
    )
    with pytest.raises(ConversionError, match=r"Episode.transitions\[0\]: Transition.progress_pct: nan"):
        convert.episode_from_msg(nested)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-(2.0**31), max_value=2.0**31 - 1, allow_nan=False))
def test_stamps_keep_nanosecond_resolution(stamp_s):
    sec, nanosec = split_stamp_s(stamp_s)
    assert 0 <= nanosec < 1_000_000_000
    back = stamp_s_from_time(MSGS.Time(sec=sec, nanosec=nanosec))
    assert abs(back - stamp_s) <= 0.5e-9 + 2 * math.ulp(stamp_s)


@pytest.mark.parametrize("stamp_s", [math.nan, math.inf, 2.0**31, "1.0", True])
def test_stamps_that_do_not_fit_builtin_time_are_rejected(stamp_s):
    with pytest.raises(ValueError, match="stamp_s"):
        split_stamp_s(stamp_s)


def test_rosbags_message_set_refuses_a_store_without_vlac_msgs():
    from rosbags.typesys import Stores, get_typestore

    with pytest.raises(ValueError, match="type store lacks vlac_msgs/msg/EndPose"):
        rosbags_message_set(get_typestore(Stores.ROS2_JAZZY))
