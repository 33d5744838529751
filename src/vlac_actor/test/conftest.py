"""Session-wide tiny policies (built offline once) for the actor tests; plain helpers live in actor_testing.py."""

from __future__ import annotations

import pytest
import torch

from vlac_actor.policy import load_policy
from vlac_actor.value_head import ValueHead
from vlac_core.model import TinyModelSpec, build_tiny_model


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
    return load_policy(policy_dir, version=1, device="cpu")
