"""PPO losses for a token-level categorical policy (the VLAC actor), read like cleanrl's PPO.

The actor writes an action as text; the template's fixed characters are teacher-forced and only
the numeric tokens are sampled. So an action's log-probability is the sum of the log-probabilities
of its *sampled* tokens (``token_mask`` True), and the PPO ratio is exp(new - old) per action, not
per token (``ratio: decision`` takes one per sampled token instead: ``per_decision_surrogate_loss``).
Entropy and the demonstration NLL are means over sampled tokens, so their scale does not grow with
the number of digits an action happens to have.

Shapes: B actions (batch), L token positions (padded), V vocabulary. Token tensors are aligned by
the caller: ``logits[b, l]`` is the distribution that ``token_ids[b, l]`` was drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _check_mask(token_mask: torch.Tensor, shape: torch.Size, name: str) -> None:
    if token_mask.dtype != torch.bool:
        raise ValueError(f"token_mask: expected dtype torch.bool, got {token_mask.dtype}")
    if token_mask.shape != shape:
        raise ValueError(f"token_mask: shape {tuple(token_mask.shape)} does not match {name} {tuple(shape)}")
    empty = (~token_mask.any(dim=-1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"token_mask: action(s) {empty} have no sampled tokens (a log-probability needs at least one)")


def action_logprobs(token_logprobs: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """log pi(action) = sum of the sampled tokens' log-probs: (B, L) -> (B,).

    Masked positions (teacher-forced template text, padding) contribute nothing, even if they
    hold -inf or NaN.
    """
    _check_mask(token_mask, token_logprobs.shape, "token_logprobs")
    return torch.where(token_mask, token_logprobs, torch.zeros_like(token_logprobs)).sum(dim=-1)


def masked_token_mean(per_token: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_token`` (B, L) over all sampled tokens of the batch (scalar)."""
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


@dataclass(frozen=True)
class SurrogateStats:
    """Diagnostics of one surrogate-loss evaluation (no gradient)."""

    approx_kl: float  # ((ratio - 1) - log ratio).mean(): the low-variance KL estimator
    clipfrac: float  # share of actions whose ratio left [1 - clip, 1 + clip]


def clipped_surrogate_loss(
    new_logprob: torch.Tensor, old_logprob: torch.Tensor, advantages: torch.Tensor, clip_coef: float
) -> tuple[torch.Tensor, SurrogateStats]:
    """PPO-clip policy loss: mean over actions of max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))."""
    if not new_logprob.shape == old_logprob.shape == advantages.shape or new_logprob.ndim != 1:
        raise ValueError(
            "new_logprob, old_logprob and advantages: one value per action expected, got shapes "
            f"{tuple(new_logprob.shape)}, {tuple(old_logprob.shape)}, {tuple(advantages.shape)}"
        )
    if not clip_coef > 0:
        raise ValueError(f"clip_coef={clip_coef}: expected a positive clipping range")
    logratio = new_logprob - old_logprob
    ratio = logratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).mean().item()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean().item()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    return pg_loss, SurrogateStats(approx_kl=approx_kl, clipfrac=clipfrac)


def per_decision_surrogate_loss(
    new_token_logprobs: torch.Tensor,
    behaviour_token_logprobs: torch.Tensor,
    token_mask: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
) -> tuple[torch.Tensor, SurrogateStats]:
    """PPO-clip with one ratio per sampled decision (token), the action's advantage shared by its decisions,
    as PPO for language models does per token: mean over actions of the mean over the action's decisions of
    max(-A * r, -A * clip(r, 1 - eps, 1 + eps)). Why: the per-action ratio is the product of ~20 decisions'
    ratios, so a step that moves each decision a little pushes most actions' ratio out of the clip range and
    zeroes their gradient (issue 11's scan: 39-64 % of actions clipped at KL 0.05-0.15 per update).
    ``approx_kl`` stays per action (summed over its decisions); ``clipfrac`` is the share of decisions clipped.
    """
    _check_mask(token_mask, new_token_logprobs.shape, "new_token_logprobs")
    if behaviour_token_logprobs.shape != new_token_logprobs.shape or advantages.shape != token_mask.shape[:1]:
        raise ValueError(
            "behaviour_token_logprobs must match new_token_logprobs and advantages have one value per action: got "
            f"{tuple(behaviour_token_logprobs.shape)}, {tuple(new_token_logprobs.shape)}, {tuple(advantages.shape)}"
        )
    if not clip_coef > 0:
        raise ValueError(f"clip_coef={clip_coef}: expected a positive clipping range")
    zeros = torch.zeros_like(new_token_logprobs)
    logratio = torch.where(token_mask, new_token_logprobs - behaviour_token_logprobs, zeros)
    ratio = logratio.exp()
    adv = advantages.unsqueeze(-1)
    per_decision = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef))
    decisions = token_mask.sum(dim=-1)
    pg_loss = (torch.where(token_mask, per_decision, zeros).sum(dim=-1) / decisions).mean()
    with torch.no_grad():
        approx_kl = torch.where(token_mask, (ratio - 1) - logratio, zeros).sum(dim=-1).mean().item()
        clipfrac = ((ratio - 1.0).abs() > clip_coef)[token_mask].float().mean().item()
    return pg_loss, SurrogateStats(approx_kl=approx_kl, clipfrac=clipfrac)


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


#: Where PPO takes its ratio: per action (the product of its decisions' ratios) or per sampled decision.
RATIO_LEVELS = ("action", "decision")


@dataclass(frozen=True)
class PPOCoefficients:
    """Weights of the combined loss; defaults are cleanrl's except the demo term (paper: demo replay on)
    and the value clip: ``vf_clip`` is in return units and off by default (cleanrl borrows the policy's
    ratio clip 0.2 for it, which at returns of 0.1-1 freezes the value; issue 11)."""

    clip_coef: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    demo_coef: float = 0.1
    vf_clip: float = 0.0
    ratio: str = "action"  # "action": one ratio per action; "decision": per sampled decision (see above)

    def __post_init__(self) -> None:
        if not self.clip_coef > 0:
            raise ValueError(f"PPOCoefficients.clip_coef={self.clip_coef}: expected > 0")
        if self.ratio not in RATIO_LEVELS:
            raise ValueError(f"PPOCoefficients.ratio={self.ratio!r}: expected one of {RATIO_LEVELS}")
        for name in ("vf_coef", "ent_coef", "demo_coef", "vf_clip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"PPOCoefficients.{name}={getattr(self, name)}: expected >= 0")


@dataclass(frozen=True)
class PPOLoss:
    """The combined loss and the policy and value terms (differentiable: the trainer measures each term's
    gradient on the shared trunk), and the parts as detached floats for logging."""

    loss: torch.Tensor
    pg_term: torch.Tensor
    v_term: torch.Tensor
    pg_loss: float
    v_loss: float
    entropy: float
    demo_nll: float | None
    approx_kl: float
    clipfrac: float


def ppo_loss(
    *,
    new_token_logprobs: torch.Tensor,
    token_mask: torch.Tensor,
    old_logprob: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    token_entropies: torch.Tensor,
    coefs: PPOCoefficients,
    demo_token_logprobs: torch.Tensor | None = None,
    demo_token_mask: torch.Tensor | None = None,
    behaviour_token_logprobs: torch.Tensor | None = None,
) -> PPOLoss:
    """loss = pg_loss - ent_coef * entropy + vf_coef * v_loss (+ demo_coef * demo_nll when demos are given).

    ``old_logprob`` is per action: log mu(a|s) of the policy that sampled it (the behaviour policy), so
    the ratio pi/mu corrects for data one version old. ``advantages`` are used as given (the trainer
    normalises the whole batch once). ``token_entropies`` are the current policy's per-position
    entropies (B, L). With ``coefs.ratio == "decision"`` the ratio is taken per sampled decision against
    ``behaviour_token_logprobs`` (B, L, aligned with ``token_mask``) instead.
    """
    if coefs.ratio == "decision":
        if behaviour_token_logprobs is None:
            raise ValueError("behaviour_token_logprobs: required with the per-decision ratio")
        pg_loss, stats = per_decision_surrogate_loss(
            new_token_logprobs, behaviour_token_logprobs, token_mask, advantages, coefs.clip_coef
        )
    else:
        newlogprob = action_logprobs(new_token_logprobs, token_mask)
        pg_loss, stats = clipped_surrogate_loss(newlogprob, old_logprob, advantages, coefs.clip_coef)
    v_loss = value_loss(new_values, returns, old_values, coefs.vf_clip or None)
    entropy_loss = masked_token_mean(token_entropies, token_mask)
    loss = pg_loss - coefs.ent_coef * entropy_loss + v_loss * coefs.vf_coef
    demo_nll = None
    if demo_token_logprobs is not None:
        if demo_token_mask is None:
            raise ValueError("demo_token_mask: required with demo_token_logprobs")
        demo_loss = demo_nll_loss(demo_token_logprobs, demo_token_mask)
        loss = loss + coefs.demo_coef * demo_loss
        demo_nll = demo_loss.item()
    return PPOLoss(
        loss=loss,
        pg_term=pg_loss,
        v_term=v_loss,
        pg_loss=pg_loss.item(),
        v_loss=v_loss.item(),
        entropy=entropy_loss.item(),
        demo_nll=demo_nll,
        approx_kl=stats.approx_kl,
        clipfrac=stats.clipfrac,
    )
