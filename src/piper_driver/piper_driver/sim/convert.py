"""Simulated episodes as the stack's core ``Episode`` (for bags and the trainer's demo buffer).

A scripted step is written as a ``PolicyAction`` with the action's template text, no token
log-probs and policy version 0: it was not sampled from a policy. No critic ran, so
``progress_pct`` is None and reward 0; the ground-truth success goes to ``Episode.success``
(evaluation only). The episode ends with ``Termination.DONE`` when the script finished.
"""

from __future__ import annotations

import numpy as np

from piper_driver.robot import RobotBackend
from piper_driver.sim.rollout import EpisodeRecord
from vlac_core.action_text import format_action
from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition


def record_observation(record: EpisodeRecord, index: int, robot_id: str) -> Observation:
    """Observation ``index`` (0..T) of ``record``: front view (and wrist view when recorded)."""
    images = [record.front_images[index]]
    if record.wrist_images is not None:
        images.append(record.wrist_images[index])
    gripper_mm = float(record.gripper_mm[index])
    return Observation(
        robot_id=robot_id,
        task=record.text,
        images=tuple(images),
        end_pose=EndPose.from_array(record.end_poses[index]),
        gripper_open=gripper_mm >= RobotBackend.GRIPPER_OPEN_THRESHOLD_MM,
        gripper_mm=gripper_mm,
        joints_rad=tuple(float(q) for q in record.joints_rad[index]),
        stamp_s=float(record.stamps_s[index]),
        seq=index,
    )


def record_to_episode(record: EpisodeRecord, *, robot_id: str = "sim_0", episode_id: str | None = None) -> Episode:
    """The core ``Episode`` of a rendered ``EpisodeRecord`` (it needs the images)."""
    if record.front_images.shape[0] != record.length + 1:
        raise ValueError(f"record: {record.front_images.shape[0]} frames for {record.length} steps; render it first")
    transitions = []
    for t in range(record.length):
        observation = record_observation(record, t, robot_id)
        delta = DeltaAction(*(int(v) for v in np.asarray(record.actions[t])))
        action = PolicyAction(
            delta=delta,
            text=format_action(delta),
            token_logprobs=(),
            value=0.0,
            policy_version=0,
            obs_stamp_s=observation.stamp_s,
            inference_latency_s=0.0,
            robot_id=robot_id,
            obs_seq=t,
        )
        transitions.append(
            Transition(observation=observation, action=action, progress_pct=None, reward=0.0, done_prob=0.0, done=False)
        )
    return Episode(
        episode_id=episode_id or f"{record.task}_{record.variant}_s{record.seed}",
        robot_id=robot_id,
        task=record.text,
        transitions=transitions,
        final_observation=record_observation(record, record.length, robot_id),
        termination=Termination.DONE,
        success=record.success,
    )
