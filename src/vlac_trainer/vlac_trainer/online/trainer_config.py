"""The PPO trainer's parameters, declared once: the trainer node and the embedded session read the same keys.

Section ``trainer_node`` of a session's parameter file. Defaults follow cleanrl's PPO where a choice
exists (gamma 0.99, lambda 0.95, clip 0.2, value coefficient 0.5, 0.5 gradient norm) and the paper
otherwise (demonstration replay on), except where issue 11's diagnosis showed cleanrl's choice fails
here: no value clipping, advantages normalised per update batch, a target-KL stop, and a zero-started
value head with its own learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from vlac_actor.policy_settings import SOURCE
from vlac_core.config import ConfigError, param, validate

if TYPE_CHECKING:  # ppo imports torch: reading a parameter file must not (`vlac session` checks it first)
    from .ppo import PPOCoefficients


#: The advantages that compare episodes from one start (``episode_manager.scene_repeats`` makes the groups).
GROUP_ADVANTAGES = ("group", "group_phase")


@dataclass(frozen=True)
class TrainerConfig:
    MOVED_KEYS: ClassVar[dict[str, str]] = {
        key: SOURCE for key in ("max_translation_mm", "max_rotation_deg", "num_views", "history_len")
    }

    checkpoint_path: str = param("", "policy checkpoint the trainer starts from (the actor's initial policy)")
    output_dir: str = param("", "folder for trainer checkpoints and published policy versions")
    bag_dirs: list[str] = param(
        [],
        "trainer node: folders of recorded training-episode bags (each arm's <bag_dir>/train; vlac.graph sets "
        "them); bags missing from the checkpoint are trained on at start, so a restart loses nothing. The "
        "embedded session reads its own <out>/bags/train",
    )
    bag_rescan_s: float = param(
        10.0,
        "trainer node: every this many seconds, finished bags in bag_dirs the trainer has still not received "
        "one rescan after they were first seen are read back (an /episodes message that never came, e.g. sent "
        "before discovery matched the trainer); 0: at start only",
        low=0.0,
    )
    device: str = param("cpu", "torch device of the trainer's policy copy: cpu, cuda, cuda:1, ...")
    own_process: bool = param(
        False,
        "run each update in a child process, beside the session's threads rather than under their GIL "
        "(embedded sessions on CPU; vlac_trainer.online.update_process)",
    )
    learning_rate: float = param(1e-5, "Adam learning rate of the policy (the model)", low=1e-9, high=1.0)
    value_learning_rate: float = param(1e-3, "Adam learning rate of the value head", low=1e-9, high=1.0)
    value_head_init: str = param(
        "zero",
        "value head at the first update: zero (V = 0: the checkpoint's head was fitted elsewhere) or checkpoint",
        choices=("zero", "checkpoint"),
    )
    gamma: float = param(0.99, "discount per step", low=0.0, high=1.0)
    gae_lambda: float = param(0.95, "GAE lambda", low=0.0, high=1.0)
    clip_coef: float = param(0.2, "PPO ratio clipping range", low=1e-3, high=10.0)
    ppo_ratio: str = param(
        "action",
        "where PPO takes and clips its ratio: per action (the product of its ~20 sampled decisions) or per "
        "sampled decision, the action's advantage shared by its decisions (as PPO for language models does)",
        choices=("action", "decision"),
    )
    ppo_clip_around: str = param(
        "behaviour",
        "what the per-action ratio is taken against and clipped around: behaviour (mu, the version that sampled "
        "the step) or pre_update (the policy before this update, each action weighted by pi_old / mu truncated "
        "at behaviour_weight_max: decoupled PPO, so a batch one version old starts inside the clip range)",
        choices=("behaviour", "pre_update"),
    )
    behaviour_weight_max: float = param(
        1.0, "ppo_clip_around pre_update: the largest importance weight pi_old / mu of a step", low=1e-3, high=100.0
    )
    advantage: str = param(
        "gae",
        "each step's advantage: gae (GAE on V(s)) or group (the episode's return minus the mean return of the other "
        "episodes in the batch from the same start: a leave-one-out baseline, every step of an episode alike; "
        "episode_manager.scene_repeats makes the groups; an episode alone in its batch is not trained on) or "
        "group_phase (the same baseline per task phase: each run of steps in one simulator phase gets its return to "
        "go from the run's start against the others' from where they first reached that phase; simulated arms only)",
        choices=("gae", *GROUP_ADVANTAGES),
    )
    group_weighting: str = param(
        "step",
        "advantage group: how an episode's steps share its advantage: step (every step carries all of it, so an "
        "episode weighs by its length and failures that run to the step limit outweigh shorter successes) or "
        "episode (each step's advantage is scaled by the batch's mean episode length over its episode's length: "
        "every episode weighs alike and a group's push sums to zero, GRPO's per-episode mean)",
        choices=("step", "episode"),
    )
    vf_coef: float = param(0.5, "weight of the value loss", low=0.0)
    ent_coef: float = param(0.0, "weight of the entropy bonus", low=0.0)
    demo_coef: float = param(0.1, "weight of the demonstration NLL (offline demo replay); 0 turns it off", low=0.0)
    self_imitation_coef: float = param(
        0.0,
        "weight of the self-imitation NLL: the policy's own recent episodes that ended on the reward source's done "
        "are replayed as demonstrations (vlac_trainer.online.buffers.SuccessBuffer; 0: off)",
        low=0.0,
    )
    self_imitation_capacity: int = param(50, "most recent successful episodes self-imitation replays", low=1)
    prior_kl_coef: float = param(
        0.0,
        "weight of the KL penalty to the starting policy (checkpoint_path, frozen: the prior), per action like "
        "the PPO ratio; keeps PPO from drifting off the prior on noise (0: off)",
        low=0.0,
    )
    vf_clip: float = param(
        0.0, "clip the value prediction this far from the rollout's value (return units; 0: off)", low=0.0
    )
    norm_adv: bool = param(True, "normalise advantages over the whole update batch")
    target_kl: float = param(
        0.02,
        "no further minibatch epoch once an epoch's mean approx. KL to the pre-update policy exceeds this (0: off)",
        low=0.0,
    )
    kl_guard: float = param(
        0.0,
        "end the update at once, before its step, when one minibatch's approx. KL to the pre-update policy exceeds "
        "this (nats per action; 0: off): catches a step that runs away within an epoch, which target_kl, read "
        "between epochs, cannot (rl47: one update averaged 15.6 over its one epoch). Far above target_kl (rl49: 1.0) "
        "it catches runaways only; at 1.5x it is stable-baselines3's rule and holds every update near the target "
        "(rl50: after about six steps)",
        low=0.0,
    )
    max_grad_norm: float = param(0.5, "global gradient-norm clip", low=1e-6)
    skip_zero_gradient_steps: bool = param(
        False,
        "no optimiser step on a minibatch whose gradient is exactly zero (e.g. a group whose episodes all did "
        "alike): Adam would move the policy along its momentum alone",
    )
    lesson_agreement: bool = param(
        False,
        "per update, also take the policy term's gradient at the pre-update policy (the update's lesson) and log "
        "how it agrees with the earlier ones (lesson_agreement.py); one more backward pass over the batch, one "
        "parameter-sized buffer; the update itself is unchanged",
    )
    log_prior_kl: bool = param(
        False,
        "score the frozen starting policy (checkpoint_path: the prior) on each batch and log prior_kl, the policy's "
        "drift from it, without the anchor (prior_kl_coef 0); one more forward pass per update, the update itself "
        "unchanged",
    )
    update_epochs: int = param(2, "passes over the batch per update", low=1, high=100)
    minibatch_size: int = param(16, "steps per gradient step", low=2, high=4096)
    demo_minibatch_size: int = param(8, "human steps per gradient step for the demo NLL", low=1, high=4096)
    episodes_per_update: int = param(4, "rollout episodes per update, each trained on once", low=1, high=10000)
    max_policy_lag: int = param(
        1, "train on episodes whose oldest step is at most this many versions old (older ones are dropped)", low=0
    )
    value_warmup_updates: int = param(
        1, "first updates train only the value head, on discounted returns of the real rewards", low=0
    )
    score_batch_size: int = param(16, "steps per no-grad recompute pass (old log-probs, values)", low=1)
    rollout_capacity: int = param(64, "rollout episodes kept per robot", low=1)
    success_window: int = param(20, "episodes per robot in the dynamic-sampling success rate", low=1)
    demo_capacity: int = param(1000, "episodes kept in the demo buffer", low=1)
    checkpoint_every_episodes: int = param(
        10, "save the training state after this many received episodes (later ones are re-read from bags)", low=1
    )
    keep_policy_versions: int = param(3, "published policy folders kept on disk", low=1, high=1000)
    keep_policy_every: int = param(
        0,
        "also keep every k-th published policy version on disk, so a run's mid-run policies can be evaluated after "
        "it (0: only the newest keep_policy_versions)",
        low=0,
        high=100000,
    )
    seed: int = param(0, "sampling seed of the trainer (batches, minibatches)", low=0)
    # The recompute must score actions under the actor's own grammar and prompt, from the actor's starting
    # policy: same values as actor_node (vlac_trainer.online.wiring.check_actor_trainer_agree checks them). The
    # grammar and prompt settings themselves are the policy's (its checkpoint's policy_settings.json).
    policy_version: int = param(0, "as actor_node.policy_version (version of checkpoint_path)", low=0)
    allow_fresh_value_head: bool = param(False, "as actor_node.allow_fresh_value_head (checkpoint without one)")
    max_task_chars: int = param(300, "as actor_node.max_task_chars (longest task text)", low=1, high=10000)
    max_abs_position_mm: float = param(1000.0, "as actor_node.max_abs_position_mm (state check), mm", low=1.0)

    def __post_init__(self) -> None:
        validate(self)

    def check(self) -> None:
        """Cross-field checks ``from_mapping`` runs after the per-field ones."""
        if not self.checkpoint_path.strip():
            raise ConfigError("checkpoint_path: empty; set the policy checkpoint the trainer starts from")
        if self.group_weighting != "step" and self.advantage != "group":
            raise ConfigError(
                f"group_weighting: {self.group_weighting!r} weighs an episode's advantage; advantage is "
                f"{self.advantage!r} (set advantage: group, or leave group_weighting at 'step')"
            )
        if self.ppo_clip_around == "pre_update" and self.ppo_ratio != "action":
            raise ConfigError(
                f"ppo_clip_around: 'pre_update' takes one ratio per action; ppo_ratio is {self.ppo_ratio!r} "
                "(set it to 'action')"
            )

    def input_limits(self, policy):
        """The recompute's input checks for ``policy`` (its PolicySettings), as the actor's."""
        return policy.input_limits(self.max_task_chars, self.max_abs_position_mm)

    @property
    def coefficients(self) -> PPOCoefficients:
        from .ppo import PPOCoefficients

        return PPOCoefficients(
            clip_coef=self.clip_coef,
            vf_coef=self.vf_coef,
            ent_coef=self.ent_coef,
            demo_coef=self.demo_coef,
            self_imitation_coef=self.self_imitation_coef,
            vf_clip=self.vf_clip,
            ratio=self.ppo_ratio,
            clip_around=self.ppo_clip_around,
            behaviour_weight_max=self.behaviour_weight_max,
        )
