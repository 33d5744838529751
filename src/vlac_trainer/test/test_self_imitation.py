"""Filtered self-imitation (``vlac train actor`` ``self_data``): the policy's own successes, cut where they succeed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_train_loops import actor_config, demo_dir, synthetic_record  # noqa: F401 (demo_dir: a fixture)

from piper_driver.sim.demo_format import save_episode_npz
from vlac_core.config import ConfigError
from vlac_trainer.offline import train_actor_cli
from vlac_trainer.offline.bc_data import bc_samples
from vlac_trainer.offline.train_common import load_self_records, until_first_success

STEPS = 12


def policy_rollout(seed: int, first_success_step: int | None, undone_after: int | None = None):
    """A 12-step 'policy' rollout whose ground truth turns to success after step ``first_success_step``."""
    success = np.zeros(STEPS + 1, dtype=bool)
    if first_success_step is not None:
        success[first_success_step:] = True
        if undone_after is not None:
            success[undone_after:] = False
    record = synthetic_record("pick_bowl", "Pick up the bowl", seed, steps=STEPS)
    meta = {"phase": [f"p{k}" for k in range(STEPS + 1)], "controller": ["policy"] * STEPS, "takeover_at": None}
    return replace(record, variant="policy", success=bool(success[-1]), success_steps=success, meta=meta)


def test_a_success_is_cut_after_the_step_that_reached_it_with_its_header_lists():
    cut = until_first_success(policy_rollout(0, first_success_step=5, undone_after=9))
    assert cut.length == 5 and cut.success
    assert cut.front_images.shape[0] == cut.end_poses.shape[0] == cut.success_steps.shape[0] == 6
    assert cut.success_steps.tolist() == [False] * 5 + [True]
    assert cut.meta == {"phase": [f"p{k}" for k in range(6)], "controller": ["policy"] * 5, "takeover_at": None}
    full = policy_rollout(0, first_success_step=5)
    assert np.array_equal(cut.actions, full.actions[:5]) and np.array_equal(cut.front_images, full.front_images[:6])
    assert len(bc_samples(cut)) == 5


def test_only_the_policys_own_successes_are_loaded_even_one_later_undone(tmp_path):
    root = tmp_path / "rollouts"
    save_episode_npz(root / "npz" / "s1.npz", policy_rollout(1, first_success_step=7))
    save_episode_npz(root / "npz" / "s2.npz", policy_rollout(2, first_success_step=4, undone_after=8))
    save_episode_npz(root / "npz" / "s3.npz", policy_rollout(3, first_success_step=None))
    save_episode_npz(root / "npz" / "s4.npz", replace(synthetic_record("pick_bowl", "Pick up the bowl", 4)))
    loaded = load_self_records([str(root)])
    assert [(r.seed, r.length) for r in loaded] == [(1, 7), (2, 4)]


def test_a_folder_without_a_successful_rollout_is_refused_naming_the_key(tmp_path):
    root = tmp_path / "failures"
    save_episode_npz(root / "f.npz", policy_rollout(5, first_success_step=None))
    with pytest.raises(ConfigError, match=r"self_data: .* no successful 'policy' rollout"):
        load_self_records([str(root)])
    with pytest.raises(ConfigError, match=r"self_data: .* not a directory"):
        load_self_records([str(tmp_path / "missing")])


def test_training_on_own_successes_alone_runs_and_records_the_data(tmp_path):
    root = tmp_path / "rollouts"
    for seed in range(3):
        save_episode_npz(root / f"s{seed}.npz", policy_rollout(seed, first_success_step=6 + seed))
    save_episode_npz(root / "f.npz", policy_rollout(9, first_success_step=None))
    config = actor_config(tmp_path, tmp_path, train_data=[], self_data=[str(root)])
    result = train_actor_cli.train_actor(config, progress=False)
    assert result.steps_done == config.steps
    info = json.loads((Path(config.out_dir) / "training_info.json").read_text())
    assert (info["self_episodes"], info["bc_samples"], info["episodes"]) == (3, 6 + 7 + 8, 3)


def test_no_data_at_all_is_refused_naming_both_keys(tmp_path):
    config = actor_config(tmp_path, tmp_path, train_data=[])
    with pytest.raises(ConfigError, match="train_data and self_data"):
        train_actor_cli.train_actor(config, progress=False)
