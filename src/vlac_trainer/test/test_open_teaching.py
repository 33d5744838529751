"""Teaching the gripper decision alone on rollouts recorded with ground truth (``vlac train actor`` ``open_data``)."""

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
from vlac_trainer.offline.bc_data import open_batch_indices, open_samples

#: Per frame (13 frames, 12 steps): reach, carry mid-table, over the plate, then done.
PHASES = ["reach"] * 2 + ["carry"] * 6 + ["release"] * 3 + ["done"] * 2
OVER_PLATE_X_MM = 420.0


def rollout_record(seed: int):
    """A policy rollout whose over-the-plate frames differ from the others in the end pose's x only."""
    record = synthetic_record("pick_bowl", "Pick up the bowl", seed)
    poses = record.end_poses.copy()
    poses[[k for k, p in enumerate(PHASES) if p == "release"], 0] = OVER_PLATE_X_MM
    return replace(record, variant="policy", success=False, end_poses=poses, meta={"phase": list(PHASES)})


@pytest.fixture(scope="module")
def rollout_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rollouts")
    for seed in range(4):
        save_episode_npz(root / "npz" / f"policy_{seed}.npz", rollout_record(20 + seed))
    return root


def test_open_samples_are_the_held_steps_with_the_phase_as_label_and_the_executed_fields():
    record = rollout_record(0)
    samples = open_samples(record)
    held = [t for t in range(record.length) if PHASES[t] in ("carry", "release")]
    assert len(samples) == len(held) == 9
    for t, sample in zip(held, samples, strict=True):
        assert sample.over_plate == (PHASES[t] == "release")
        assert sample.action.open == int(sample.over_plate)
        assert sample.action.as_tuple()[:6] == tuple(int(v) for v in record.actions[t][:6])
        assert f"{record.end_poses[t][0]:.0f}" in sample.content or f"{record.end_poses[t][0]:.1f}" in sample.content


def test_open_samples_refuse_a_record_without_phases_or_with_the_wrong_count():
    with pytest.raises(ValueError, match="no ground-truth phases"):
        open_samples(synthetic_record("pick_bowl", "Pick up the bowl", 0))
    short = replace(rollout_record(0), meta={"phase": PHASES[:-1]})
    with pytest.raises(ValueError, match="12 phases"):
        open_samples(short)


def test_open_batches_hold_the_asked_share_over_the_plate_and_repeat_per_step():
    over_plate = [k % 20 == 0 for k in range(200)]  # 5 %, as in a prior's held steps
    batch = open_batch_indices(7, 16, over_plate, 0.25, seed=3)
    assert sum(over_plate[i] for i in batch) == 4 and len(batch) == 16
    assert batch == open_batch_indices(7, 16, over_plate, 0.25, seed=3)
    assert batch != open_batch_indices(8, 16, over_plate, 0.25, seed=3)
    with pytest.raises(ValueError, match="both kinds"):
        open_batch_indices(0, 16, [False] * 10, 0.25, seed=0)


def test_training_with_open_data_teaches_the_gripper_to_read_the_state(demo_dir, rollout_dir, tmp_path):  # noqa: F811
    """Over-the-plate and mid-carry steps differ only in the prompt's x: after training, the exported policy
    opens more over the plate than mid-carry; training_info records the data; the loss is logged."""
    from vlac_actor.policy import load_policy
    from vlac_actor.scoring import score_actions

    config = actor_config(
        demo_dir, tmp_path, open_data=[str(rollout_dir)], steps=40, lr=3e-3, open_batch_size=8, open_over_share=0.5
    )
    result = train_actor_cli.train_actor(config, progress=False)
    assert "open_nll" in result.last_scalars
    info = json.loads((Path(config.out_dir) / "training_info.json").read_text())
    assert (info["open_samples"], info["open_over_plate"]) == (36, 12)
    samples = [s for seed in range(4) for s in open_samples(rollout_record(20 + seed))]
    policy = load_policy(config.out_dir, device="cpu")
    opened = [replace(s.action, open=1) for s in samples]
    p_open = score_actions(policy, [s.content for s in samples], [s.images for s in samples], opened).open_logprob.exp()
    over = np.array([s.over_plate for s in samples])
    assert float(p_open[over].min()) > float(p_open[~over].max())


def test_open_data_without_phases_is_refused_naming_the_key(demo_dir, tmp_path):  # noqa: F811
    config = actor_config(demo_dir, tmp_path, open_data=[str(demo_dir)])
    with pytest.raises(ConfigError, match="open_data"):
        train_actor_cli.train_actor(config, progress=False)
