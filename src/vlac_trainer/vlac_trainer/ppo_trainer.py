"""One PPO update of the VLAC actor, read like cleanrl's loop: recompute, GAE, minibatch epochs.

Per update (the choices issue 11's diagnosis asked for, each tested in test_ppo_trainer.py):
- Behaviour policy: the ratio is pi_theta(a|s) / mu(a|s) with mu the log-probs the actor *recorded
  while sampling* (``PolicyAction.token_logprobs``), so an episode collected one version ago is
  corrected for, not treated as on-policy. A backend whose numbers cannot be trusted
  (``logprob_needs_recompute``, vLLM) gets the torch recompute instead, which is mu only when the step
  was sampled by the current version: other such episodes are dropped and counted.
- Before the update every step is re-scored under the pre-update policy (``score_actions``): those
  log-probs measure the update's own KL (``approx_kl``, the target-KL early stop) and are compared
  with the sampled ones (``logratio_sampled_mean``: ~0 for current data, the staleness otherwise).
- V(s) is a state value read at the prompt's last token; a truncated episode bootstraps from V of its
  final observation (``scoring.state_values``).
- GAE per episode (``gae.episode_advantages``); advantages normalised once over the whole batch.
- Value warm-up: the first ``value_warmup_updates`` updates train the value head alone (trunk frozen)
  on discounted returns of the real rewards (GAE with lambda = 1), the value head has its own learning
  rate, and at the first update it starts from zero (``value_head_init``), so the first advantages are
  not those of a head fitted to another scale or read at another token.
- Afterwards: clipped surrogate + value loss (no clip unless ``vf_clip``) - entropy bonus
  (``ppo.ppo_loss``) + demonstration NLL on human steps (offline demonstration replay) + optionally
  ``prior_kl_coef`` x KL to the frozen starting policy (``prior_kl``: k3 estimates of the sampled
  decisions summed per action, as GRPO-style trainers anchor a policy to its reference); minibatch
  epochs stop early once an epoch's mean approximate KL to the pre-update policy exceeds ``target_kl``.
Every update makes a new policy version (``policy.version += 1``) and returns ``UpdateStats`` with the
diagnostics (``update_log`` writes them to JSONL and TensorBoard).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlac_actor.inputs import InputLimits, actor_content
from vlac_actor.policy import Policy
from vlac_actor.scoring import score_actions, state_values
from vlac_core.types import DeltaAction, Episode, Observation, PolicyAction, Termination
from vlac_trainer.gae import bootstraps, episode_advantages
from vlac_trainer.ppo import demo_nll_loss, normalize_advantages, value_loss
from vlac_trainer.ppo import ppo_loss as combined_ppo_loss
from vlac_trainer.trainer_config import TrainerConfig


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
    minibatches: int
    loss: float
    pg_loss: float
    v_loss: float
    entropy: float  # mean entropy per sampled decision (token), nats
    demo_nll: float | None
    approx_kl: float  # to the pre-update policy, mean over the minibatches run
    clipfrac: float  # share of actions whose ratio to the behaviour policy left [1 - clip, 1 + clip]
    max_abs_logratio_first: float  # |log pi - log mu| at the first minibatch (0 for current data)
    episodes: int = 0  # rollout episodes trained on
    dropped_episodes: int = 0  # rollouts dropped: no trustworthy behaviour log-probs (see module doc)
    early_stopped: bool = False  # the target-KL stop ended the epochs
    explained_variance: float = math.nan  # 1 - Var(R - V) / Var(R) with the pre-update values
    grad_norm_policy: float = math.nan  # |grad of the policy loss| on the shared trunk, first minibatch
    grad_norm_value: float = math.nan  # |grad of vf_coef * value loss| on the shared trunk, first minibatch
    adv_mean: float = math.nan  # raw advantages of the batch, before normalisation
    adv_std: float = math.nan
    adv_min: float = math.nan
    adv_max: float = math.nan
    return_mean: float = math.nan
    logratio_sampled_mean: float = math.nan  # mean of log pi_old - log mu per action (recomputed - sampled)
    ratio_sampled_mean: float = math.nan  # mean of pi_old / mu
    prior_kl: float | None = None  # KL to the frozen prior per action (only with prior_kl_coef > 0)


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    """1 - Var(returns - values) / Var(returns), as cleanrl logs it; NaN when the returns do not vary."""
    var_returns = float(np.var(returns))
    return math.nan if var_returns == 0 else 1.0 - float(np.var(returns - values)) / var_returns


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
        self.policy = policy
        #: The frozen starting policy the KL anchor pulls towards (None: no anchor).
        self.prior = prior if config.prior_kl_coef > 0 else None
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

    def _score(self, prompts, actions, with_grad: bool, policy: Policy | None = None):
        return score_actions(
            policy or self.policy,
            [c for c, _ in prompts],
            [list(i) for _, i in prompts],
            list(actions),
            with_grad=with_grad,
        )

    def _prior_kl(self, mb: Sequence[StepSample], scores) -> torch.Tensor:
        """KL(pi_theta || prior) per action, on the scale of the per-action ratio and ``approx_kl``: the
        k3 estimate (exp(d) - 1 - d, d = log prior - log pi_theta) of each sampled decision, summed over
        the action's decisions and averaged over the actions. Non-negative; its gradient pulls pi_theta
        to the prior. The prior's log-probs were scored once per update (``episode_samples``)."""
        mask = scores.mask
        prior = _aligned([s.prior_tokens for s in mb], mask).to(scores.token_logprobs.device)
        d = torch.where(mask, prior - scores.token_logprobs, 0.0)
        k3 = torch.exp(d) - 1 - d
        return (k3 * mask).sum() / mask.shape[0]

    def _score_no_grad(
        self, prompts, actions, policy: Policy | None = None
    ) -> tuple[list[tuple[float, ...]], list[float]]:
        """(per-decision log-probs, values) of many steps under ``policy`` (default: the trained one), in
        chunks of ``score_batch_size``."""
        tokens, values = [], []
        step = self.config.score_batch_size
        for lo in range(0, len(prompts), step):
            scores = self._score(prompts[lo : lo + step], actions[lo : lo + step], with_grad=False, policy=policy)
            logprobs, mask = scores.token_logprobs.float().cpu(), scores.mask.cpu()
            tokens += [tuple(logprobs[row][mask[row]].tolist()) for row in range(mask.shape[0])]
            values += scores.values.float().cpu().tolist()
        return tokens, values

    def state_value(self, observation: Observation) -> float:
        """V(observation) under the current policy: the bootstrap of an episode cut off there."""
        content, images = self._prompt(observation)
        return float(state_values(self.policy, [content], [list(images)])[0])

    def episode_samples(self, episode: Episode, *, warmup: bool = False) -> list[StepSample] | None:
        """Re-score ``episode``'s steps under the current policy, with GAE targets; None when the episode has
        no trustworthy behaviour log-probs (see ``sampled_token_logprobs``). ``warmup``: lambda = 1 (the
        discounted return of the real rewards, bootstrapped only at a cut-off) for the value targets."""
        prompts = [self._prompt(t.observation) for t in episode.transitions]
        actions = [t.action.delta for t in episode.transitions]
        token_logprobs, values = self._score_no_grad(prompts, actions)
        logprobs = [math.fsum(row) for row in token_logprobs]
        behaviour_tokens = []
        for t, recomputed in zip(episode.transitions, token_logprobs, strict=True):
            mu = recomputed if t.human else sampled_token_logprobs(t.action, recomputed, self.policy.version)
            if mu is None:
                return None
            behaviour_tokens.append(mu)
        behaviour = [math.fsum(row) for row in behaviour_tokens]
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
            StepSample(c, i, a, mu, lp, v, float(adv), float(ret), mu_tokens, prior)
            for (c, i), a, mu, lp, v, adv, ret, mu_tokens, prior in zip(
                prompts,
                actions,
                behaviour,
                logprobs,
                values,
                advantages.tolist(),
                returns.tolist(),
                behaviour_tokens,
                prior_tokens,
                strict=True,
            )
        ]

    # -- update ----------------------------------------------------------------------------------

    def update(self, rollouts: Sequence[Episode], demos: Sequence[Episode] = ()) -> UpdateStats:
        """One PPO update on ``rollouts`` (+ demo replay from ``demos``); the policy version goes up by one."""
        if not rollouts and not demos:
            raise ValueError("update: no rollout and no demo episode to train on")
        warmup = self.in_warmup
        if self.updates == 0 and self.config.value_head_init == "zero":
            self.policy.value_head.zero_()
        samples, dropped, trained = [], 0, 0
        for ep in rollouts:
            ep_samples = self.episode_samples(ep, warmup=warmup)
            dropped += ep_samples is None
            trained += ep_samples is not None
            samples += ep_samples or []
        if warmup:  # demos scored with the session's reward teach the value head too
            samples += [s for ep in demos if _has_rewards(ep) for s in self.episode_samples(ep, warmup=True) or []]
        demo_steps = [(self._prompt(t.observation), t.action.delta) for ep in demos for t in ep.transitions if t.human]
        use_demo = not warmup and self.coefs.demo_coef > 0 and bool(demo_steps)
        if len(samples) < 2 and not use_demo:
            raise ValueError(f"update: {len(samples)} step(s) to train on; PPO needs at least 2")

        batch = _BatchTensors.of(samples, normalize=self.config.norm_adv)
        totals: dict[str, float] = {}
        count, first_logratio, early_stopped = 0, math.nan, False
        grad_norms = (math.nan, math.nan)
        frozen = self._freeze_trunk(warmup)
        try:
            for _ in range(self.config.update_epochs):
                batches = self._minibatches(len(samples))
                if not batches and use_demo:  # no rollout yet (only demos): demo replay alone
                    per_epoch = math.ceil(len(demo_steps) / self.config.demo_minibatch_size)
                    batches = [np.array([], dtype=int)] * per_epoch
                epoch_kl = []
                for index in batches:
                    demo_mb = self._demo_minibatch(demo_steps) if use_demo else None
                    measure = count == 0 and not warmup and index.size > 0
                    parts, logratio, norms = self._step(samples, batch, index, demo_mb, warmup, measure)
                    if measure:
                        grad_norms = norms
                    if math.isnan(first_logratio) and index.size:
                        first_logratio = logratio
                    for key, value in parts.items():
                        totals[key] = totals.get(key, 0.0) + value
                    if "approx_kl" in parts:
                        epoch_kl.append(parts["approx_kl"])
                    count += 1
                # The stop reads the epoch's mean KL, as cleanrl checks after each epoch: one 16-step
                # minibatch's estimate is too noisy (in issue 11's runs it stopped 14 of 16 updates within
                # the first epoch while the updates' mean KL was 0.005, a quarter of the target).
                target = self.config.target_kl
                if target > 0 and epoch_kl and float(np.mean(epoch_kl)) > target:
                    early_stopped = True
                    break
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
            prior_kl=mean.get("prior_kl"),
            approx_kl=mean.get("approx_kl", math.nan),
            clipfrac=mean.get("clipfrac", math.nan),
            max_abs_logratio_first=first_logratio,
            episodes=trained,
            dropped_episodes=dropped,
            early_stopped=early_stopped,
            grad_norm_policy=grad_norms[0],
            grad_norm_value=grad_norms[1],
            **batch.diagnostics(samples),
        )

    def _minibatches(self, n: int) -> list[np.ndarray]:
        """Shuffled minibatches of at least two steps (each step once per epoch)."""
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

    def _step(self, samples, batch: _BatchTensors, index: np.ndarray, demo_mb, warmup: bool, measure: bool):
        """One gradient step; returns the loss parts, max |log pi - log mu| of this minibatch, and (when
        ``measure``) the policy and value terms' gradient norms on the trunk."""
        if index.size == 0:
            return self._demo_only_step(demo_mb), math.nan, (math.nan, math.nan)
        mb = [samples[int(i)] for i in index]
        scores = self._score([(s.content, s.images) for s in mb], [s.action for s in mb], with_grad=True)
        device = scores.values.device
        take = torch.as_tensor(index, dtype=torch.long)
        behaviour, old_logprob, old_values, advantages, returns = (
            t[take].to(device) for t in (batch.behaviour, batch.old_logprob, batch.old_values, batch.adv, batch.ret)
        )
        logratio = float((scores.logprob.detach() - behaviour).abs().max())
        norms = (math.nan, math.nan)
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
                old_logprob=behaviour,
                advantages=advantages,
                returns=returns,
                new_values=scores.values,
                old_values=old_values,
                token_entropies=scores.entropies,
                coefs=self.coefs,
                demo_token_logprobs=None if demo_scores is None else demo_scores.token_logprobs,
                demo_token_mask=None if demo_scores is None else demo_scores.mask,
                behaviour_token_logprobs=(
                    _aligned([s.behaviour_tokens for s in mb], scores.mask) if self.coefs.ratio == "decision" else None
                ),
            )
            loss = out.loss
            prior_kl = None
            if self.prior is not None:
                prior_kl = self._prior_kl(mb, scores)
                loss = loss + self.config.prior_kl_coef * prior_kl
            with torch.no_grad():  # the update's own size: KL to the pre-update policy (target-KL stop)
                log_r = scores.logprob.detach() - old_logprob
                approx_kl = float(((log_r.exp() - 1) - log_r).mean())
            parts = {
                "loss": loss.item(),
                "pg_loss": out.pg_loss,
                "v_loss": out.v_loss,
                "entropy": out.entropy,
                "approx_kl": approx_kl,
                "clipfrac": out.clipfrac,
            }
            if out.demo_nll is not None:
                parts["demo_nll"] = out.demo_nll
            if prior_kl is not None:
                parts["prior_kl"] = prior_kl.item()
            if measure:
                norms = self._trunk_grad_norms(out.pg_term, self.coefs.vf_coef * out.v_term)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return parts, logratio, norms

    def _trunk_grad_norms(self, pg_term: torch.Tensor, v_term: torch.Tensor) -> tuple[float, float]:
        """Global gradient norms of the policy and value terms on the shared trunk (does not touch .grad)."""
        trunk = [p for p in self.policy.loaded.model.parameters() if p.requires_grad]

        def norm(term: torch.Tensor) -> float:
            grads = torch.autograd.grad(term, trunk, retain_graph=True, allow_unused=True)
            return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))

        return norm(pg_term), norm(v_term)

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


@dataclass(frozen=True)
class _BatchTensors:
    """The update batch's per-step numbers as tensors; advantages normalised once over the whole batch."""

    behaviour: torch.Tensor
    old_logprob: torch.Tensor
    old_values: torch.Tensor
    adv: torch.Tensor
    ret: torch.Tensor

    @classmethod
    def of(cls, samples: Sequence[StepSample], normalize: bool) -> _BatchTensors:
        def column(name: str) -> torch.Tensor:
            return torch.tensor([getattr(s, name) for s in samples], dtype=torch.float32)

        adv = column("advantage")
        if normalize and adv.numel() >= 2:
            adv = normalize_advantages(adv)
        return cls(column("behaviour_logprob"), column("old_logprob"), column("old_value"), adv, column("ret"))

    def diagnostics(self, samples: Sequence[StepSample]) -> dict[str, float]:
        if not samples:
            return {}
        raw = np.array([s.advantage for s in samples])
        values, returns = self.old_values.numpy(), self.ret.numpy()
        log_r = (self.old_logprob - self.behaviour).numpy()
        return {
            "explained_variance": explained_variance(values, returns),
            "adv_mean": float(raw.mean()),
            "adv_std": float(raw.std()),
            "adv_min": float(raw.min()),
            "adv_max": float(raw.max()),
            "return_mean": float(returns.mean()),
            "logratio_sampled_mean": float(log_r.mean()),
            "ratio_sampled_mean": float(np.exp(log_r).mean()),
        }


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
