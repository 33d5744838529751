"""bench/decision_lessons.py: the split of a score gradient by the field each decision chooses, the tallies and the
norm shares, on a tiny policy (a run's own takes tens of minutes and its bags; not run here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from actor_episodes import recorded_episode
from bench_scripts import load_bench

from vlac_actor.inputs import InputLimits
from vlac_actor.policy import load_policy
from vlac_core.model import TinyModelSpec, build_tiny_model
from vlac_core.types import DeltaAction

ACTIONS = [DeltaAction(10, 0, -5, 0, 0, 0, 1), DeltaAction(-3, 7, 0, 4, 0, -12, 0), DeltaAction(0, 0, 20, 0, 0, 0, 1)]


@pytest.fixture(scope="module")
def dl():
    yield from load_bench("decision_lessons")


@pytest.fixture(scope="module")
def ga():
    yield from load_bench("gradient_agreement")


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("p"), TinyModelSpec(image_size_px=32, seed=3))
    policy = load_policy(path, device="cpu", allow_fresh_value_head=True)
    policy.loaded.model.eval()
    return policy


def _tallies(classes):
    return {name: {"steps": 0, "decisions": 0, "surprisal": 0.0, "entropy": 0.0} for name in classes}


def test_every_decision_belongs_to_one_class_and_the_gripper_decides_once_a_step(dl, policy):
    mask = torch.zeros(len(ACTIONS), 40, dtype=torch.bool)
    for row, action in enumerate(ACTIONS):
        mask[row, : len(policy.grammar.walk(policy.grammar.token_ids(action)))] = True
    masks = dl.class_masks(policy, ACTIONS, mask, dl.SPLITS["kind"])
    assert torch.equal(sum(m.int() for m in masks.values()), mask.int())  # a partition of the scored slots
    assert masks["gripper"].sum(dim=1).tolist() == [1, 1, 1]
    assert all(bool(masks["gripper"][row, int(mask[row].sum()) - 1]) for row in range(len(ACTIONS)))  # the last one
    with pytest.raises(RuntimeError, match="decisions by the grammar"):
        dl.class_masks(policy, ACTIONS, mask[:, :3], dl.SPLITS["kind"])
    by_field = dl.class_masks(policy, ACTIONS, mask, dl.SPLITS["field"])
    assert torch.equal(by_field["open"], masks["gripper"])
    assert torch.equal(by_field["dx_mm"] | by_field["dy_mm"] | by_field["dz_mm"], masks["translation"])


def test_the_classes_gradients_sum_to_the_episodes_score_gradient(dl, ga, policy):
    episode = recorded_episode(ACTIONS, [False, True, False])  # the operator's step is left out of both
    limits = InputLimits()
    kinds = dl.SPLITS["kind"]
    tallies = _tallies(kinds)
    parts = dl.class_score_gradients(policy, episode, limits, kinds, tallies)
    whole = ga.score_gradient(policy, episode, limits)
    torch.testing.assert_close(sum(parts.values()), whole, rtol=1e-4, atol=1e-6)
    fields = dl.class_score_gradients(policy, episode, limits, dl.SPLITS["field"], _tallies(dl.SPLITS["field"]))
    torch.testing.assert_close(sum(fields.values()), whole, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fields["open"], parts["gripper"], rtol=1e-4, atol=1e-7)
    assert all(float(part.norm()) > 0 for part in parts.values())
    cosine = float(parts["translation"] @ parts["gripper"] / (parts["translation"].norm() * parts["gripper"].norm()))
    assert abs(cosine) < 0.99  # the parts are different directions, not one gradient scaled
    assert {name: t["steps"] for name, t in tallies.items()} == {name: 2 for name in kinds}
    assert tallies["gripper"]["decisions"] == 2
    assert tallies["translation"]["decisions"] > tallies["gripper"]["decisions"]
    for tally in tallies.values():
        assert tally["surprisal"] > 0 and tally["entropy"] > 0


def test_norm_shares_split_the_lessons_squared_norm(dl):
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scores = {"translation": [s * 3.0], "rotation": [s], "gripper": [s * 0.0]}
    shares = dl.norm_shares(scores, [np.array([1.0, -1.0])])
    assert shares == pytest.approx({"translation": 0.9, "rotation": 0.1, "gripper": 0.0})
    assert dl.norm_shares({"gripper": [s]}, [np.array([0.0, 0.0])]) == {"gripper": 0.0}
