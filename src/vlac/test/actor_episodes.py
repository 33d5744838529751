"""Episodes of given actions on random 32 px frames, for the tests of bench scripts that score recorded actions with
a tiny policy (bench/gradient_agreement.py, bench/policy_drift.py)."""

from __future__ import annotations

import numpy as np

from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition


def recorded_episode(actions: list[DeltaAction], human: list[bool], episode_id: str = "e") -> Episode:
    """One step per action (``human[k]``: the operator's), the frames drawn from a fixed seed, cut at the step limit."""
    rng = np.random.default_rng(1)
    transitions = []
    for k, (delta, by_human) in enumerate(zip(actions, human, strict=True)):
        observation = Observation(
            robot_id="arm_0",
            task="pick up the bowl",
            images=(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),),
            end_pose=EndPose(300.0, 10.0 * k, 200.0, 180.0, 0.0, 0.0),
            gripper_open=True,
            gripper_mm=60.0,
            joints_rad=(0.0,) * 6,
            stamp_s=float(k),
        )
        action = PolicyAction(delta, "", (), 0.0, 0, float(k), 0.0)
        transitions.append(Transition(observation, action, None, 0.0, 0.0, False, human=by_human))
    return Episode(episode_id, "arm_0", "pick up the bowl", transitions, termination=Termination.STEP_LIMIT)
