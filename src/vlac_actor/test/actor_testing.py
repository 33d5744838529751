"""Observation helpers and limits shared by the actor tests (a module of its own: test modules of
several packages importing ``conftest`` by name would collide when collected together)."""

from __future__ import annotations

import numpy as np

from vlac_actor.policy_settings import PolicySettings
from vlac_core.types import EndPose, Observation

#: The tiny test checkpoints carry no policy_settings.json: they decode within the release's grammar.
TEST_LIMITS = PolicySettings().action_limits


def make_observation(seed: int = 0, task: str = "pick up the red cube", n_views: int = 1, **pose) -> Observation:
    rng = np.random.default_rng(seed)
    images = tuple(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n_views))
    end_pose = {"x_mm": 250.0, "y_mm": -20.0, "z_mm": 180.0, "roll_deg": 170.0, "pitch_deg": 5.0, "yaw_deg": -90.0}
    end_pose.update(pose)
    return Observation(
        robot_id=f"arm_{seed % 3}",
        task=task,
        images=images,
        end_pose=EndPose(**end_pose),
        gripper_open=bool(seed % 2),
        gripper_mm=30.0,
        joints_rad=(0.0,) * 6,
        stamp_s=1000.0 + seed,
        seq=seed,
    )
