"""One PPO update of the VLAC actor, read like cleanrl's loop: recompute, GAE, minibatch epochs.

Before every update the batch is re-scored with torch under the *pre-update* policy
(``vlac_actor.scoring.score_actions``): those log-probs are the ``old_logprob`` of the ratio and
those values feed GAE. The log-probs the actor recorded while acting are never used, so a serving
backend whose numbers differ from torch's (vLLM: ratios 0.4-1.8 in the paper) cannot enter the
ratio; at the first epoch's first minibatch the ratio is exactly 1 up to float error.

Per update:
- GAE per episode (``gae.episode_advantages``): DONE episodes end in an absorbing state, truncated
  ones bootstrap from V(final observation). The value head reads the hidden state after an action,
  so V(final observation) is read after the no-op action (zero move, gripper as it is): the state's
  value when nothing more is done, the natural probe for a state nobody acted in.
- Value-head warm-up: the first ``value_warmup_updates`` updates train the value head alone (the
  trunk is frozen), on the rollouts and on the demo episodes that carry critic rewards, so the
  first policy-gradient steps do not follow advantages of a random value head.
- Afterwards: clipped surrogate + clipped value loss - entropy bonus (``ppo.ppo_loss``), plus the
  demonstration NLL on human steps drawn from the demo buffer (offline demonstration replay).
Every update makes a new policy version (``policy.version += 1``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlac_actor.inputs import InputLimits, actor_content
from vlac_actor.policy import Policy
from vlac_actor.scoring import score_actions
from vlac_core.types import DeltaAction, Episode, Observation, Termination
from vlac_trainer.gae import bootstraps, episode_advantages
from vlac_trainer.ppo import demo_nll_loss, value_loss
from vlac_trainer.ppo import ppo_loss as combined_ppo_loss
from vlac_trainer.trainer_config import TrainerConfig


@dataclass(frozen=True)
class StepSample:
    """One step ready for the loss: the prompt, the action, and what the pre-update policy said of it."""

    content: str
    images: tuple[np.ndarray, ...]
    action: DeltaAction
    old_logprob: float  # torch recompute under the pre-update policy, nats
    old_value: float
    advantage: float
    ret: float  # GAE return: the value target


@dataclass(frozen=True)
class UpdateStats:
    """What one update did (floats averaged over its minibatches), for logs, topics and summary.json."""

    policy_version: int
    warmup: bool
    steps: int
    demo_steps: int
    minibatches: int
    loss: float
    pg_loss: float
    v_loss: float
    entropy: float
    demo_nll: float | None
    approx_kl: float
    clipfrac: float
    max_abs_logratio_first: float  # |new - old| log-prob at the first minibatch: ~0 (torch recompute)


def noop_action(observation: Observation) -> DeltaAction:
    """The probe action after which V(observation) is read for a state nobody acted in."""
    return DeltaAction(0, 0, 0, 0, 0, 0, int(observation.gripper_open))


class PPOTrainer:
    """Holds the trainer's copy of the policy and its optimizer; ``update`` runs one PPO update."""

    def __init__(self, policy: Policy, config: TrainerConfig, input_limits: InputLimits | None = None) -> None:
        self.policy = policy
        self.config = config
        self.input_limits = input_limits or InputLimits()
        self.coefs = config.coefficients
        self.optimizer = torch.optim.Adam(self.parameters(), lr=config.learning_rate, eps=1e-5)
        self.updates = 0
        self.rng = np.random.default_rng(config.seed)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Model and value-head parameters, in a fixed order (the optimizer state refers to it)."""
        return [*self.policy.loaded.model.parameters(), *self.policy.value_head.parameters()]

    @property
    def in_warmup(self) -> bool:
        return self.updates < self.config.value_warmup_updates

    # -- recompute -------------------------------------------------------------------------------

    def _prompt(self, observation: Observation) -> tuple[str, tuple[np.ndarray, ...]]:
        content, images = actor_content(observation, self.input_limits)
        return content, tuple(images)

    def _score(self, prompts, actions, with_grad: bool):
        return score_actions(
            self.policy, [c for c, _ in prompts], [list(i) for _, i in prompts], list(actions), with_grad=with_grad
        )

    def _score_no_grad(self, prompts, actions) -> tuple[list[float], list[float]]:
        """(log-probs, values) of many steps, in chunks of ``score_batch_size``."""
        logprobs, values = [], []
        step = self.config.score_batch_size
        for lo in range(0, len(prompts), step):
            scores = self._score(prompts[lo : lo + step], actions[lo : lo + step], with_grad=False)
            logprobs += scores.logprob.float().cpu().tolist()
            values += scores.values.float().cpu().tolist()
        return logprobs, values

    def episode_samples(self, episode: Episode) -> list[StepSample]:
        """Re-score ``episode``'s steps under the current policy and compute their GAE targets."""
        prompts = [self._prompt(t.observation) for t in episode.transitions]
        actions = [t.action.delta for t in episode.transitions]
        bootstrap_value = None
        if bootstraps(episode.termination):
            prompts.append(self._prompt(episode.final_observation))
            actions.append(noop_action(episode.final_observation))
        logprobs, values = self._score_no_grad(prompts, actions)
        if bootstrap_value is None and len(values) > episode.length:
            bootstrap_value = values.pop()
            logprobs.pop()
            prompts.pop()
            actions.pop()
        advantages, returns = episode_advantages(
            episode, values, bootstrap_value, gamma=self.config.gamma, gae_lambda=self.config.gae_lambda
        )
        return [
            StepSample(c, i, a, lp, v, float(adv), float(ret))
            for (c, i), a, lp, v, adv, ret in zip(
                prompts, actions, logprobs, values, advantages.tolist(), returns.tolist(), strict=True
            )
        ]

    # -- update ----------------------------------------------------------------------------------

    def update(self, rollouts: Sequence[Episode], demos: Sequence[Episode] = ()) -> UpdateStats:
        """One PPO update on ``rollouts`` (+ demo replay from ``demos``); the policy version goes up by one."""
        if not rollouts and not demos:
            raise ValueError("update: no rollout and no demo episode to train on")
        warmup = self.in_warmup
        samples = [s for ep in rollouts for s in self.episode_samples(ep)]
        if warmup:  # demos with critic rewards teach the value head too
            samples += [s for ep in demos if _has_critic_rewards(ep) for s in self.episode_samples(ep)]
        demo_steps = [(self._prompt(t.observation), t.action.delta) for ep in demos for t in ep.transitions if t.human]
        use_demo = not warmup and self.coefs.demo_coef > 0 and bool(demo_steps)
        if len(samples) < 2 and not use_demo:
            raise ValueError(f"update: {len(samples)} step(s) to train on; PPO needs at least 2")

        totals: dict[str, float] = {}
        count, first_logratio = 0, math.nan
        frozen = self._freeze_trunk(warmup)
        try:
            for _ in range(self.config.update_epochs):
                batches = self._minibatches(len(samples))
                if not batches and use_demo:  # no rollout yet (only demos): demo replay alone
                    per_epoch = math.ceil(len(demo_steps) / self.config.demo_minibatch_size)
                    batches = [np.array([], dtype=int)] * per_epoch
                for batch in batches:
                    mb = [samples[i] for i in batch]
                    demo_mb = self._demo_minibatch(demo_steps) if use_demo else None
                    parts, logratio = self._step(mb, demo_mb, warmup)
                    if math.isnan(first_logratio) and batch.size:
                        first_logratio = logratio
                    for key, value in parts.items():
                        totals[key] = totals.get(key, 0.0) + value
                    count += 1
        finally:
            self._unfreeze(frozen)
        self.updates += 1
        self.policy.version += 1
        mean = {k: v / max(count, 1) for k, v in totals.items()}
        return UpdateStats(
            policy_version=self.policy.version,
            warmup=warmup,
            steps=len(samples),
            demo_steps=len(demo_steps) if use_demo else 0,
            minibatches=count,
            loss=mean.get("loss", math.nan),
            pg_loss=mean.get("pg_loss", math.nan),
            v_loss=mean.get("v_loss", math.nan),
            entropy=mean.get("entropy", math.nan),
            demo_nll=mean.get("demo_nll") if use_demo else None,
            approx_kl=mean.get("approx_kl", math.nan),
            clipfrac=mean.get("clipfrac", math.nan),
            max_abs_logratio_first=first_logratio,
        )

    def _minibatches(self, n: int) -> list[np.ndarray]:
        """Shuffled minibatches of at least two steps (advantage normalisation needs two)."""
        if n < 2:
            return []
        order = self.rng.permutation(n)
        size = self.config.minibatch_size
        batches = [order[lo : lo + size] for lo in range(0, n, size)]
        if len(batches) > 1 and len(batches[-1]) < 2:
            batches[-2] = np.concatenate([batches[-2], batches.pop()])
        return batches

    def _demo_minibatch(self, demo_steps):
        picks = self.rng.integers(len(demo_steps), size=min(self.config.demo_minibatch_size, len(demo_steps)))
        return [demo_steps[int(i)] for i in picks]

    def _step(self, mb: list[StepSample], demo_mb, warmup: bool) -> tuple[dict[str, float], float]:
        """One gradient step; returns the loss parts and max |new - old| log-prob of this minibatch."""
        if not mb:
            return self._demo_only_step(demo_mb), math.nan
        scores = self._score([(s.content, s.images) for s in mb], [s.action for s in mb], with_grad=True)
        device = scores.values.device
        old_logprob = torch.tensor([s.old_logprob for s in mb], dtype=torch.float32, device=device)
        old_values = torch.tensor([s.old_value for s in mb], dtype=torch.float32, device=device)
        advantages = torch.tensor([s.advantage for s in mb], dtype=torch.float32, device=device)
        returns = torch.tensor([s.ret for s in mb], dtype=torch.float32, device=device)
        logratio = float((scores.logprob.detach() - old_logprob).abs().max())
        if warmup:
            v_loss = value_loss(scores.values, returns)
            loss = self.coefs.vf_coef * v_loss
            parts = {"loss": loss.item(), "v_loss": v_loss.item()}
        else:
            demo_scores = None
            if demo_mb is not None:
                demo_scores = self._score([p for p, _ in demo_mb], [a for _, a in demo_mb], with_grad=True)
            out = combined_ppo_loss(
                new_token_logprobs=scores.token_logprobs,
                token_mask=scores.mask,
                old_logprob=old_logprob,
                advantages=advantages,
                returns=returns,
                new_values=scores.values,
                old_values=old_values,
                token_entropies=scores.entropies,
                coefs=self.coefs,
                demo_token_logprobs=None if demo_scores is None else demo_scores.token_logprobs,
                demo_token_mask=None if demo_scores is None else demo_scores.mask,
            )
            loss = out.loss
            parts = {
                "loss": loss.item(),
                "pg_loss": out.pg_loss,
                "v_loss": out.v_loss,
                "entropy": out.entropy,
                "approx_kl": out.approx_kl,
                "clipfrac": out.clipfrac,
            }
            if out.demo_nll is not None:
                parts["demo_nll"] = out.demo_nll
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return parts, logratio

    def _demo_only_step(self, demo_mb) -> dict[str, float]:
        """Offline demonstration replay without rollouts: demo_coef * NLL of the human actions."""
        scores = self._score([p for p, _ in demo_mb], [a for _, a in demo_mb], with_grad=True)
        demo_nll = demo_nll_loss(scores.token_logprobs, scores.mask)
        loss = self.coefs.demo_coef * demo_nll
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return {"loss": loss.item(), "demo_nll": demo_nll.item()}

    def _freeze_trunk(self, warmup: bool) -> list[torch.nn.Parameter]:
        """During warm-up only the value head learns: the trunk's parameters stop requiring grad."""
        if not warmup:
            return []
        frozen = [p for p in self.policy.loaded.model.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        return frozen

    @staticmethod
    def _unfreeze(frozen: list[torch.nn.Parameter]) -> None:
        for p in frozen:
            p.requires_grad_(True)


def _has_critic_rewards(episode: Episode) -> bool:
    """A demo episode can teach the value head when the critic scored it and it ended in a usable way."""
    if episode.termination in (None, Termination.ABORTED) or episode.length == 0:
        return False
    if bootstraps(episode.termination) and episode.final_observation is None:
        return False
    return any(t.progress_pct is not None for t in episode.transitions)
