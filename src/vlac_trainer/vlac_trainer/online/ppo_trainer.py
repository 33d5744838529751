"""One PPO update of the VLAC actor: ``PPOTrainer.update`` reads top to bottom in cleanrl's order.

1. Score every step once, without gradients (``episode_samples``): log mu(a|s), what the behaviour
   policy gave the action *while sampling* (``PolicyAction.token_logprobs``), so an episode collected one
   version ago is corrected for, not treated as on-policy; log pi_old(a|s) and V(s) under the pre-update
   policy (pi_old measures the update's own KL); the frozen prior's log-prob of each decision when the KL
   anchor is on. A backend whose numbers cannot be trusted (``logprob_needs_recompute``, vLLM) gets the
   recompute as mu, which is mu only when the step was sampled by the current version: other such
   episodes are dropped and counted.
2. GAE and returns per episode (``gae.episode_advantages``); a truncated episode bootstraps from V(s) of
   its final observation (read at the prompt's last token, ``scoring.state_values``). With ``advantage:
   group`` each step's advantage is its episode's return against the other episodes from the same start, with
   ``group_phase`` its phase visit's return to go against theirs from that phase on (``group_baseline``; the GAE
   returns stay the value targets). Advantages are normalised once over the
   whole batch when ``norm_adv``.
3. Value warm-up: the first ``value_warmup_updates`` updates train the value head alone (trunk frozen) on
   discounted returns of the real rewards (lambda = 1). The head has its own learning rate and starts
   from zero (``value_head_init``), so the first advantages are not those of a head fitted to another
   scale or read at another token.
4. Epochs of shuffled minibatches: clipped surrogate (one ratio pi/mu per action, or per sampled decision
   with ``ppo_ratio: decision``, or pi/pi_old weighted by a truncated pi_old/mu with ``ppo_clip_around:
   pre_update``) + vf_coef x value loss (no clip unless ``vf_clip``) - ent_coef x entropy
   + demo_coef x NLL of human steps (offline demonstration replay) + self_imitation_coef x NLL of the
   policy's own recent successes (``buffers.SuccessBuffer``) + prior_kl_coef x KL to the frozen starting
   policy; imitation minibatches alone while there is no rollout.
5. The target-KL stop after each epoch, on the KL to pi_old (``ppo.target_kl_exceeded``); with ``kl_guard`` on,
   also the update's end, before the step, at the first minibatch whose KL to pi_old exceeds it.
6. Diagnostics: ``UpdateStats`` (``update_log`` writes them to JSONL and TensorBoard), with
   ``lesson_agreement`` on also the update's lesson (its policy term's gradient at the pre-update policy, taken
   before step 4) against the earlier ones (``lesson_agreement``). Every update makes a new policy version
   (``policy.version += 1``).
The loss pieces are the pure functions of ``ppo.py``, each tested against hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from vlac_actor.inputs import InputLimits, actor_content
from vlac_actor.policy import Policy
from vlac_actor.scoring import ActionScores, score_actions, state_values
from vlac_core.types import DeltaAction, Episode, Observation, PolicyAction, Termination
from vlac_trainer.online import ppo
from vlac_trainer.online.gae import bootstraps, episode_advantages
from vlac_trainer.online.group_baseline import leave_one_out_advantages, length_balanced, phase_matched_advantages
from vlac_trainer.online.lesson_agreement import LessonAgreement
from vlac_trainer.online.trainer_config import GROUP_ADVANTAGES, TrainerConfig

#: A step to imitate (demo NLL, self-imitation): its prompt (content, images) and the action taken.
DemoStep = tuple[tuple[str, tuple[np.ndarray, ...]], DeltaAction]


@dataclass(frozen=True)
class StepSample:
    """One step ready for the loss: the prompt, the action, and what the policies said of it."""

    content: str
    images: tuple[np.ndarray, ...]
    action: DeltaAction
    behaviour_logprob: float  # log mu(a|s): what the sampling policy gave it, nats per action
    old_logprob: float  # log pi_old(a|s): torch recompute under the pre-update policy
    old_value: float  # V(s) under the pre-update policy
    advantage: float  # raw GAE advantage (normalised over the batch later)
    ret: float  # the value target
    behaviour_tokens: tuple[float, ...] = ()  # log mu per sampled decision, in order (the per-decision ratio)
    prior_tokens: tuple[float, ...] = ()  # log prior per sampled decision (the KL anchor; scored once per update)


@dataclass(frozen=True)
class UpdateStats:
    """What one update did, for logs, topics and summary.json (floats averaged over the minibatches run)."""

    policy_version: int
    warmup: bool
    steps: int
    demo_steps: int
    minibatches: int  # minibatches run, a last one that kl_guard stopped (without its step) included
    loss: float
    pg_loss: float
    v_loss: float
    entropy: float  # mean entropy per sampled decision (token), nats
    demo_nll: float | None
    self_imitation_nll: float | None  # NLL per decision of the replayed successes' actions (None: none replayed)
    self_imitation_steps: int  # steps of the replayed successful episodes
    approx_kl: float  # to the pre-update policy, mean over the minibatches run
    clipfrac: float  # share of actions (decisions) whose ratio left [1 - clip, 1 + clip] (to mu, or pi_old: pre_update)
    max_abs_logratio_first: float  # |log pi - log mu| at the first minibatch (0 for current data)
    episodes: int = 0  # rollout episodes trained on
    dropped_episodes: int = 0  # rollouts dropped: no trustworthy behaviour log-probs (see module doc)
    ungrouped_episodes: int = 0  # advantage group: rollouts left out, alone in the batch from their start
    early_stopped: bool = False  # the target-KL stop skipped at least one epoch
    # Why: the mean hides one runaway minibatch (rl47 seed 0: an update's one epoch averaged 15.6).
    approx_kl_max: float = math.nan  # the largest minibatch's approx_kl
    kl_guard_stopped: bool = False  # the update ended at a minibatch over kl_guard, without its step
    explained_variance: float = math.nan  # 1 - Var(R - V) / Var(R) with the pre-update values
    grad_norm_policy: float = math.nan  # |grad of the policy loss| on the shared trunk, first minibatch
    grad_norm_value: float = math.nan  # |grad of vf_coef * value loss| on the shared trunk, first minibatch
    # Why these two: the clip decides how far a step goes. A gradient clipped to max_grad_norm reaches Adam at the
    # same norm whatever the advantages' strength (rl30/rl31: norms 14-16 against 0.5, so every step was clipped).
    grad_norm: float = math.nan  # global gradient norm before the clip, mean over the minibatches run
    grad_clipped_share: float = math.nan  # share of the minibatches whose norm exceeded max_grad_norm
    # Why: Adam steps on a zero gradient along its momentum (rl32 seed 0: KL 0.127 on an update with no signal).
    steps_skipped_share: float = math.nan  # share of the minibatches with no optimiser step (skip_zero_gradient_steps)
    adv_mean: float = math.nan  # raw advantages of the batch, before normalisation
    adv_std: float = math.nan
    adv_min: float = math.nan
    adv_max: float = math.nan
    return_mean: float = math.nan
    logratio_sampled_mean: float = math.nan  # mean of log pi_old - log mu per action (recomputed - sampled)
    ratio_sampled_mean: float = math.nan  # mean of pi_old / mu
    # Why logged without the anchor too (log_prior_kl): an update's noise is not free; a walk away from a prior fitted
    # to the expert costs success (docs/rl_experiments.md, "The prediction tested"), so the drift is read beside the
    # lessons.
    prior_kl: float | None = None  # KL to the frozen prior per action (prior_kl_coef > 0 or log_prior_kl)
    # Why: how much the updates' lessons share is half of whether a budget of episodes climbs (docs/rl_experiments.md,
    # "Do the scenes' lessons agree?"; the drift's cost the other); lesson_agreement.py says what each figure is.
    # NaN: off, warm-up or undefined.
    lesson_norm: float = math.nan  # |grad of sum_s A_s log pi(a_s|s)| at the pre-update policy (0: no lesson)
    lesson_cos_to_past: float = math.nan  # cosine of this lesson to the sum of the earlier (unit) lessons
    lesson_agreement: float = math.nan  # mean pairwise cosine of the lessons so far
    lesson_shared_to_noise: float = math.nan  # sqrt(n rho / (1 - rho)): ~3 and up, the shared lesson stands out
    lessons: int = 0  # lessons counted so far (this run, across trainer restarts)


def minibatch_indices(order: np.ndarray, size: int) -> list[np.ndarray]:
    """``order`` cut into minibatches of ``size`` steps, every step in exactly one; a last minibatch of one step
    joins the one before it (a one-step minibatch's gradient is one action's noise).

    Why a function of its own: the merge was once written ``batches[-2] = concatenate([batches[-2],
    batches.pop()])``, whose target index is taken after the pop, so whenever a batch's steps were 1 more than a
    multiple of ``size`` its first minibatch was lost and another trained twice (rl41: 8 of 200 updates), or, with
    two minibatches, the update failed."""
    batches = [order[lo : lo + size] for lo in range(0, len(order), size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        last = batches.pop()
        batches[-1] = np.concatenate([batches[-1], last])
    return batches


def sampled_token_logprobs(
    action: PolicyAction, recomputed: tuple[float, ...], current_version: int
) -> tuple[float, ...] | None:
    """log mu(a|s) per sampled decision of one step: the recorded sampling log-probs, the recompute where the
    backend's numbers need it and the step is current, else None (no trustworthy behaviour probability)."""
    if not action.logprob_needs_recompute and action.token_logprobs:
        return tuple(action.token_logprobs)
    if action.policy_version == current_version:
        return recomputed
    return None


@dataclass(frozen=True)
class UpdateBatch:
    """The update's steps with their numbers as tensors (cleanrl's b_logprobs, b_values, b_advantages,
    b_returns); the advantages normalised once over the whole batch when ``norm_adv``."""

    samples: tuple[StepSample, ...]
    behaviour_logprob: torch.Tensor  # log mu(a|s) per action
    old_logprob: torch.Tensor  # log pi_old(a|s) per action
    values: torch.Tensor  # V(s) under pi_old
    advantages: torch.Tensor
    returns: torch.Tensor

    @classmethod
    def of(cls, samples: Sequence[StepSample], norm_adv: bool) -> UpdateBatch:
        def column(name: str) -> torch.Tensor:
            return torch.tensor([getattr(s, name) for s in samples], dtype=torch.float32)

        advantages = column("advantage")
        if norm_adv and advantages.numel() >= 2:
            advantages = ppo.normalize_advantages(advantages)
        return cls(
            tuple(samples),
            column("behaviour_logprob"),
            column("old_logprob"),
            column("old_value"),
            advantages,
            column("ret"),
        )

    def minibatch(self, index: np.ndarray, device: torch.device) -> UpdateBatch:
        """The steps at ``index``, their tensors on ``device``."""
        take = torch.as_tensor(index, dtype=torch.long)
        columns = (self.behaviour_logprob, self.old_logprob, self.values, self.advantages, self.returns)
        return UpdateBatch(tuple(self.samples[int(i)] for i in index), *(c[take].to(device) for c in columns))

    @property
    def prompts(self) -> list[tuple[str, tuple[np.ndarray, ...]]]:
        return [(s.content, s.images) for s in self.samples]

    @property
    def actions(self) -> list[DeltaAction]:
        return [s.action for s in self.samples]

    def diagnostics(self) -> dict[str, float]:
        """What the batch says before any step: does V(s) know the returns, how big and how stale is the data."""
        if not self.samples:
            return {}
        raw = np.array([s.advantage for s in self.samples])
        values, returns = self.values.numpy(), self.returns.numpy()
        log_r = (self.old_logprob - self.behaviour_logprob).numpy()
        return {
            "explained_variance": ppo.explained_variance(values, returns),
            "adv_mean": float(raw.mean()),
            "adv_std": float(raw.std()),
            "adv_min": float(raw.min()),
            "adv_max": float(raw.max()),
            "return_mean": float(returns.mean()),
            "logratio_sampled_mean": float(log_r.mean()),
            "ratio_sampled_mean": float(np.exp(log_r).mean()),
        }


class PPOTrainer:
    """Holds the trainer's copy of the policy and its optimizer; ``update`` runs one PPO update."""

    def __init__(
        self,
        policy: Policy,
        config: TrainerConfig,
        input_limits: InputLimits | None = None,
        prior: Policy | None = None,
    ) -> None:
        if config.prior_kl_coef > 0 and prior is None:
            raise ValueError("prior_kl_coef > 0 needs the prior: the frozen starting policy (checkpoint_path)")
        if config.log_prior_kl and prior is None:
            raise ValueError("log_prior_kl needs the prior: the frozen starting policy (checkpoint_path)")
        self.policy = policy
        #: The frozen starting policy: the KL anchor pulls towards it, or (log_prior_kl) the drift from it is logged
        #: (None: neither).
        self.prior = prior if config.prior_kl_coef > 0 or config.log_prior_kl else None
        self.config = config
        self.input_limits = input_limits or InputLimits()
        self.coefs = config.coefficients
        # The value head learns at its own rate: it starts from zero and must reach the returns' scale
        # within a few updates, while the trunk moves at the policy's careful rate.
        self.optimizer = torch.optim.Adam(
            [
                {"params": list(self.policy.loaded.model.parameters()), "lr": config.learning_rate},
                {"params": list(self.policy.value_head.parameters()), "lr": config.value_learning_rate},
            ],
            eps=1e-5,
        )
        self.updates = 0
        self.rng = np.random.default_rng(config.seed)
        #: The running agreement of the updates' lessons (None: ``lesson_agreement`` off).
        self.lessons = LessonAgreement() if config.lesson_agreement else None

    def parameters(self) -> list[torch.nn.Parameter]:
        """Model and value-head parameters, in a fixed order (the optimizer state refers to it)."""
        return [*self.policy.loaded.model.parameters(), *self.policy.value_head.parameters()]

    @property
    def in_warmup(self) -> bool:
        return self.updates < self.config.value_warmup_updates

    # -- the update ------------------------------------------------------------------------------

    def update(
        self, rollouts: Sequence[Episode], demos: Sequence[Episode] = (), successes: Sequence[Episode] = ()
    ) -> UpdateStats:
        """One PPO update on ``rollouts`` (+ demo replay from ``demos``, + self-imitation of ``successes``: the
        policy's own episodes that ended on done); the policy version goes up by one."""
        if not rollouts and not demos and not successes:
            raise ValueError("update: no rollout, demo or successful episode to train on")
        warmup = self.in_warmup
        if self.updates == 0 and self.config.value_head_init == "zero":
            self.policy.value_head.zero_()

        # 1-2. Score every step once (no grad: log mu, log pi_old, V, log prior) and compute GAE and returns.
        scored = [self.episode_samples(ep, warmup=warmup) for ep in rollouts]
        dropped = sum(s is None for s in scored)
        ungrouped = 0
        if self.config.advantage in GROUP_ADVANTAGES and not warmup:
            scored, ungrouped = _with_group_advantages(
                rollouts, scored, by_phase=self.config.advantage == "group_phase", weighting=self.config.group_weighting
            )
        samples = [s for ep_samples in scored if ep_samples is not None for s in ep_samples]
        if warmup:  # demos scored with the session's reward teach the value head too
            samples += [s for ep in demos if _has_rewards(ep) for s in self.episode_samples(ep, warmup=True) or []]
        demo_steps = [] if warmup or self.coefs.demo_coef == 0 else self._imitation_steps(demos, human_only=True)
        success_steps = [] if warmup or self.coefs.self_imitation_coef == 0 else self._imitation_steps(successes)
        if len(samples) < 2 and not demo_steps and not success_steps:
            alone = (
                f" ({ungrouped} episode(s) alone in the batch from their start: advantage group)" if ungrouped else ""
            )
            raise ValueError(f"update: {len(samples)} step(s) to train on{alone}; PPO needs at least 2")
        batch = UpdateBatch.of(samples, norm_adv=self.config.norm_adv)
        lesson = {}
        if self.lessons is not None and not warmup and samples:
            figures = self.lessons.add(self._lesson(batch))
            lesson = {f"lesson_{k}": v for k, v in asdict(figures).items() if k != "lessons"}
            lesson["lessons"] = figures.lessons

        # 3-5. Epochs of minibatches (the value head alone in warm-up), the target-KL stop after each epoch and
        # the KL guard within one.
        log: list[dict[str, float]] = []  # one record per minibatch
        early_stopped = guarded = False
        with self._trunk_frozen(warmup):
            for epoch in range(self.config.update_epochs):
                epoch_start = len(log)
                for index, demo_mb, success_mb in self._minibatches(len(samples), demo_steps, success_steps):
                    if index.size == 0:
                        log.append(self._imitation_step(demo_mb, success_mb))
                    elif warmup:
                        log.append(self._value_step(batch.minibatch(index, self.policy.device)))
                    else:
                        mb = batch.minibatch(index, self.policy.device)
                        log.append(self._ppo_step(mb, demo_mb, success_mb, measure_grads=not log))  # grads: first
                        guarded = bool(log[-1].get("kl_guarded"))
                        if guarded:
                            break
                if guarded:
                    break
                epoch_kl = [m["approx_kl"] for m in log[epoch_start:] if "approx_kl" in m]
                if epoch + 1 < self.config.update_epochs and ppo.target_kl_exceeded(epoch_kl, self.config.target_kl):
                    early_stopped = True  # only when an epoch is skipped: past the last one there is none to stop
                    break
        self.updates += 1
        self.policy.version += 1

        # 6. Diagnostics: the minibatches' mean loss parts and what the batch said before the update.
        def mean(key: str, missing: float | None = math.nan) -> float | None:  # minibatches log the same keys
            seen = [m[key] for m in log if key in m]
            return sum(seen) / len(seen) if seen else missing

        def first(key: str) -> float:
            return next((m[key] for m in log if key in m), math.nan)

        return UpdateStats(
            policy_version=self.policy.version,
            warmup=warmup,
            steps=len(samples),
            demo_steps=len(demo_steps),
            self_imitation_steps=len(success_steps),
            minibatches=len(log),
            loss=mean("loss"),
            pg_loss=mean("pg_loss"),
            v_loss=mean("v_loss"),
            entropy=mean("entropy"),
            demo_nll=mean("demo_nll", None),
            self_imitation_nll=mean("self_imitation_nll", None),
            prior_kl=mean("prior_kl", None),
            approx_kl=mean("approx_kl"),
            clipfrac=mean("clipfrac"),
            max_abs_logratio_first=first("max_abs_logratio"),
            episodes=sum(s is not None for s in scored),
            dropped_episodes=dropped,
            ungrouped_episodes=ungrouped,
            early_stopped=early_stopped,
            approx_kl_max=max((m["approx_kl"] for m in log if "approx_kl" in m), default=math.nan),
            kl_guard_stopped=guarded,
            grad_norm_policy=log[0].get("grad_norm_policy", math.nan),
            grad_norm_value=log[0].get("grad_norm_value", math.nan),
            grad_norm=mean("grad_norm"),
            grad_clipped_share=mean("grad_clipped"),
            steps_skipped_share=mean("step_skipped"),
            **batch.diagnostics(),
            **lesson,
        )

    def _ppo_step(
        self,
        mb: UpdateBatch,
        demo_mb: list[DemoStep] | None,
        success_mb: list[DemoStep] | None,
        measure_grads: bool,
    ) -> dict[str, float]:
        """One PPO gradient step (cleanrl's inner loop) with the imitation terms and the KL anchor; with
        ``measure_grads``, the policy and value terms' gradient norms on the shared trunk too. A minibatch whose KL to
        pi_old is over ``kl_guard`` takes no step: its record holds that KL and ``kl_guarded``."""
        new = self._score_with_grad(mb.prompts, mb.actions)
        newlogprob = ppo.action_logprobs(new.token_logprobs, new.mask)
        kl = ppo.approx_kl(newlogprob, mb.old_logprob)  # to pi_old: the target-KL stop and the guard read it
        if 0 < self.config.kl_guard < kl:
            return {"approx_kl": kl, "kl_guarded": 1.0}
        if self.coefs.ratio == "decision":
            behaviour_tokens = _aligned([s.behaviour_tokens for s in mb.samples], new.mask)
            pg_loss, clipfrac = ppo.per_decision_surrogate_loss(
                new.token_logprobs, behaviour_tokens, new.mask, mb.advantages, self.coefs.clip_coef
            )
        elif self.coefs.clip_around == "pre_update":
            pg_loss, clipfrac = ppo.decoupled_surrogate_loss(
                newlogprob,
                mb.old_logprob,
                mb.behaviour_logprob,
                mb.advantages,
                self.coefs.clip_coef,
                self.coefs.behaviour_weight_max,
            )
        else:
            pg_loss, clipfrac = ppo.clipped_surrogate_loss(
                newlogprob, mb.behaviour_logprob, mb.advantages, self.coefs.clip_coef
            )
        v_loss = ppo.value_loss(new.values, mb.returns, mb.values, self.coefs.vf_clip or None)
        entropy_loss = ppo.masked_token_mean(new.entropies, new.mask)
        loss = pg_loss - self.coefs.ent_coef * entropy_loss + v_loss * self.coefs.vf_coef
        record = {"pg_loss": pg_loss.item(), "v_loss": v_loss.item(), "entropy": entropy_loss.item()}
        loss = loss + self._imitation_loss(demo_mb, success_mb, record)
        if self.prior is not None:
            prior_tokens = _aligned([s.prior_tokens for s in mb.samples], new.mask)
            kl_to_prior = ppo.prior_kl(new.token_logprobs, prior_tokens, new.mask)
            if self.config.prior_kl_coef > 0:  # else logged only (log_prior_kl): the drift, the update unchanged
                loss = loss + self.config.prior_kl_coef * kl_to_prior
            record["prior_kl"] = kl_to_prior.item()
        record["approx_kl"] = kl
        record["clipfrac"] = clipfrac
        record["max_abs_logratio"] = float((newlogprob.detach() - mb.behaviour_logprob).abs().max())
        if measure_grads:
            norms = self._trunk_grad_norms(pg_loss, self.coefs.vf_coef * v_loss)
            record["grad_norm_policy"], record["grad_norm_value"] = norms
        record.update(self._gradient_step(loss))
        return {"loss": loss.item(), **record}

    def _value_step(self, mb: UpdateBatch) -> dict[str, float]:
        """A warm-up step: the value head alone (the trunk is frozen) toward the discounted returns."""
        new = self._score_with_grad(mb.prompts, mb.actions)
        v_loss = ppo.value_loss(new.values, mb.returns)
        loss = self.coefs.vf_coef * v_loss
        newlogprob = ppo.action_logprobs(new.token_logprobs, new.mask).detach()
        step = self._gradient_step(loss)
        return {
            "loss": loss.item(),
            "v_loss": v_loss.item(),
            "max_abs_logratio": float((newlogprob - mb.behaviour_logprob).abs().max()),
            **step,
        }

    def _imitation_loss(
        self, demo_mb: list[DemoStep] | None, success_mb: list[DemoStep] | None, record: dict[str, float]
    ) -> torch.Tensor | float:
        """demo_coef x NLL of the human actions + self_imitation_coef x NLL of the replayed successes' actions
        (each term only when its minibatch is drawn); each NLL goes into ``record``."""
        loss: torch.Tensor | float = 0.0
        terms = (
            ("demo_nll", self.coefs.demo_coef, demo_mb),
            ("self_imitation_nll", self.coefs.self_imitation_coef, success_mb),
        )
        for name, coef, steps in terms:
            if steps is None:
                continue
            scores = self._score_with_grad([p for p, _ in steps], [a for _, a in steps])
            nll = ppo.demo_nll_loss(scores.token_logprobs, scores.mask)
            loss = loss + coef * nll
            record[name] = nll.item()
        return loss

    def _imitation_step(self, demo_mb: list[DemoStep] | None, success_mb: list[DemoStep] | None) -> dict[str, float]:
        """Demonstration replay and self-imitation without rollouts: the imitation terms alone."""
        record: dict[str, float] = {}
        loss = self._imitation_loss(demo_mb, success_mb, record)
        step = self._gradient_step(loss)
        return {"loss": loss.item(), **record, **step}

    def _gradient_step(self, loss: torch.Tensor) -> dict[str, float]:
        """One optimiser step; returns the global gradient norm before the clip, whether the clip scaled it, and
        whether the step was skipped (an exactly zero gradient under ``skip_zero_gradient_steps``)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.parameters(), self.config.max_grad_norm))
        # Exactly zero, no tolerance: any other gradient is the loss's own (a group that did alike gives exact
        # zeros, group_baseline); on a zero one Adam's step is its momentum alone.
        skip = self.config.skip_zero_gradient_steps and norm == 0.0
        if not skip:
            self.optimizer.step()
        return {"grad_norm": norm, "grad_clipped": float(norm > self.config.max_grad_norm), "step_skipped": float(skip)}

    def _minibatches(
        self, n: int, demo_steps: Sequence[DemoStep], success_steps: Sequence[DemoStep] = ()
    ) -> Iterator[tuple[np.ndarray, list[DemoStep] | None, list[DemoStep] | None]]:
        """One epoch: shuffled minibatches of at least two steps (each step once), each paired with a random
        draw of human steps and one of replayed successes' steps when there are any; with fewer than two
        steps, imitation minibatches alone (as many as cover the larger of the two step lists once)."""
        if n >= 2:
            batches = minibatch_indices(self.rng.permutation(n), self.config.minibatch_size)
        else:
            longest = max(len(demo_steps), len(success_steps))
            batches = [np.array([], dtype=int)] * math.ceil(longest / self.config.demo_minibatch_size)
        for index in batches:
            yield index, self._draw(demo_steps), self._draw(success_steps)

    def _draw(self, steps: Sequence[DemoStep]) -> list[DemoStep] | None:
        """``demo_minibatch_size`` steps drawn with replacement (fewer if there are fewer); None for none."""
        if not steps:
            return None
        picks = self.rng.integers(len(steps), size=min(self.config.demo_minibatch_size, len(steps)))
        return [steps[int(i)] for i in picks]

    def _lesson(self, batch: UpdateBatch) -> torch.Tensor:
        """grad of sum_s A_s log pi(a_s|s) over the batch at the current (pre-update) policy (``logprob_gradient``)."""
        return logprob_gradient(
            self.policy, batch.prompts, batch.actions, batch.advantages, self.config.score_batch_size
        )

    def _trunk_grad_norms(self, pg_term: torch.Tensor, v_term: torch.Tensor) -> tuple[float, float]:
        """Global gradient norms of the policy and value terms on the shared trunk (does not touch .grad)."""
        trunk = [p for p in self.policy.loaded.model.parameters() if p.requires_grad]

        def norm(term: torch.Tensor) -> float:
            grads = torch.autograd.grad(term, trunk, retain_graph=True, allow_unused=True)
            return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))

        return norm(pg_term), norm(v_term)

    @contextmanager
    def _trunk_frozen(self, frozen: bool) -> Iterator[None]:
        """During warm-up only the value head learns: the trunk's parameters stop requiring grad meanwhile."""
        params = [p for p in self.policy.loaded.model.parameters() if p.requires_grad] if frozen else []
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    # -- scoring (no grad, once per update) ------------------------------------------------------

    def episode_samples(self, episode: Episode, *, warmup: bool = False) -> list[StepSample] | None:
        """Score ``episode``'s steps under the current policy, with GAE targets; None when the episode has
        no trustworthy behaviour log-probs (see ``sampled_token_logprobs``). ``warmup``: lambda = 1 (the
        discounted return of the real rewards, bootstrapped only at a cut-off) for the value targets."""
        prompts = [self._prompt(t.observation) for t in episode.transitions]
        actions = [t.action.delta for t in episode.transitions]
        token_logprobs, values = self._score_no_grad(prompts, actions)
        behaviour_tokens = []
        for t, recomputed in zip(episode.transitions, token_logprobs, strict=True):
            mu = recomputed if t.human else sampled_token_logprobs(t.action, recomputed, self.policy.version)
            if mu is None:
                return None
            behaviour_tokens.append(mu)
        anchored = self.prior is not None and not warmup  # the warm-up trains the value head alone
        prior_tokens = self._score_no_grad(prompts, actions, self.prior)[0] if anchored else [()] * len(prompts)
        bootstrap_value = self.state_value(episode.final_observation) if bootstraps(episode.termination) else None
        advantages, returns = episode_advantages(
            episode,
            values,
            bootstrap_value,
            gamma=self.config.gamma,
            gae_lambda=1.0 if warmup else self.config.gae_lambda,
        )
        return [
            StepSample(c, i, a, math.fsum(mu), math.fsum(lp), v, float(adv), float(ret), mu, prior)
            for (c, i), a, mu, lp, v, adv, ret, prior in zip(
                prompts,
                actions,
                behaviour_tokens,
                token_logprobs,
                values,
                advantages.tolist(),
                returns.tolist(),
                prior_tokens,
                strict=True,
            )
        ]

    def state_value(self, observation: Observation) -> float:
        """V(observation) under the current policy: the bootstrap of an episode cut off there."""
        content, images = self._prompt(observation)
        return float(state_values(self.policy, [content], [list(images)])[0])

    def _prompt(self, observation: Observation) -> tuple[str, tuple[np.ndarray, ...]]:
        content, images = actor_content(observation, self.input_limits)
        return content, tuple(images)

    def _imitation_steps(self, episodes: Sequence[Episode], human_only: bool = False) -> list[DemoStep]:
        """The episodes' steps to imitate (the human ones only for demo replay), as prompts and actions."""
        return [
            (self._prompt(t.observation), t.action.delta)
            for ep in episodes
            for t in ep.transitions
            if t.human or not human_only
        ]

    def _score_with_grad(self, prompts, actions) -> ActionScores:
        """Scores of the trained policy that the loss back-propagates through (no-grad scoring: ``score_decisions``)."""
        return score_actions(
            self.policy,
            [c for c, _ in prompts],
            [list(i) for _, i in prompts],
            list(actions),
            with_grad=True,
        )

    def _score_no_grad(
        self, prompts, actions, policy: Policy | None = None
    ) -> tuple[list[tuple[float, ...]], list[float]]:
        """(per-decision log-probs, values) of many steps under ``policy`` (default: the trained one), in
        chunks of ``score_batch_size`` (``score_decisions``)."""
        return score_decisions(policy or self.policy, prompts, actions, self.config.score_batch_size)


def score_decisions(
    policy: Policy, prompts: Sequence[tuple[str, Sequence[np.ndarray]]], actions: Sequence[DeltaAction], chunk: int
) -> tuple[list[tuple[float, ...]], list[float]]:
    """Each step's per-decision log-probs of its action (teacher-forced, no grad) and its value under ``policy``,
    ``chunk`` steps per forward pass (memory, not the result)."""
    tokens, values = [], []
    for lo in range(0, len(prompts), chunk):
        part = slice(lo, lo + chunk)
        scores = score_actions(
            policy, [c for c, _ in prompts[part]], [list(i) for _, i in prompts[part]], list(actions[part])
        )
        logprobs, mask = scores.token_logprobs.float().cpu(), scores.mask.cpu()
        tokens += [tuple(logprobs[row][mask[row]].tolist()) for row in range(mask.shape[0])]
        values += scores.values.float().cpu().tolist()
    return tokens, values


def logprob_gradient(
    policy: Policy,
    prompts: Sequence[tuple[str, Sequence[np.ndarray]]],
    actions: Sequence[DeltaAction],
    weights: torch.Tensor,
    chunk: int,
) -> torch.Tensor:
    """grad of sum_s w_s log pi(a_s|s) over the model's trainable parameters, flattened (float32): the lesson of an
    update (w: its advantages) or an episode's score gradient (w: ones). Steps are teacher-forced ``chunk`` at a
    time (memory, not the result: the gradient is a sum over steps); ``torch.autograd.grad``, so .grad is left as
    it was."""
    if len(prompts) != len(actions) or len(actions) != weights.numel():
        raise ValueError(
            f"logprob_gradient: {len(prompts)} prompts, {len(actions)} actions and {weights.numel()} weights"
        )
    trainable = [p for p in policy.loaded.model.parameters() if p.requires_grad]
    total = [torch.zeros(p.shape, dtype=torch.float32, device=p.device) for p in trainable]
    for lo in range(0, len(actions), chunk):
        part = slice(lo, lo + chunk)
        scores = score_actions(
            policy,
            [c for c, _ in prompts[part]],
            [list(i) for _, i in prompts[part]],
            list(actions[part]),
            with_grad=True,
        )
        term = (weights[part].to(scores.mask.device) * ppo.action_logprobs(scores.token_logprobs, scores.mask)).sum()
        for acc, grad in zip(total, torch.autograd.grad(term, trainable, allow_unused=True), strict=True):
            if grad is not None:
                acc += grad.float()
    return torch.cat([t.flatten() for t in total])


def _with_group_advantages(
    rollouts: Sequence[Episode],
    scored: Sequence[list[StepSample] | None],
    *,
    by_phase: bool = False,
    weighting: str = "step",
) -> tuple[list[list[StepSample] | None], int]:
    """``scored`` with every step's advantage the episode's leave-one-out group advantage (per step scaled by
    mean length / length with ``weighting`` episode), or with ``by_phase`` the phase-matched one of each step
    (``group_baseline.phase_matched_advantages``); episodes alone in the batch from their start become None (not
    trained on), and how many they were."""
    kept = [i for i, samples in enumerate(scored) if samples is not None]
    # An episode without a start id belongs to no group: its own key keeps it alone.
    keys = [rollouts[i].start_state_id or f"\0{rollouts[i].episode_id}" for i in kept]
    if by_phase:
        for i in kept:
            missing = next((t for t, tr in enumerate(rollouts[i].transitions) if not tr.gt_phase), None)
            if missing is not None:
                raise ValueError(
                    f"advantage group_phase: episode {rollouts[i].episode_id} step {missing} has no simulator phase "
                    "(gt_phase); only a simulated arm records one"
                )
        steps = phase_matched_advantages(
            keys,
            [[t.reward for t in rollouts[i].transitions] for i in kept],
            [[t.gt_phase for t in rollouts[i].transitions] for i in kept],
        )
    else:
        per_episode = leave_one_out_advantages(keys, [rollouts[i].episode_return for i in kept])
        steps = [None if a is None else [a] * len(scored[i]) for i, a in zip(kept, per_episode, strict=True)]
    grouped = [(i, a) for i, a in zip(kept, steps, strict=True) if a is not None]
    if weighting == "episode":
        balanced = length_balanced([a[0] for _, a in grouped], [len(scored[i]) for i, _ in grouped])
        grouped = [(i, [b] * len(a)) for (i, a), b in zip(grouped, balanced, strict=True)]
    out: list[list[StepSample] | None] = [None] * len(scored)
    for i, per_step in grouped:
        out[i] = [replace(s, advantage=a) for s, a in zip(scored[i], per_step, strict=True)]
    return out, len(kept) - len(grouped)


def _aligned(rows: Sequence[tuple[float, ...]], mask: torch.Tensor) -> torch.Tensor:
    """Per-decision log-probs placed where ``mask`` (B, L) marks the re-scored actions' sampled decisions."""
    out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    for b, row in enumerate(rows):
        count = int(mask[b].sum())
        if count != len(row):
            raise ValueError(f"step {b} of the minibatch: {len(row)} recorded decisions, the re-score has {count}")
        out[b, mask[b]] = torch.tensor(row, dtype=torch.float32, device=mask.device)
    return out


def _has_rewards(episode: Episode) -> bool:
    """A demo episode can teach the value head when it was scored and it ended in a usable way."""
    if episode.termination in (None, Termination.ABORTED) or episode.length == 0:
        return False
    if bootstraps(episode.termination) and episode.final_observation is None:
        return False
    return any(t.progress_pct is not None for t in episode.transitions)
