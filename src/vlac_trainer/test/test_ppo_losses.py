"""Every PPO piece the trainer uses (vlac_trainer.online.ppo), against values worked out by hand in each test.

The entropy itself comes from vlac_actor.constrained (tested there); here its mean over sampled decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vlac_trainer.online.ppo import (
    PPOCoefficients,
    action_logprobs,
    approx_kl,
    clipped_surrogate_loss,
    decoupled_surrogate_loss,
    demo_nll_loss,
    explained_variance,
    k3_kl,
    masked_token_mean,
    normalize_advantages,
    per_decision_surrogate_loss,
    prior_kl,
    target_kl_exceeded,
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


def test_clipfrac_is_the_share_of_actions_whose_ratio_left_the_range():
    new_lp = torch.log(torch.tensor([1.5, 1.0, 0.5, 1.1]))
    _, clipfrac = clipped_surrogate_loss(new_lp, torch.zeros(4), torch.ones(4), clip_coef=0.2)
    assert clipfrac == pytest.approx(0.5)  # 1.5 and 0.5 leave [0.8, 1.2]; 1.0 and 1.1 stay


def test_decoupled_surrogate_clips_around_the_pre_update_policy_and_weights_by_truncated_pi_old_over_mu():
    # Two actions, A = +1 each; log mu = 0; log pi_old = ln 1.5 and ln 0.5; the new policy equals pi_old.
    old = torch.log(torch.tensor([1.5, 0.5]))
    new = old.clone().requires_grad_(True)
    loss, clipfrac = decoupled_surrogate_loss(new, old, torch.zeros(2), torch.ones(2), 0.2, weight_max=1.0)
    # r = 1 for both (inside the range: gradient flows); w = min(1.5, 1) = 1 and 0.5: loss = -(1 + 0.5) / 2
    assert loss.item() == pytest.approx(-0.75) and clipfrac == 0.0
    loss.backward()
    assert new.grad.tolist() == pytest.approx([-0.5, -0.25])  # d/dlogpi of -w r / 2
    # Clipped around mu instead, the first action (ratio 1.5) is out of range: no gradient for it.
    mu_loss, mu_clipfrac = clipped_surrogate_loss(old.clone().requires_grad_(True), torch.zeros(2), torch.ones(2), 0.2)
    assert mu_clipfrac == 1.0 and mu_loss.item() == pytest.approx(-(1.2 + 0.5) / 2)
    # A larger truncation lets the weight through.
    loss, _ = decoupled_surrogate_loss(old, old, torch.zeros(2), torch.ones(2), 0.2, weight_max=2.0)
    assert loss.item() == pytest.approx(-(1.5 + 0.5) / 2)


def test_decoupled_surrogate_is_the_plain_one_for_current_data():
    new = torch.log(torch.tensor([1.5, 1.0, 0.5, 1.1]))
    advantages = torch.tensor([2.0, -1.0, 2.0, -2.0])
    plain = clipped_surrogate_loss(new, torch.zeros(4), advantages, 0.2)
    decoupled = decoupled_surrogate_loss(new, torch.zeros(4), torch.zeros(4), advantages, 0.2, weight_max=1.0)
    assert decoupled[0].item() == pytest.approx(plain[0].item()) and decoupled[1] == plain[1] == 0.5


def test_decoupled_surrogate_refuses_bad_shapes_and_weights():
    with pytest.raises(ValueError, match="one value per action"):
        decoupled_surrogate_loss(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.ones(2), 0.2, 1.0)
    with pytest.raises(ValueError, match="weight_max=0"):
        decoupled_surrogate_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.ones(2), 0.2, 0)
    with pytest.raises(ValueError, match="ratio 'action'"):
        PPOCoefficients(ratio="decision", clip_around="pre_update")
    with pytest.raises(ValueError, match="clip_around='middle'"):
        PPOCoefficients(clip_around="middle")


def test_k3_kl_by_hand():
    # exp(l) - 1 - l: l = ln 2 -> 2 - 1 - 0.6931472 = 0.3068528; l = 0 -> 0;
    # l = -ln 2 -> 0.5 - 1 + 0.6931472 = 0.1931472
    out = k3_kl(torch.tensor([math.log(2.0), 0.0, -math.log(2.0)]))
    assert out.tolist() == pytest.approx([0.3068528, 0.0, 0.1931472], abs=1e-6)


def test_approx_kl_is_the_mean_k3_of_the_per_action_ratio_to_the_pre_update_policy():
    # ratios 1.5, 1.0, 0.5, 1.1: (r - 1) - ln r = 0.0945349, 0, 0.1931472, 0.0046898; mean 0.0730930
    new_lp = torch.log(torch.tensor([1.5, 1.0, 0.5, 1.1])) - 2.0
    new_lp.requires_grad_(True)  # a minibatch's live log-probs: read without joining the graph
    assert approx_kl(new_lp, torch.full((4,), -2.0)) == pytest.approx(0.0730930, abs=1e-6)


def test_prior_kl_sums_each_actions_decisions_and_averages_the_actions():
    # action 0, two decisions: pi 0.5 and 0.25, prior 0.25 and 0.5 -> l = log prior - log pi = -ln 2 and +ln 2
    #   k3 = 0.1931472 + 0.3068528 = 0.5; action 1, one decision where pi = prior: 0. Mean over 2 actions: 0.25
    new = torch.log(torch.tensor([[0.5, 0.25, 1.0], [0.5, 1.0, 1.0]]))
    new[1, 2] = -math.inf  # a masked slot (padding) carries nothing, whatever it holds
    new.requires_grad_(True)
    prior = torch.log(torch.tensor([[0.25, 0.5, 1.0], [0.5, 1.0, 1.0]]))
    mask = torch.tensor([[True, True, False], [True, False, False]])
    kl = prior_kl(new, prior, mask)
    assert kl.item() == pytest.approx(0.25, abs=1e-6)
    kl.backward()
    # d k3(prior - pi) / d log pi = 1 - exp(l), over 2 actions: (1 - 0.5) / 2 = 0.25 pushes the decision the
    # prior likes less down, (1 - 2) / 2 = -0.5 pushes the one it likes more up; action 1 and padding: 0
    assert new.grad.flatten().tolist() == pytest.approx([0.25, -0.5, 0.0, 0.0, 0.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="prior_token_logprobs"):
        prior_kl(new, prior[:, :2], mask)


@pytest.mark.parametrize(
    ("epoch_kls", "target_kl", "stop"),
    [
        ([0.01, 0.03], 0.015, True),  # mean 0.02 > 0.015, though the first minibatch alone was under it
        ([0.01, 0.03], 0.02, False),  # mean 0.02 is not above 0.02
        ([0.5], 0.0, False),  # 0 turns the stop off
        ([], 0.01, False),  # an epoch without PPO minibatches (warm-up, demo replay alone) has no KL
    ],
)
def test_target_kl_stop_reads_the_epochs_mean(epoch_kls, target_kl, stop):
    assert target_kl_exceeded(epoch_kls, target_kl) is stop


def test_explained_variance_by_hand():
    # Var(R = [1, 3]) = 1, Var(R - V = [0, 1]) = 0.25: 1 - 0.25 / 1 = 0.75
    assert explained_variance(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(0.75)
    assert explained_variance(np.array([0.0, 0.0]), np.array([1.0, 3.0])) == pytest.approx(0.0)
    assert math.isnan(explained_variance(np.array([0.0, 1.0]), np.array([2.0, 2.0])))  # the returns do not vary


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


def test_value_clip_is_in_return_units_and_off_by_default():
    new, ret, old = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])
    assert PPOCoefficients().vf_clip == 0.0  # the trainer passes `vf_clip or None`: no clip
    # off: 0.5 * (0.5 - 1)^2 = 0.125, whatever the policy's ratio clip
    assert value_loss(new, ret).item() == pytest.approx(0.125)
    # vf_clip 0.1: the prediction may move 0.1 from the old value -> 0.5 * max(0.25, (0.1 - 1)^2 = 0.81) = 0.405
    assert value_loss(new, ret, old, clip_coef=0.1).item() == pytest.approx(0.405)


def test_coefficients_are_validated():
    with pytest.raises(ValueError, match="clip_coef=0"):
        PPOCoefficients(clip_coef=0)
    with pytest.raises(ValueError, match="demo_coef=-1"):
        PPOCoefficients(demo_coef=-1)


def test_per_decision_surrogate_by_hand():
    # action 0 (A = +1): decision ratios 1.5 and 0.9 -> max(-1.5, -1.2) = -1.2 and max(-0.9, -0.9) = -0.9, mean -1.05
    # action 1 (A = -1): one decision, ratio 0.5 -> max(0.5, 0.8) = 0.8
    # pg_loss = (-1.05 + 0.8) / 2 = -0.125; clipped decisions: 1.5 and 0.5 of three -> 2/3
    behaviour = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]])
    new = behaviour + torch.log(torch.tensor([[1.5, 0.9, 1.0], [0.5, 1.0, 1.0]]))
    new[0, 2] = -math.inf  # a masked position (template text or padding) carries nothing
    new.requires_grad_(True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss, clipfrac = per_decision_surrogate_loss(new, behaviour, mask, torch.tensor([1.0, -1.0]), 0.2)
    assert loss.item() == pytest.approx(-0.125, abs=1e-6)
    assert clipfrac == pytest.approx(2 / 3, abs=1e-6)
    loss.backward()
    # only the unclipped decision of action 0 carries a gradient: its term is -r / 2 decisions / 2 actions,
    # and dr / d log pi = r, so -0.9 / 4 = -0.225
    assert new.grad[0, 1].item() == pytest.approx(-0.225, abs=1e-6)
    assert new.grad[0, 0].item() == 0.0 and new.grad[1, 0].item() == 0.0 and new.grad[0, 2].item() == 0.0


def test_per_decision_surrogate_refuses_misaligned_decisions_and_ratio_levels_are_validated():
    mask = torch.tensor([[True, True]])
    with pytest.raises(ValueError, match="behaviour_token_logprobs must match"):
        per_decision_surrogate_loss(torch.zeros(1, 2), torch.zeros(1, 3), mask, torch.ones(1), 0.2)
    with pytest.raises(ValueError, match="ratio='token'"):
        PPOCoefficients(ratio="token")
