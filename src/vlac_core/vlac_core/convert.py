"""Core types (vlac_core.types) <-> vlac_msgs messages, for any binding given as a MessageSet.

Nodes pass ``rclpy_message_set()``, tests and bag tools ``rosbags_message_set()``; the code is the
same, so what the tests pin is what runs on the robot. Messages are built with every field as a
keyword (rosbags has no defaults). Reading only uses attribute access, so it accepts either binding.

Where a message cannot say "absent", a convention stands in, documented at each function:
an unparsed critic answer is ``progress_parsed = false`` with ``progress_pct = NaN``; an unknown
ground truth is ``success = -1``; a missing termination is ``""``; a missing final observation is
an Observation with no images (a real one always has at least one).

Precision: stamps are kept to 1 ns (builtin_interfaces/Time); ``token_logprobs`` and ``value`` are
float32 on the wire, so they come back rounded to float32.
"""

from __future__ import annotations

import math
from typing import Any

from vlac_core.images import ImageConversionError, image_from_msg, image_to_msg
from vlac_core.message_set import MessageSet, stamp_s_from_time
from vlac_core.types import (
    ACTION_FIELDS,
    DeltaAction,
    EndPose,
    Episode,
    Observation,
    PolicyAction,
    Termination,
    Transition,
)

_POSE_FIELDS = ("x_mm", "y_mm", "z_mm", "roll_deg", "pitch_deg", "yaw_deg")
_SUCCESS_TO_INT8 = {True: 1, False: 0, None: -1}
_INT8_TO_SUCCESS = {value: key for key, value in _SUCCESS_TO_INT8.items()}


class ConversionError(ValueError):
    """A value cannot be carried by (or read from) a message; the text names the message field."""


def _fits(value: int, bits: int, signed: bool, field: str) -> int:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= int(value) <= high:
        kind = f"{'int' if signed else 'uint'}{bits}"
        raise ConversionError(f"{field}: {value} does not fit the message's {kind} ({low}..{high})")
    return int(value)


# --- EndPose, DeltaAction ---------------------------------------------------------------------


def end_pose_to_msg(pose: EndPose, msgs: MessageSet) -> Any:
    return msgs.EndPose(**{name: float(getattr(pose, name)) for name in _POSE_FIELDS})


def end_pose_from_msg(msg: Any) -> EndPose:
    return EndPose(**{name: float(getattr(msg, name)) for name in _POSE_FIELDS})


def delta_action_to_msg(delta: DeltaAction, msgs: MessageSet) -> Any:
    values = {name: _fits(getattr(delta, name), 32, True, f"DeltaAction.{name}") for name in ACTION_FIELDS}
    values["open"] = _fits(delta.open, 8, False, "DeltaAction.open")
    return msgs.DeltaAction(**values)


def delta_action_from_msg(msg: Any) -> DeltaAction:
    return DeltaAction(**{name: int(getattr(msg, name)) for name in ACTION_FIELDS})


# --- Observation ------------------------------------------------------------------------------


def observation_to_msg(observation: Observation, msgs: MessageSet, *, frame_id: str = "") -> Any:
    """Every view is an rgb8 Image stamped with the observation's capture time."""
    stamp_s = observation.stamp_s
    return msgs.Observation(
        header=msgs.header(stamp_s, frame_id),
        robot_id=observation.robot_id,
        seq=_fits(observation.seq, 32, False, "Observation.seq"),
        task=observation.task,
        images=[image_to_msg(image, msgs, stamp_s=stamp_s, frame_id=frame_id) for image in observation.images],
        end_pose=end_pose_to_msg(observation.end_pose, msgs),
        gripper_open=bool(observation.gripper_open),
        gripper_mm=float(observation.gripper_mm),
        joints_rad=msgs.float64_array([float(j) for j in observation.joints_rad]),
    )


def observation_from_msg(msg: Any) -> Observation:
    images = []
    for i, image_msg in enumerate(msg.images):
        try:
            images.append(image_from_msg(image_msg))
        except ImageConversionError as exc:
            raise ConversionError(f"Observation.images[{i}]: {exc}") from exc
    return Observation(
        robot_id=msg.robot_id,
        task=msg.task,
        images=tuple(images),
        end_pose=end_pose_from_msg(msg.end_pose),
        gripper_open=bool(msg.gripper_open),
        gripper_mm=float(msg.gripper_mm),
        joints_rad=tuple(float(j) for j in msg.joints_rad),
        stamp_s=stamp_s_from_time(msg.header.stamp),
        seq=int(msg.seq),
    )


def _empty_observation_msg(msgs: MessageSet) -> Any:
    """Stands for "no final observation" in an Episode message: no images, no robot, no task."""
    return msgs.Observation(
        header=msgs.header(0.0),
        robot_id="",
        seq=0,
        task="",
        images=[],
        end_pose=msgs.EndPose(**dict.fromkeys(_POSE_FIELDS, 0.0)),
        gripper_open=False,
        gripper_mm=0.0,
        joints_rad=msgs.float64_array([]),
    )


# --- PolicyAction -----------------------------------------------------------------------------


def policy_action_to_msg(action: PolicyAction, msgs: MessageSet, *, stamp_s: float | None = None) -> Any:
    """``stamp_s``: when the action was produced; default obs_stamp_s + inference_latency_s."""
    produced_s = action.obs_stamp_s + action.inference_latency_s if stamp_s is None else stamp_s
    return msgs.PolicyAction(
        header=msgs.header(produced_s),
        robot_id=action.robot_id,
        obs_seq=_fits(action.obs_seq, 32, False, "PolicyAction.obs_seq"),
        obs_stamp=msgs.time(action.obs_stamp_s),
        delta=delta_action_to_msg(action.delta, msgs),
        text=action.text,
        token_logprobs=msgs.float32_array([float(v) for v in action.token_logprobs]),
        logprob=action.logprob,
        value=float(action.value),
        policy_version=_fits(action.policy_version, 32, False, "PolicyAction.policy_version"),
        inference_latency_s=float(action.inference_latency_s),
        logprob_needs_recompute=bool(action.logprob_needs_recompute),
    )


def policy_action_from_msg(msg: Any) -> PolicyAction:
    """The message's ``logprob`` is not read: the core derives it from ``token_logprobs``."""
    return PolicyAction(
        delta=delta_action_from_msg(msg.delta),
        text=msg.text,
        token_logprobs=tuple(float(v) for v in msg.token_logprobs),
        value=float(msg.value),
        policy_version=int(msg.policy_version),
        obs_stamp_s=stamp_s_from_time(msg.obs_stamp),
        inference_latency_s=float(msg.inference_latency_s),
        robot_id=msg.robot_id,
        obs_seq=int(msg.obs_seq),
        logprob_needs_recompute=bool(msg.logprob_needs_recompute),
    )


# --- Transition -------------------------------------------------------------------------------


def transition_to_msg(transition: Transition, msgs: MessageSet) -> Any:
    """An unparsed critic answer (progress_pct None) is sent as NaN so a reader ignoring the flag notices."""
    parsed = transition.progress_pct is not None
    return msgs.Transition(
        observation=observation_to_msg(transition.observation, msgs),
        action=policy_action_to_msg(transition.action, msgs),
        progress_parsed=parsed,
        progress_pct=float(transition.progress_pct) if parsed else math.nan,
        reward=float(transition.reward),
        done_prob=float(transition.done_prob),
        done=bool(transition.done),
        human=bool(transition.human),
        critic_done=bool(transition.critic_done),
        has_ground_truth=transition.has_ground_truth,
        gt_progress=float(transition.gt_progress) if transition.has_ground_truth else math.nan,
        gt_done=bool(transition.gt_done),
        gt_phase=transition.gt_phase,
    )


def transition_from_msg(msg: Any) -> Transition:
    progress_pct = float(msg.progress_pct) if msg.progress_parsed else None
    if progress_pct is not None and not math.isfinite(progress_pct):
        raise ConversionError(f"Transition.progress_pct: {progress_pct} with progress_parsed true")
    return Transition(
        observation=observation_from_msg(msg.observation),
        action=policy_action_from_msg(msg.action),
        progress_pct=progress_pct,
        reward=float(msg.reward),
        done_prob=float(msg.done_prob),
        done=bool(msg.done),
        human=bool(msg.human),
        critic_done=bool(msg.critic_done),
        gt_progress=float(msg.gt_progress) if msg.has_ground_truth else None,
        gt_done=bool(msg.gt_done) if msg.has_ground_truth else None,
        gt_phase=str(msg.gt_phase),
    )


# --- Episode ----------------------------------------------------------------------------------


def success_to_int8(success: bool | None) -> int:
    """Ground truth as the messages carry it: 1 success, 0 failure, -1 unknown."""
    return _SUCCESS_TO_INT8[success]


def success_from_int8(value: int) -> bool | None:
    if value not in _INT8_TO_SUCCESS:
        raise ConversionError(f"success: expected 1 (success), 0 (failure) or -1 (unknown), got {value}")
    return _INT8_TO_SUCCESS[value]


def termination_to_text(termination: Termination | None) -> str:
    return "" if termination is None else Termination(termination).value


def termination_from_text(text: str) -> Termination | None:
    if text == "":
        return None
    try:
        return Termination(text)
    except ValueError:
        allowed = ", ".join(t.value for t in Termination)
        raise ConversionError(f"termination: {text!r} is not one of {allowed} (or empty)") from None


def episode_to_msg(episode: Episode, msgs: MessageSet) -> Any:
    final = episode.final_observation
    return msgs.Episode(
        episode_id=episode.episode_id,
        robot_id=episode.robot_id,
        task=episode.task,
        transitions=[transition_to_msg(t, msgs) for t in episode.transitions],
        final_observation=_empty_observation_msg(msgs) if final is None else observation_to_msg(final, msgs),
        termination=termination_to_text(episode.termination),
        success=success_to_int8(episode.success),
        policy_version=_fits(episode.policy_version, 32, False, "Episode.policy_version"),
        start_state_id=episode.start_state_id or "",
    )


def episode_from_msg(msg: Any) -> Episode:
    transitions = []
    for i, transition_msg in enumerate(msg.transitions):
        try:
            transitions.append(transition_from_msg(transition_msg))
        except ValueError as exc:
            raise ConversionError(f"Episode.transitions[{i}]: {exc}") from exc
    final = msg.final_observation
    return Episode(
        episode_id=msg.episode_id,
        robot_id=msg.robot_id,
        task=msg.task,
        transitions=transitions,
        final_observation=observation_from_msg(final) if len(final.images) else None,
        termination=termination_from_text(msg.termination),
        success=success_from_int8(int(msg.success)),
        policy_version=int(msg.policy_version),
        start_state_id=msg.start_state_id or None,
    )


def episode_summary_to_msg(
    episode: Episode, msgs: MessageSet, *, stamp_s: float, duration_s: float, bag_path: str = ""
) -> Any:
    """The monitoring summary of ``episode``, stamped ``stamp_s`` (when it ended)."""
    return msgs.EpisodeSummary(
        header=msgs.header(stamp_s),
        episode_id=episode.episode_id,
        robot_id=episode.robot_id,
        task=episode.task,
        length=_fits(episode.length, 32, False, "EpisodeSummary.length"),
        episode_return=episode.episode_return,
        termination=termination_to_text(episode.termination),
        success=success_to_int8(episode.success),
        human_steps=episode.human_steps,
        policy_version=_fits(episode.policy_version, 32, False, "EpisodeSummary.policy_version"),
        duration_s=float(duration_s),
        bag_path=bag_path,
    )
