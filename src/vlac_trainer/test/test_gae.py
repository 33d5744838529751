"""GAE against hand-computed values, both ways an episode can end."""

from __future__ import annotations

import pytest
import torch
from trainer_fixtures import make_episode

from vlac_core.types import Termination
from vlac_trainer.online.gae import bootstraps, compute_gae, episode_advantages

REWARDS = [1.0, 0.0, 2.0]
VALUES = [0.5, 1.0, 1.5]
GAMMA, LAMBDA = 0.9, 0.8


def test_terminated_episode_does_not_bootstrap():
    # t=2: delta = 2 - 1.5 = 0.5                       A2 = 0.5
    # t=1: delta = 0 + 0.9*1.5 - 1.0 = 0.35            A1 = 0.35 + 0.72*0.5 = 0.71
    # t=0: delta = 1 + 0.9*1.0 - 0.5 = 1.4             A0 = 1.4 + 0.72*0.71 = 1.9112
    adv, ret = compute_gae(REWARDS, VALUES, terminated=True, bootstrap_value=None, gamma=GAMMA, gae_lambda=LAMBDA)
    assert adv.tolist() == pytest.approx([1.9112, 0.71, 0.5])
    assert ret.tolist() == pytest.approx([2.4112, 1.71, 2.0])


def test_truncated_episode_bootstraps_from_final_value():
    # t=2: delta = 2 + 0.9*2.0 - 1.5 = 2.3             A2 = 2.3
    # t=1: delta = 0.35                                 A1 = 0.35 + 0.72*2.3 = 2.006
    # t=0: delta = 1.4                                  A0 = 1.4 + 0.72*2.006 = 2.84432
    adv, ret = compute_gae(REWARDS, VALUES, terminated=False, bootstrap_value=2.0, gamma=GAMMA, gae_lambda=LAMBDA)
    assert adv.tolist() == pytest.approx([2.84432, 2.006, 2.3])
    assert ret.tolist() == pytest.approx([3.34432, 3.006, 3.8])


def test_terminated_ignores_a_given_bootstrap_value():
    a, _ = compute_gae(REWARDS, VALUES, terminated=True, bootstrap_value=99.0, gamma=GAMMA, gae_lambda=LAMBDA)
    b, _ = compute_gae(REWARDS, VALUES, terminated=True, bootstrap_value=None, gamma=GAMMA, gae_lambda=LAMBDA)
    assert torch.equal(a, b)


def test_lambda_one_gives_discounted_monte_carlo_returns():
    # 4 steps, terminated: R3 = 1, R2 = 0 + 0.5*1 = 0.5, R1 = 2 + 0.25 = 2.25, R0 = -1 + 1.125 = 0.125
    _, ret = compute_gae(
        [-1.0, 2.0, 0.0, 1.0], [0.3, -0.2, 0.7, 0.1], terminated=True, bootstrap_value=None, gamma=0.5, gae_lambda=1.0
    )
    assert ret.tolist() == pytest.approx([0.125, 2.25, 0.5, 1.0])


def test_lambda_zero_gives_one_step_td_errors():
    # truncated, bootstrap 4: A_t = r_t + 0.5 V_{t+1} - V_t
    adv, _ = compute_gae([1.0, 1.0], [2.0, 3.0], terminated=False, bootstrap_value=4.0, gamma=0.5, gae_lambda=0.0)
    assert adv.tolist() == pytest.approx([1 + 1.5 - 2, 1 + 2 - 3])


def test_keeps_the_values_dtype():
    adv, ret = compute_gae(
        torch.tensor(REWARDS),
        torch.tensor(VALUES),
        terminated=True,
        bootstrap_value=None,
        gamma=GAMMA,
        gae_lambda=LAMBDA,
    )
    assert adv.dtype == torch.float32 and ret.dtype == torch.float32


@pytest.mark.parametrize(
    ("termination", "expected"),
    [
        (Termination.DONE, False),
        (Termination.STEP_LIMIT, True),
        (Termination.OPERATOR, True),
        (Termination.SHUTDOWN, True),
    ],
)
def test_which_terminations_bootstrap(termination, expected):
    assert bootstraps(termination) is expected


def test_aborted_and_unknown_terminations_are_refused():
    with pytest.raises(ValueError, match="ABORTED"):
        bootstraps(Termination.ABORTED)
    with pytest.raises(ValueError, match="no termination reason"):
        bootstraps(None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bootstrap_value": None}, "bootstrap_value=None"),
        ({"bootstrap_value": float("nan")}, "bootstrap_value=nan"),
        ({"bootstrap_value": 1.0, "gamma": 1.5}, "gamma=1.5"),
        ({"bootstrap_value": 1.0, "gae_lambda": -0.1}, "gae_lambda=-0.1"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    args = {"terminated": False, "gamma": GAMMA, "gae_lambda": LAMBDA, **kwargs}
    with pytest.raises(ValueError, match=message):
        compute_gae(REWARDS, VALUES, **args)


def test_bad_sequences_are_named():
    with pytest.raises(ValueError, match="one per step"):
        compute_gae([1.0], [1.0, 2.0], terminated=True, bootstrap_value=None, gamma=0.9, gae_lambda=0.9)
    with pytest.raises(ValueError, match="values: non-finite"):
        compute_gae([1.0], [float("nan")], terminated=True, bootstrap_value=None, gamma=0.9, gae_lambda=0.9)
    with pytest.raises(ValueError, match="empty episode"):
        compute_gae([], [], terminated=True, bootstrap_value=None, gamma=0.9, gae_lambda=0.9)


def test_episode_advantages_follow_the_episode_termination():
    # fixture rewards: t=0 -> -0.001, t=1 -> 0.0 (unparsable), t=2 -> 0.249
    done = make_episode("d", steps=3, termination=Termination.DONE)
    cut = make_episode("c", steps=3, termination=Termination.STEP_LIMIT)
    values = [0.0, 0.0, 0.0]
    adv_done, _ = episode_advantages(done, values, 5.0, gamma=1.0, gae_lambda=1.0)  # 5.0 ignored: terminal
    adv_cut, _ = episode_advantages(cut, values, 5.0, gamma=1.0, gae_lambda=1.0)
    assert adv_done.tolist() == pytest.approx([0.248, 0.249, 0.249])
    assert adv_cut.tolist() == pytest.approx([5.248, 5.249, 5.249])
    with pytest.raises(ValueError, match="ABORTED"):
        episode_advantages(make_episode("x", termination=Termination.ABORTED), values, 0.0, gamma=1, gae_lambda=1)
