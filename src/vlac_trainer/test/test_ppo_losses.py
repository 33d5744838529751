"""PPO pieces against hand-computed values: token log-probs, clipping on both sides, entropy, NLL."""

from __future__ import annotations

import math

import pytest
import torch

from vlac_trainer.ppo import (
    PPOCoefficients,
    action_logprobs,
    clipped_surrogate_loss,
    demo_nll_loss,
    masked_token_mean,
    normalize_advantages,
    per_decision_surrogate_loss,
    ppo_loss,
    value_loss,
)

NAN = float("nan")


def test_action_logprob_sums_only_sampled_tokens():
    # template tokens (masked) hold garbage, even NaN / -inf: they must not leak in
    token_lp = torch.tensor([[-0.1, NAN, -0.2, -math.inf], [-1.0, -2.0, 0.0, 0.0]])
    mask = torch.tensor([[True, False, True, False], [True, True, False, False]])
    assert action_logprobs(token_lp, mask).tolist() == pytest.approx([-0.3, -3.0])


def test_ratio_is_per_action_from_summed_token_logprobs():
    old_tokens = torch.tensor([[-1.0, -1.0]])
    new_tokens = torch.tensor([[-0.5, -1.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    new_lp, old_lp = action_logprobs(new_tokens, mask), action_logprobs(old_tokens, mask)
    # ratio = exp(-1.5 - -2.0) = exp(0.5) = 1.6487 > 1.2 for a positive advantage: clipped to 1.2
    loss, _ = clipped_surrogate_loss(new_lp, old_lp, torch.tensor([1.0]), clip_coef=0.2)
    assert loss.item() == pytest.approx(-1.2)


def test_mask_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"torch\.bool"):
        action_logprobs(torch.zeros(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="does not match"):
        action_logprobs(torch.zeros(1, 2), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"action\(s\) \[1\] have no sampled tokens"):
        action_logprobs(torch.zeros(2, 2), torch.tensor([[True, False], [False, False]]))


def _surrogate_case(advantage: float, ratio: float) -> tuple[float, float]:
    new_lp = torch.tensor([math.log(ratio)], requires_grad=True)
    loss, _ = clipped_surrogate_loss(new_lp, torch.tensor([0.0]), torch.tensor([advantage]), clip_coef=0.2)
    loss.backward()
    return loss.item(), new_lp.grad.item()


@pytest.mark.parametrize(
    ("advantage", "ratio", "expected_loss", "expected_grad"),
    [
        # A > 0, ratio above 1 + eps: max(-3.0, -2.4) = -2.4, clipped -> no gradient
        (2.0, 1.5, -2.4, 0.0),
        # A > 0, ratio below 1 - eps: max(-1.0, -1.6) = -1.0, unclipped -> d/dlogp (-A r) = -A r = -1.0
        (2.0, 0.5, -1.0, -1.0),
        # A < 0, ratio above 1 + eps: max(3.0, 2.4) = 3.0, unclipped (pessimistic) -> -A r = 3.0
        (-2.0, 1.5, 3.0, 3.0),
        # A < 0, ratio below 1 - eps: max(1.0, 1.6) = 1.6, clipped -> no gradient
        (-2.0, 0.5, 1.6, 0.0),
        # inside the trust region: plain -A r = -2.2, gradient -2.2
        (2.0, 1.1, -2.2, -2.2),
    ],
)
def test_clipping_on_both_sides_for_both_signs(advantage, ratio, expected_loss, expected_grad):
    loss, grad = _surrogate_case(advantage, ratio)
    assert loss == pytest.approx(expected_loss)
    assert grad == pytest.approx(expected_grad)


def test_surrogate_stats():
    new_lp = torch.log(torch.tensor([1.5, 1.0, 0.5, 1.1]))
    _, stats = clipped_surrogate_loss(new_lp, torch.zeros(4), torch.ones(4), clip_coef=0.2)
    assert stats.clipfrac == pytest.approx(0.5)  # 1.5 and 0.5 leave [0.8, 1.2]
    kl = [(r - 1) - math.log(r) for r in (1.5, 1.0, 0.5, 1.1)]
    assert stats.approx_kl == pytest.approx(sum(kl) / 4, rel=1e-6)


def test_entropy_bonus_is_mean_over_sampled_tokens():
    entropies = torch.tensor([[1.0, 100.0, 3.0], [2.0, 100.0, 100.0]])
    mask = torch.tensor([[True, False, True], [True, False, False]])
    assert masked_token_mean(entropies, mask).item() == pytest.approx(2.0)


def test_demo_nll_is_mean_over_demo_action_tokens():
    lp = torch.tensor([[-1.0, -2.0, -50.0], [-3.0, -50.0, -50.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert demo_nll_loss(lp, mask).item() == pytest.approx(2.0)


def test_value_loss_plain_and_clipped():
    new, ret, old = torch.tensor([2.0]), torch.tensor([3.0]), torch.tensor([1.0])
    assert value_loss(new, ret).item() == pytest.approx(0.5)
    # clipped prediction 1.2: max((2-3)^2, (1.2-3)^2) = 3.24 -> 1.62
    assert value_loss(new, ret, old, clip_coef=0.2).item() == pytest.approx(1.62)
    # moving toward the target inside the range: both equal
    assert value_loss(torch.tensor([1.1]), ret, old, clip_coef=0.2).item() == pytest.approx(0.5 * 1.9**2)
    with pytest.raises(ValueError, match="old_values"):
        value_loss(new, ret, None, clip_coef=0.2)


def test_normalize_advantages():
    out = normalize_advantages(torch.tensor([1.0, 3.0]))
    # mean 2, unbiased std sqrt(2)
    assert out.tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2)], rel=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        normalize_advantages(torch.tensor([1.0]))


def test_combined_loss_adds_terms_with_coefficients():
    mask = torch.tensor([[True, True], [True, False]])
    new_tokens = torch.tensor([[-0.5, -0.5], [-1.0, 0.0]])  # action log-probs -1.0, -1.0
    old_lp = torch.tensor([-1.0, -1.0])  # ratio 1 for both
    adv = torch.tensor([1.0, -3.0])
    coefs = PPOCoefficients(clip_coef=0.2, vf_coef=0.5, ent_coef=0.01, demo_coef=0.1)
    out = ppo_loss(
        new_token_logprobs=new_tokens,
        token_mask=mask,
        old_logprob=old_lp,
        advantages=adv,
        returns=torch.tensor([1.0, 0.0]),
        new_values=torch.tensor([0.0, 2.0]),
        old_values=torch.tensor([0.0, 2.0]),
        token_entropies=torch.tensor([[1.0, 2.0], [3.0, 9.0]]),
        coefs=coefs,
        demo_token_logprobs=torch.tensor([[-2.0, -4.0]]),
        demo_token_mask=torch.tensor([[True, True]]),
    )
    pg = -(1.0 - 3.0) / 2  # 1.0
    v = 0.5 * (1.0 + 4.0) / 2  # 1.25
    ent = (1.0 + 2.0 + 3.0) / 3  # 2.0
    nll = 3.0
    assert (out.pg_loss, out.v_loss, out.entropy, out.demo_nll) == pytest.approx((pg, v, ent, nll))
    assert out.loss.item() == pytest.approx(pg - 0.01 * ent + 0.5 * v + 0.1 * nll)
    assert out.clipfrac == 0.0
    # the advantages are used as given (the trainer normalises the whole batch once), and the policy and
    # value terms come back differentiable for the per-term gradient norms
    assert out.pg_term.item() == pytest.approx(pg) and out.v_term.item() == pytest.approx(v)


def test_value_clip_is_in_return_units_and_off_by_default():
    args = dict(
        new_token_logprobs=torch.tensor([[-1.0], [-1.0]]),
        token_mask=torch.tensor([[True], [True]]),
        old_logprob=torch.tensor([-1.0, -1.0]),
        advantages=torch.tensor([0.0, 0.0]),
        returns=torch.tensor([1.0, 1.0]),
        new_values=torch.tensor([0.5, 0.5]),
        old_values=torch.tensor([0.0, 0.0]),
        token_entropies=torch.tensor([[0.0], [0.0]]),
    )
    # off: 0.5 * (0.5 - 1)^2 = 0.125, whatever the policy's ratio clip
    assert ppo_loss(**args, coefs=PPOCoefficients(clip_coef=0.2)).v_loss == pytest.approx(0.125)
    # vf_clip 0.1: the prediction may move 0.1 from the old value -> max(0.25, 0.81) / 2 = 0.405
    assert ppo_loss(**args, coefs=PPOCoefficients(vf_clip=0.1)).v_loss == pytest.approx(0.405)


def test_coefficients_are_validated():
    with pytest.raises(ValueError, match="clip_coef=0"):
        PPOCoefficients(clip_coef=0)
    with pytest.raises(ValueError, match="demo_coef=-1"):
        PPOCoefficients(demo_coef=-1)


def test_per_decision_surrogate_by_hand():
    # action 0 (A = +1): decision ratios 1.5 and 0.9 -> max(-1.5, -1.2) = -1.2 and max(-0.9, -0.9) = -0.9, mean -1.05
    # action 1 (A = -1): one decision, ratio 0.5 -> max(0.5, 0.8) = 0.8
    # pg_loss = (-1.05 + 0.8) / 2 = -0.125; clipped decisions: 1.5 and 0.5 of three -> 2/3
    # approx_kl per action, summed over its decisions: (0.5 - ln 1.5) + (-0.1 - ln 0.9) = 0.0998963 and
    # (-0.5 - ln 0.5) = 0.1931472; mean 0.1465217
    behaviour = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]])
    new = behaviour + torch.log(torch.tensor([[1.5, 0.9, 1.0], [0.5, 1.0, 1.0]]))
    new[0, 2] = -math.inf  # a masked position (template text or padding) carries nothing
    new.requires_grad_(True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss, stats = per_decision_surrogate_loss(new, behaviour, mask, torch.tensor([1.0, -1.0]), 0.2)
    assert loss.item() == pytest.approx(-0.125, abs=1e-6)
    assert stats.clipfrac == pytest.approx(2 / 3, abs=1e-6)
    assert stats.approx_kl == pytest.approx(0.1465217, abs=1e-6)
    loss.backward()
    # only the unclipped decision of action 0 carries a gradient: its term is -r / 2 decisions / 2 actions,
    # and dr / d log pi = r, so -0.9 / 4 = -0.225
    assert new.grad[0, 1].item() == pytest.approx(-0.225, abs=1e-6)
    assert new.grad[0, 0].item() == 0.0 and new.grad[1, 0].item() == 0.0 and new.grad[0, 2].item() == 0.0


def test_per_decision_ratio_needs_the_behaviour_decisions_and_a_known_level():
    with pytest.raises(ValueError, match="behaviour_token_logprobs: required"):
        ppo_loss(
            new_token_logprobs=torch.zeros(1, 2),
            token_mask=torch.tensor([[True, True]]),
            old_logprob=torch.zeros(1),
            advantages=torch.ones(1),
            returns=torch.zeros(1),
            new_values=torch.zeros(1),
            old_values=torch.zeros(1),
            token_entropies=torch.zeros(1, 2),
            coefs=PPOCoefficients(ratio="decision"),
        )
    with pytest.raises(ValueError, match="ratio='token'"):
        PPOCoefficients(ratio="token")
