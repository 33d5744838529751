"""Core objects with every field set to a distinct, non-default value, shared by converter and bag tests.

Floats are exactly representable in float32 and stamps in whole nanoseconds, so a round trip
through messages must give back equal objects.
"""

from __future__ import annotations

import numpy as np

from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition


def image(seed: int, height: int = 6, width: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def observation(step: int, robot_id: str = "arm_0", task: str = "pick up the red cube", views: int = 2) -> Observation:
    return Observation(
        robot_id=robot_id,
        task=task,
        images=tuple(image(100 * step + v, height=6 + v, width=8 + v) for v in range(views)),
        end_pose=EndPose(
            x_mm=150.5 + step, y_mm=-20.25, z_mm=210.0 - step, roll_deg=179.5, pitch_deg=-2.5, yaw_deg=90.0 + step
        ),
        gripper_open=step % 2 == 0,
        gripper_mm=35.5 - step,
        joints_rad=(0.125, -0.5, 1.25, 0.0, 0.75, -1.5 + step / 8),
        stamp_s=1_700_000_000.25 + step * 0.5,
        seq=step,
    )


def policy_action(step: int, robot_id: str = "arm_0") -> PolicyAction:
    delta = DeltaAction(dx_mm=-47 + step, dy_mm=12, dz_mm=-3, droll_deg=-180, dpitch_deg=5, dyaw_deg=180, open=step % 2)
    return PolicyAction(
        delta=delta,
        text=f"{{x: {delta.dx_mm}mm, y: 12mm, z: -3mm, roll: -180°, pitch: 5°, yaw: 180°, open: {delta.open}}}",
        token_logprobs=(-0.5, -1.25, -0.0078125 * step),
        value=0.375 + step,
        policy_version=7,
        obs_stamp_s=1_700_000_000.25 + step * 0.5,
        inference_latency_s=0.125,
        robot_id=robot_id,
        obs_seq=step,
        logprob_needs_recompute=step == 1,
    )


def transition(step: int, robot_id: str = "arm_0", task: str = "pick up the red cube") -> Transition:
    return Transition(
        observation=observation(step, robot_id, task),
        action=policy_action(step, robot_id),
        progress_pct=None if step == 1 else 12.5 - step,
        reward=0.125 * step - 0.5,
        done_prob=0.0625 * step,
        done=step == 2,
        human=step == 0,
        critic_done=step == 1,  # differs from done: a ground-truth reward source drove this episode
        gt_progress=None if step == 1 else 0.125 * step - 0.25,  # step 1: no ground truth (a real arm)
        gt_done=None if step == 1 else step == 2,
        gt_phase="" if step == 1 else f"phase{step}",
    )


def episode(steps: int = 3, **overrides) -> Episode:
    robot_id = overrides.pop("robot_id", "arm_0")
    task = overrides.pop("task", "pick up the red cube")
    values = {
        "episode_id": "ep-2026-11-21-0001",
        "robot_id": robot_id,
        "task": task,
        "transitions": [transition(i, robot_id, task) for i in range(steps)],
        "final_observation": observation(steps, robot_id, task),
        "termination": Termination.DONE,
        "success": True,
        "policy_version": 7,
        "start_state_id": "state-42",
    }
    values.update(overrides)
    return Episode(**values)


def assert_observations_equal(a: Observation, b: Observation) -> None:
    assert (a.robot_id, a.task, a.end_pose, a.gripper_open, a.gripper_mm, a.joints_rad, a.stamp_s, a.seq) == (
        b.robot_id,
        b.task,
        b.end_pose,
        b.gripper_open,
        b.gripper_mm,
        b.joints_rad,
        b.stamp_s,
        b.seq,
    )
    assert len(a.images) == len(b.images)
    for x, y in zip(a.images, b.images, strict=True):
        assert x.dtype == y.dtype == np.uint8
        np.testing.assert_array_equal(x, y)


def assert_transitions_equal(a: Transition, b: Transition) -> None:
    assert_observations_equal(a.observation, b.observation)
    assert a.action == b.action
    fields = ("progress_pct", "reward", "done_prob", "done", "human", "critic_done")
    fields += ("gt_progress", "gt_done", "gt_phase")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]


def assert_episodes_equal(a: Episode, b: Episode) -> None:
    assert (a.episode_id, a.robot_id, a.task, a.termination, a.success, a.policy_version, a.start_state_id) == (
        b.episode_id,
        b.robot_id,
        b.task,
        b.termination,
        b.success,
        b.policy_version,
        b.start_state_id,
    )
    assert len(a.transitions) == len(b.transitions)
    for x, y in zip(a.transitions, b.transitions, strict=True):
        assert_transitions_equal(x, y)
    if a.final_observation is None or b.final_observation is None:
        assert a.final_observation is b.final_observation is None
    else:
        assert_observations_equal(a.final_observation, b.final_observation)
