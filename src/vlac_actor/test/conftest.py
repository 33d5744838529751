"""Session-wide tiny policies (built offline once) and observation helpers for the actor tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlac_actor.grammar import ActionLimits
from vlac_actor.policy import load_policy
from vlac_actor.value_head import ValueHead
from vlac_core.model import TinyModelSpec, build_tiny_model
from vlac_core.types import EndPose, Observation

TEST_LIMITS = ActionLimits(max_translation_mm=100)


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    # The CI machine has 2 cores shared with other jobs; tiny models gain nothing from more threads.
    torch.set_num_threads(1)


def _policy_dir(root, seed: int):
    path = build_tiny_model(root / "model", TinyModelSpec(seed=seed))
    ValueHead(TinyModelSpec().text_hidden, seed=seed).save(path)
    return path


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory):
    """A tiny policy checkpoint (InternVL safetensors + value_head.safetensors)."""
    return _policy_dir(tmp_path_factory.mktemp("policy_v1"), seed=0)


@pytest.fixture(scope="session")
def policy_dir_v2(tmp_path_factory):
    """A second tiny policy with other weights (a "new version" for reload tests)."""
    return _policy_dir(tmp_path_factory.mktemp("policy_v2"), seed=1)


@pytest.fixture(scope="session")
def policy(policy_dir):
    return load_policy(policy_dir, version=1, limits=TEST_LIMITS, device="cpu")


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
