"""bench/policy_drift.py: the trainer's KL estimator per action, and a run folder's drift measured end to end with
tiny policies (a run's own takes a minute and its bags; not run here)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from actor_episodes import recorded_episode
from bench_scripts import load_bench

from vlac_actor.policy import load_policy
from vlac_actor.value_head import ValueHead
from vlac_core.model import TinyModelSpec, build_tiny_model
from vlac_core.types import DeltaAction


@pytest.fixture(scope="module")
def pd():
    yield from load_bench("policy_drift")


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    paths = {}
    for seed in (3, 4):  # policy checkpoints: a tiny model and a value head each
        paths[seed] = build_tiny_model(root / f"p{seed}", TinyModelSpec(image_size_px=32, seed=seed))
        ValueHead(TinyModelSpec().text_hidden, seed=seed).save(paths[seed])
    return paths


ACTIONS = [
    DeltaAction(10, 0, -5, 0, 0, 0, 1),
    DeltaAction(-3, 7, 0, 0, 0, 0, 0),
    DeltaAction(0, 0, 20, 0, 0, 0, 1),
    DeltaAction(-12, -1, 3, 0, 0, 0, 0),
    DeltaAction(5, 5, 5, 0, 0, 0, 1),
]


def _load(path):
    policy = load_policy(path, device="cpu", allow_fresh_value_head=True)
    policy.loaded.model.eval()
    return policy


def test_the_kl_per_action_is_the_trainers_anchor_estimate_before_its_mean(pd):
    from vlac_trainer.online.ppo import prior_kl

    rng = np.random.default_rng(0)
    policy = torch.tensor(rng.normal(-1.0, 0.5, (4, 3)), dtype=torch.float32)
    prior = torch.tensor(rng.normal(-1.0, 0.5, (4, 3)), dtype=torch.float32)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    rows = lambda t: [tuple(t[b][mask[b]].tolist()) for b in range(t.shape[0])]  # noqa: E731 (each action's)
    k3, k1 = pd.action_kls(rows(policy), rows(prior))
    assert k3.mean() == pytest.approx(float(prior_kl(policy, prior, mask)), rel=1e-6)
    assert k1[1] == pytest.approx(float((policy[1, :2] - prior[1, :2]).sum()), rel=1e-6)  # padding left out
    assert (k3 >= 0).all()
    with pytest.raises(ValueError, match="decisions differently"):
        pd.action_kls(rows(policy), [*rows(prior)[:3], (0.0,)])


def test_the_figures_say_how_much_and_where_the_policy_moved(pd):
    figures = pd.drift_figures(np.array([0.0, 0.1, 0.5, 2.0]), np.array([0.0, -0.5, 1.5, -2.0]))
    assert figures["actions"] == 4 and figures["kl_per_action"] == pytest.approx(0.65)
    assert figures["kl_k1_per_action"] == pytest.approx(-0.25) and figures["far_share"] == 0.5
    with pytest.raises(ValueError, match="no actions"):
        pd.drift_figures(np.array([]), np.array([]))


def test_a_runs_drift_is_zero_from_itself_and_positive_from_another_policy(pd, policies, tmp_path):
    from vlac_core.bag import write_episode

    run = tmp_path / "run"
    rows = []
    for k, human in enumerate(([False] * 5, [False, True, False, False, True])):
        episode = recorded_episode(ACTIONS, human, f"e{k}")
        write_episode(run / "bags" / "train" / episode.episode_id, episode)
        rows.append({"episode_id": episode.episode_id, "phase": "train", "termination": "step_limit",
                     "start_state_id": "pick_bowl-seed0", "success": False, "episode_return": 0.0})  # fmt: skip
    (run / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    itself = pd.run_drift(run, policies[3], policies[3], episodes=20)
    assert itself["episodes"] == 2 and itself["actions"] == 8  # the operator's two steps left out
    assert itself["kl_per_action"] == pytest.approx(0.0, abs=1e-6) and itself["far_share"] == 0.0
    other = pd.run_drift(run, policies[4], policies[3], episodes=1)  # the last episode only
    assert other["episodes"] == 1 and other["first_episode"] == "e1" and other["actions"] == 3
    assert other["kl_per_action"] > 0 and math.isfinite(other["kl_k1_per_action"])
    with pytest.raises(SystemExit, match="give --policy and --prior"):
        pd.main([str(tmp_path / "no_run")])
