"""Small, fully-populated episodes for buffer, codec and checkpoint tests (distinct values everywhere)."""

from __future__ import annotations

import math

import numpy as np

from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition


def observation(step: int, robot_id: str, seed: int, views: int = 2) -> Observation:
    rng = np.random.default_rng(seed * 1000 + step)
    return Observation(
        robot_id=robot_id,
        task="put the cube in the bowl",
        images=tuple(rng.integers(0, 256, size=(4 + v, 5 + v, 3), dtype=np.uint8) for v in range(views)),
        end_pose=EndPose(100.1 + step, -20.3, 200.7, 179.9, 0.1 * step, -90.0),
        gripper_open=step % 2 == 0,
        gripper_mm=33.3 - step,
        joints_rad=(0.1, -0.2 * step, 0.3, 0.0, 1.0 / 3.0, -1.5),
        stamp_s=1000.0 + 0.37 * step,
        seq=step,
    )


def make_episode(
    episode_id: str,
    robot_id: str = "arm_0",
    steps: int = 3,
    termination: Termination = Termination.STEP_LIMIT,
    success: bool | None = None,
    human_steps: int = 0,
    policy_version: int = 1,
    seed: int = 0,
) -> Episode:
    transitions = []
    for t in range(steps):
        human = t >= steps - human_steps
        action = PolicyAction(
            delta=DeltaAction(t, -t, 2 * t, 0, 1, -1, t % 2),
            text=f"{{x: {t}mm, ...}}",
            token_logprobs=() if human else (-0.1 * (t + 1), -1.0 / 3.0),
            value=math.nan if human else 0.25 * t - 1.0 / 7.0,
            policy_version=-1 if human else policy_version,
            obs_stamp_s=1000.0 + 0.37 * t,
            inference_latency_s=0.123,
            robot_id=robot_id,
            obs_seq=t,
            logprob_needs_recompute=t == 1,
        )
        transitions.append(
            Transition(
                observation=observation(t, robot_id, seed),
                action=action,
                progress_pct=None if t == 1 else 12.5 * t - 0.1,
                reward=0.0 if t == 1 else 0.125 * t - 0.001,
                done_prob=0.1 * t,
                done=termination is Termination.DONE and t == steps - 1,
                human=human,
            )
        )
    return Episode(
        episode_id=episode_id,
        robot_id=robot_id,
        task="put the cube in the bowl",
        transitions=transitions,
        final_observation=observation(steps, robot_id, seed),
        termination=termination,
        success=success,
        policy_version=policy_version,
        start_state_id=f"state-{seed}" if seed % 2 else None,
    )


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b)
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return type(a) is type(b) and a == b


def assert_same_episode(a: Episode, b: Episode) -> None:
    """Field-by-field equality (numpy images by value, NaN equal to NaN, types included)."""
    assert _same(a, b), f"episodes {a.episode_id!r} and {b.episode_id!r} differ"
