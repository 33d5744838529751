"""PPO's loss pieces for a token-level categorical policy (the VLAC actor), each a few lines of pure torch.

``ppo_trainer.PPOTrainer.update`` puts them together in cleanrl's order; each is tested against
hand-computed values in test_ppo_losses.py.

The actor writes an action as text; the template's fixed characters are teacher-forced and only the
numeric tokens are sampled (the *decisions*). So an action's log-probability is the sum of its
decisions' log-probabilities (``token_mask`` True), and the PPO ratio is exp(new - old) per action
(``clipped_surrogate_loss``), or per decision with ``ratio: decision`` (``per_decision_surrogate_loss``).
Entropy and the demonstration NLL are means over decisions, so their scale does not grow with the
number of digits an action happens to have.

Shapes: B actions (batch), L decision slots (padded, ``token_mask`` marks the real ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def _check_mask(token_mask: torch.Tensor, shape: torch.Size, name: str) -> None:
    if token_mask.dtype != torch.bool:
        raise ValueError(f"token_mask: expected dtype torch.bool, got {token_mask.dtype}")
    if token_mask.shape != shape:
        raise ValueError(f"token_mask: shape {tuple(token_mask.shape)} does not match {name} {tuple(shape)}")
    empty = (~token_mask.any(dim=-1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"token_mask: action(s) {empty} have no sampled tokens (a log-probability needs at least one)")


def _check_clip(clip_coef: float) -> None:
    if not clip_coef > 0:
        raise ValueError(f"clip_coef={clip_coef}: expected a positive clipping range")


def action_logprobs(token_logprobs: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """log pi(action) = sum of the sampled tokens' log-probs: (B, L) -> (B,).

    Masked positions (teacher-forced template text, padding) contribute nothing, even if they
    hold -inf or NaN.
    """
    _check_mask(token_mask, token_logprobs.shape, "token_logprobs")
    return torch.where(token_mask, token_logprobs, torch.zeros_like(token_logprobs)).sum(dim=-1)


def masked_token_mean(per_token: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_token`` (B, L) over all sampled tokens of the batch (scalar): the entropy bonus."""
    _check_mask(token_mask, per_token.shape, "per_token")
    return torch.where(token_mask, per_token, torch.zeros_like(per_token)).sum() / token_mask.sum()


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(A - mean) / (std + eps), over the whole update batch (once, before the minibatches).

    cleanrl normalises per minibatch; with 16-step minibatches of a sparse or small reward that turns
    noise into unit-variance signal (issue 11), so the trainer normalises the batch once instead.
    """
    if advantages.numel() < 2:
        raise ValueError(f"advantages: normalisation needs at least 2 values, got {advantages.numel()}")
    return (advantages - advantages.mean()) / (advantages.std() + eps)


def clipped_surrogate_loss(
    newlogprob: torch.Tensor, behaviour_logprob: torch.Tensor, advantages: torch.Tensor, clip_coef: float
) -> tuple[torch.Tensor, float]:
    """PPO-clip policy loss, one ratio per action: mean of max(-A * r, -A * clip(r, 1 - eps, 1 + eps)) with
    r = pi(a|s) / mu(a|s); and the share of actions whose ratio left [1 - eps, 1 + eps] (clipfrac)."""
    if not newlogprob.shape == behaviour_logprob.shape == advantages.shape or newlogprob.ndim != 1:
        raise ValueError(
            "newlogprob, behaviour_logprob and advantages: one value per action expected, got shapes "
            f"{tuple(newlogprob.shape)}, {tuple(behaviour_logprob.shape)}, {tuple(advantages.shape)}"
        )
    _check_clip(clip_coef)
    ratio = (newlogprob - behaviour_logprob).exp()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    with torch.no_grad():
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean().item()
    return pg_loss, clipfrac


def decoupled_surrogate_loss(
    newlogprob: torch.Tensor,
    old_logprob: torch.Tensor,
    behaviour_logprob: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
    weight_max: float,
) -> tuple[torch.Tensor, float]:
    """Decoupled PPO-clip (Hilton et al. 2021, "Batch size-invariance for policy optimization"), one ratio per
    action: mean of w * max(-A * r, -A * clip(r, 1 - eps, 1 + eps)) with r = pi(a|s) / pi_old(a|s), the trust
    region centred on the policy before this update, and w = min(pi_old(a|s) / mu(a|s), weight_max) the
    truncated importance weight (V-trace's rho-bar) of a step sampled by an older version mu. Why: clipped
    around mu, an episode one version old starts with part of its actions already outside the range (their
    gradient zero) and the rest with less room (issue 11: 30 % of the 96 px actor's actions clipped per update,
    every batch one version old). For steps sampled by the current policy (mu = pi_old) and weight_max >= 1
    this is ``clipped_surrogate_loss``. Returns the loss and the share of actions with r out of range."""
    if not newlogprob.shape == old_logprob.shape == behaviour_logprob.shape == advantages.shape or newlogprob.ndim != 1:
        raise ValueError(
            "newlogprob, old_logprob, behaviour_logprob and advantages: one value per action expected, got shapes "
            f"{tuple(newlogprob.shape)}, {tuple(old_logprob.shape)}, {tuple(behaviour_logprob.shape)}, "
            f"{tuple(advantages.shape)}"
        )
    _check_clip(clip_coef)
    if not weight_max > 0:
        raise ValueError(f"weight_max={weight_max}: expected a positive truncation of the importance weight")
    ratio = (newlogprob - old_logprob).exp()
    weight = (old_logprob - behaviour_logprob).exp().clamp(max=weight_max).detach()
    per_action = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef))
    pg_loss = (weight * per_action).mean()
    with torch.no_grad():
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean().item()
    return pg_loss, clipfrac


def per_decision_surrogate_loss(
    new_token_logprobs: torch.Tensor,
    behaviour_token_logprobs: torch.Tensor,
    token_mask: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
) -> tuple[torch.Tensor, float]:
    """PPO-clip with one ratio per sampled decision (token), the action's advantage shared by its decisions,
    as PPO for language models does per token: mean over actions of the mean over the action's decisions of
    max(-A * r, -A * clip(r, 1 - eps, 1 + eps)); and the share of decisions clipped. Why: the per-action
    ratio is the product of ~20 decisions' ratios, so a step that moves each decision a little pushes most
    actions' ratio out of the clip range and zeroes their gradient (issue 11's scan: 39-64 % of actions
    clipped at KL 0.05-0.15 per update).
    """
    _check_mask(token_mask, new_token_logprobs.shape, "new_token_logprobs")
    if behaviour_token_logprobs.shape != new_token_logprobs.shape or advantages.shape != token_mask.shape[:1]:
        raise ValueError(
            "behaviour_token_logprobs must match new_token_logprobs and advantages have one value per action: got "
            f"{tuple(behaviour_token_logprobs.shape)}, {tuple(new_token_logprobs.shape)}, {tuple(advantages.shape)}"
        )
    _check_clip(clip_coef)
    zeros = torch.zeros_like(new_token_logprobs)
    ratio = torch.where(token_mask, new_token_logprobs - behaviour_token_logprobs, zeros).exp()
    adv = advantages.unsqueeze(-1)
    per_decision = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef))
    pg_loss = (torch.where(token_mask, per_decision, zeros).sum(dim=-1) / token_mask.sum(dim=-1)).mean()
    with torch.no_grad():
        clipfrac = ((ratio - 1.0).abs() > clip_coef)[token_mask].float().mean().item()
    return pg_loss, clipfrac


def value_loss(
    new_values: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor | None = None,
    clip_coef: float | None = None,
) -> torch.Tensor:
    """0.5 * mean squared error to the GAE returns; clipped around the old values when ``clip_coef`` is set."""
    if new_values.shape != returns.shape:
        raise ValueError(f"new_values {tuple(new_values.shape)} and returns {tuple(returns.shape)}: shapes differ")
    v_loss_unclipped = (new_values - returns) ** 2
    if clip_coef is None:
        return 0.5 * v_loss_unclipped.mean()
    if old_values is None or old_values.shape != new_values.shape:
        raise ValueError("old_values: the clipped value loss needs the rollout's values, one per action")
    v_clipped = old_values + torch.clamp(new_values - old_values, -clip_coef, clip_coef)
    v_loss_clipped = (v_clipped - returns) ** 2
    return 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()


def demo_nll_loss(demo_token_logprobs: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Offline demonstration replay: mean negative log-likelihood of the demos' action tokens.

    Only the numeric tokens are counted (the same mask as the policy's), so the loss says how
    well the policy would have *chosen* the human's numbers.
    """
    return -masked_token_mean(demo_token_logprobs, token_mask)


def k3_kl(logratio: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimate of KL(p || q) per sample x ~ p, elementwise: exp(l) - 1 - l with
    l = log q(x) - log p(x). Non-negative and low-variance; cleanrl's ``approx_kl`` is its mean."""
    return torch.exp(logratio) - 1 - logratio


def approx_kl(newlogprob: torch.Tensor, old_logprob: torch.Tensor) -> float:
    """How far the update has moved: mean over actions of k3(log pi - log pi_old), KL(pi_old || pi) per
    action; the target-KL stop reads it."""
    with torch.no_grad():
        return float(k3_kl(newlogprob.detach() - old_logprob).mean())


def prior_kl(
    new_token_logprobs: torch.Tensor, prior_token_logprobs: torch.Tensor, token_mask: torch.Tensor
) -> torch.Tensor:
    """KL(pi || prior) per action, the KL anchor: the k3 estimate of each sampled decision (l = log prior -
    log pi), summed over the action's decisions (the scale of the per-action ratio and ``approx_kl``) and
    averaged over the actions, as GRPO-style trainers anchor a policy to its reference. Differentiable:
    its gradient pulls pi to the prior."""
    _check_mask(token_mask, new_token_logprobs.shape, "new_token_logprobs")
    if prior_token_logprobs.shape != new_token_logprobs.shape:
        raise ValueError(
            f"prior_token_logprobs {tuple(prior_token_logprobs.shape)} must match new_token_logprobs "
            f"{tuple(new_token_logprobs.shape)}"
        )
    d = torch.where(token_mask, prior_token_logprobs - new_token_logprobs, 0.0)
    return (k3_kl(d) * token_mask).sum() / token_mask.shape[0]


def target_kl_exceeded(epoch_kls: Sequence[float], target_kl: float) -> bool:
    """The target-KL stop: no further epoch once this epoch's mean minibatch KL is above ``target_kl``
    (0: off). The epoch's mean, as cleanrl checks after each epoch, because one 16-step minibatch's
    estimate is too noisy (in issue 11's runs it stopped 14 of 16 updates within the first epoch while
    the updates' mean KL was 0.005, a quarter of the target)."""
    return target_kl > 0 and len(epoch_kls) > 0 and float(np.mean(epoch_kls)) > target_kl


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    """1 - Var(returns - values) / Var(returns), as cleanrl logs it; NaN when the returns do not vary."""
    var_returns = float(np.var(returns))
    return math.nan if var_returns == 0 else 1.0 - float(np.var(returns - values)) / var_returns


#: Where PPO takes its ratio: per action (the product of its decisions' ratios) or per sampled decision.
RATIO_LEVELS = ("action", "decision")
#: What the ratio is taken against and clipped around: the behaviour policy mu (the version that sampled the
#: step) or the policy before this update, mu corrected by a truncated weight (``decoupled_surrogate_loss``).
CLIP_CENTRES = ("behaviour", "pre_update")


@dataclass(frozen=True)
class PPOCoefficients:
    """Weights of the combined loss; defaults are cleanrl's except the demo term (paper: demo replay on)
    and the value clip: ``vf_clip`` is in return units and off by default (cleanrl borrows the policy's
    ratio clip 0.2 for it, which at returns of 0.1-1 freezes the value; issue 11)."""

    clip_coef: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    demo_coef: float = 0.1
    self_imitation_coef: float = 0.0
    vf_clip: float = 0.0
    ratio: str = "action"  # "action": one ratio per action; "decision": per sampled decision (see above)
    clip_around: str = "behaviour"  # CLIP_CENTRES; "pre_update" is decoupled PPO (per action only)
    behaviour_weight_max: float = 1.0  # truncation of pi_old / mu under clip_around "pre_update"

    def __post_init__(self) -> None:
        if not self.clip_coef > 0:
            raise ValueError(f"PPOCoefficients.clip_coef={self.clip_coef}: expected > 0")
        if self.ratio not in RATIO_LEVELS:
            raise ValueError(f"PPOCoefficients.ratio={self.ratio!r}: expected one of {RATIO_LEVELS}")
        if self.clip_around not in CLIP_CENTRES:
            raise ValueError(f"PPOCoefficients.clip_around={self.clip_around!r}: expected one of {CLIP_CENTRES}")
        if self.clip_around == "pre_update" and self.ratio != "action":
            raise ValueError("PPOCoefficients: clip_around 'pre_update' takes one ratio per action (ratio 'action')")
        if not self.behaviour_weight_max > 0:
            raise ValueError(f"PPOCoefficients.behaviour_weight_max={self.behaviour_weight_max}: expected > 0")
        for name in ("vf_coef", "ent_coef", "demo_coef", "self_imitation_coef", "vf_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"PPOCoefficients.{name}={getattr(self, name)}: expected >= 0")
