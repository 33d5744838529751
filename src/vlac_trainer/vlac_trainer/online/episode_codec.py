"""Episodes <-> (named uint8 image arrays, JSON-able metadata), for buffer checkpoints.

Images go to safetensors as uint8 arrays, one per observation and view (views may differ in size);
everything else is JSON. Python's ``json`` writes floats with ``repr`` (shortest round-trip form),
so every float, NaN included, reads back bit for bit: a resumed buffer holds the same episodes.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

from vlac_core.types import (
    DeltaAction,
    EndPose,
    Episode,
    Observation,
    PolicyAction,
    Termination,
    Transition,
)

#: Written into every encoded episode; bump when the layout changes.
EPISODE_FORMAT = "vlac_trainer.episode/1"


class EpisodeDecodeError(ValueError):
    """Stored episode metadata or arrays do not fit together; the message names what is off."""


def _encode_observation(obs: Observation, key: str, arrays: MutableMapping[str, np.ndarray]) -> dict[str, Any]:
    image_keys = []
    for k, image in enumerate(obs.images):
        image_key = f"{key}/img{k}"
        if image_key in arrays:
            raise ValueError(f"array key {image_key!r} used twice: episode keys must be unique")
        arrays[image_key] = np.ascontiguousarray(image)
        image_keys.append(image_key)
    return {
        "robot_id": obs.robot_id,
        "task": obs.task,
        "images": image_keys,
        "end_pose": [float(v) for v in obs.end_pose.as_array()],
        "gripper_open": bool(obs.gripper_open),
        "gripper_mm": float(obs.gripper_mm),
        "joints_rad": [float(v) for v in obs.joints_rad],
        "stamp_s": float(obs.stamp_s),
        "seq": int(obs.seq),
    }


def _decode_observation(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Observation:
    missing = [k for k in meta["images"] if k not in arrays]
    if missing:
        raise EpisodeDecodeError(f"image arrays {missing} are named in the metadata but not stored")
    return Observation(
        robot_id=meta["robot_id"],
        task=meta["task"],
        images=tuple(np.asarray(arrays[k]) for k in meta["images"]),
        end_pose=EndPose.from_array(meta["end_pose"]),
        gripper_open=meta["gripper_open"],
        gripper_mm=meta["gripper_mm"],
        joints_rad=tuple(meta["joints_rad"]),
        stamp_s=meta["stamp_s"],
        seq=meta["seq"],
    )


def _encode_action(action: PolicyAction) -> dict[str, Any]:
    return {
        "delta": list(action.delta.as_tuple()),
        "text": action.text,
        "token_logprobs": [float(v) for v in action.token_logprobs],
        "value": float(action.value),
        "policy_version": int(action.policy_version),
        "obs_stamp_s": float(action.obs_stamp_s),
        "inference_latency_s": float(action.inference_latency_s),
        "robot_id": action.robot_id,
        "obs_seq": int(action.obs_seq),
        "logprob_needs_recompute": bool(action.logprob_needs_recompute),
    }


def _decode_action(meta: Mapping[str, Any]) -> PolicyAction:
    return PolicyAction(
        delta=DeltaAction(*meta["delta"]),
        text=meta["text"],
        token_logprobs=tuple(meta["token_logprobs"]),
        value=meta["value"],
        policy_version=meta["policy_version"],
        obs_stamp_s=meta["obs_stamp_s"],
        inference_latency_s=meta["inference_latency_s"],
        robot_id=meta["robot_id"],
        obs_seq=meta["obs_seq"],
        logprob_needs_recompute=meta["logprob_needs_recompute"],
    )


def encode_episode(episode: Episode, key: str, arrays: MutableMapping[str, np.ndarray]) -> dict[str, Any]:
    """Put ``episode``'s images into ``arrays`` under ``key/...`` and return its JSON-able metadata."""
    transitions = []
    for t, tr in enumerate(episode.transitions):
        transitions.append(
            {
                "observation": _encode_observation(tr.observation, f"{key}/obs{t:05d}", arrays),
                "action": _encode_action(tr.action),
                "progress_pct": None if tr.progress_pct is None else float(tr.progress_pct),
                "reward": float(tr.reward),
                "done_prob": float(tr.done_prob),
                "done": bool(tr.done),
                "human": bool(tr.human),
                "critic_done": bool(tr.critic_done),
                "gt_progress": tr.gt_progress,
                "gt_done": tr.gt_done,
                "gt_phase": tr.gt_phase,
            }
        )
    final = episode.final_observation
    return {
        "format": EPISODE_FORMAT,
        "episode_id": episode.episode_id,
        "robot_id": episode.robot_id,
        "task": episode.task,
        "transitions": transitions,
        "final_observation": None if final is None else _encode_observation(final, f"{key}/final", arrays),
        "termination": None if episode.termination is None else episode.termination.value,
        "success": episode.success,
        "policy_version": int(episode.policy_version),
        "start_state_id": episode.start_state_id,
    }


def decode_episode(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Episode:
    """Rebuild an Episode from ``encode_episode``'s metadata and the stored arrays."""
    if meta.get("format") != EPISODE_FORMAT:
        raise EpisodeDecodeError(f"episode format {meta.get('format')!r}: this reader knows {EPISODE_FORMAT!r}")
    try:
        transitions = [
            Transition(
                observation=_decode_observation(tr["observation"], arrays),
                action=_decode_action(tr["action"]),
                progress_pct=tr["progress_pct"],
                reward=tr["reward"],
                done_prob=tr["done_prob"],
                done=tr["done"],
                human=tr["human"],
                critic_done=tr.get("critic_done"),  # absent in checkpoints written before it existed
                gt_progress=tr.get("gt_progress"),
                gt_done=tr.get("gt_done"),
                gt_phase=tr.get("gt_phase", ""),
            )
            for tr in meta["transitions"]
        ]
        final = meta["final_observation"]
        return Episode(
            episode_id=meta["episode_id"],
            robot_id=meta["robot_id"],
            task=meta["task"],
            transitions=transitions,
            final_observation=None if final is None else _decode_observation(final, arrays),
            termination=None if meta["termination"] is None else Termination(meta["termination"]),
            success=meta["success"],
            policy_version=meta["policy_version"],
            start_state_id=meta["start_state_id"],
        )
    except KeyError as exc:
        raise EpisodeDecodeError(f"episode {meta.get('episode_id')!r}: metadata lacks field {exc}") from exc
