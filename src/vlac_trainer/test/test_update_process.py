"""PPO updates in a child process (``trainer_node.own_process``): the same update, mirrored back; failures named."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import ppo_trainer_helpers as h
import pytest
import torch

from vlac_trainer.online.ppo_trainer import PPOTrainer
from vlac_trainer.online.update_process import ProcessUpdater, UpdateProcessError
from vlac_trainer.online.wiring import build_trainer, start_point


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return h.build_policy_dir(tmp_path_factory.mktemp("update_process_policy"))


@pytest.fixture(scope="module")
def cfg(policy_dir):
    return h.config(policy_dir, learning_rate=1e-4, target_kl=0.0)


@pytest.fixture(scope="module")
def updater(cfg, policy_dir):
    child = ProcessUpdater(cfg, str(policy_dir), 0, torch_threads=1)
    yield child
    child.close()


def _batches(policy):
    """Two updates' episodes, sampled by the starting policy (the second one old data for the second update)."""
    first = [h.sampled(policy, h.episode("e0", [0.5, -0.5, 0.2], seed=0))]
    second = [h.sampled(policy, h.episode("e1", [-0.3, 0.4, 0.1, 0.6], seed=1))]
    return first, second


def _weights(trainer: PPOTrainer) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in trainer.parameters()]


def test_an_update_in_the_child_is_the_in_process_update_mirrored_into_the_callers_trainer(cfg, policy_dir, updater):
    here = PPOTrainer(h.load(policy_dir), cfg)
    there = PPOTrainer(h.load(policy_dir), cfg)
    for batch in _batches(here.policy):
        expected = here.update(batch)
        got = updater.update(there, batch)
        for key in ("policy_version", "steps", "minibatches", "early_stopped"):
            assert getattr(got, key) == getattr(expected, key), key
        for key in ("loss", "pg_loss", "v_loss", "approx_kl", "explained_variance"):
            assert math.isclose(getattr(got, key), getattr(expected, key), rel_tol=1e-5, abs_tol=1e-7), key
    # the caller's trainer holds the child's result: weights (they moved), optimizer, counters, generator
    start = _weights(PPOTrainer(h.load(policy_dir), cfg))
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(there), start, strict=True))
    for a, b in zip(_weights(there), _weights(here), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert there.policy.version == here.policy.version == 2 and there.updates == here.updates == 2
    assert there.optimizer.state_dict()["state"][0]["step"] == here.optimizer.state_dict()["state"][0]["step"]
    assert there.rng.bit_generator.state == here.rng.bit_generator.state


def test_an_update_leaves_the_callers_weights_in_their_own_memory(cfg, policy_dir, updater):
    # The session's other threads run while an update is out: sending the state must copy the weights,
    # not move them into shared memory under those threads (torch's multiprocessing pickler does that).
    trainer = PPOTrainer(h.load(policy_dir), cfg)
    tensors = list(trainer.parameters()) + list(trainer.policy.loaded.model.buffers())
    where = [t.untyped_storage().data_ptr() for t in tensors]
    first, _ = _batches(trainer.policy)
    updater.update(trainer, first)
    assert [t.untyped_storage().data_ptr() for t in tensors] == where
    assert not any(t.is_shared() for t in tensors)
    state = trainer.optimizer.state_dict()["state"]
    assert state and not any(v.is_shared() for s in state.values() for v in s.values() if torch.is_tensor(v))


def test_a_failed_update_is_raised_naming_why_and_leaves_the_callers_trainer_as_it_was(cfg, policy_dir, updater):
    trainer = PPOTrainer(h.load(policy_dir), cfg)
    before = _weights(trainer)
    with pytest.raises(UpdateProcessError, match="trainer update process: updating failed: ValueError: update: no"):
        updater.update(trainer, [])
    assert trainer.policy.version == 0 and trainer.updates == 0
    assert all(np.array_equal(a, b) for a, b in zip(_weights(trainer), before, strict=True))
    first, _ = _batches(trainer.policy)
    assert updater.update(trainer, first).policy_version == 1  # the child serves the next update


def test_own_process_is_wired_from_the_config_and_the_trainer_stops_its_child(cfg, tmp_path):
    wired = replace(cfg, own_process=True, episodes_per_update=2, update_epochs=1)
    announced = []
    trainer = build_trainer(wired, tmp_path, start_point(wired, tmp_path), lambda v, p: announced.append(v))
    assert isinstance(trainer.updater, ProcessUpdater)
    trainer.submit(h.episode("e0", [0.3, -0.2], seed=0))
    trainer.submit(h.episode("e1", [0.1, 0.2], seed=1))
    stats = trainer.update_once()
    assert stats.policy_version == 1 and trainer.trainer.policy.version == 1 and announced == [1]
    trainer.stop(timeout_s=30)
    with pytest.raises(UpdateProcessError, match="closed"):
        trainer.updater.update(trainer.trainer, [])


def test_the_lessons_running_sum_goes_to_the_child_and_comes_back(policy_dir):
    # Two updates in the child against two in process: the second lesson's cosine to the first needs the first's
    # sum to have crossed the pipe both ways, and the caller's trainer holds the sum after them.
    lesson_cfg = h.config(policy_dir, learning_rate=1e-4, target_kl=0.0, lesson_agreement=True)
    here = PPOTrainer(h.load(policy_dir), lesson_cfg)
    there = PPOTrainer(h.load(policy_dir), lesson_cfg)
    child = ProcessUpdater(lesson_cfg, str(policy_dir), 0, torch_threads=1)
    try:
        for batch in _batches(here.policy):
            expected, got = here.update(batch), child.update(there, batch)
            assert got.lessons == expected.lessons
            assert got.lesson_norm == pytest.approx(expected.lesson_norm, rel=1e-5)
    finally:
        child.close()
    assert got.lessons == 2 and math.isfinite(got.lesson_cos_to_past)
    assert got.lesson_cos_to_past == pytest.approx(expected.lesson_cos_to_past, abs=1e-5)
    assert there.lessons.count == 2
    torch.testing.assert_close(there.lessons.unit_sum, here.lessons.unit_sum, rtol=0, atol=1e-5)
