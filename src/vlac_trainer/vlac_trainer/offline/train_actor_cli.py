"""`vlac train actor --config config/train_actor.yaml`: behaviour cloning of the actor from expert demos.

Loss per batch: the demos' negative log-likelihood of the action template's numeric tokens under the
policy's constrained distribution (``vlac_actor.scoring.score_actions`` with gradients, fed to
``ppo.demo_nll_loss`` — the very term PPO's demo replay uses), plus ``value_coef`` times the squared
error of the value head against the discounted return (``bc_data``), a cheap warm-up of the head PPO
reads. With ``open_data`` (rollouts recorded with the simulator's ground truth), plus ``open_coef`` times
the NLL of the gripper decision alone on their held-bowl steps ("open" over the plate, "hold" mid-carry;
``bc_data.open_samples``): the decision the probe found blind to what the features hold, taught on both kinds
of state while the demos keep the rest of the policy. With ``self_data`` (the policy's own rollouts), its
successful ones, each cut at the step the ground truth first reports success (``train_common.load_self_records``),
are cloned like demos: filtered self-imitation, which needs no expert and no reward beyond success.
With ``object_coef`` > 0, plus that weight times an auxiliary loss: a linear head on the prompt's last hidden
state (what the value head and the first action decision read) regresses where the moved object is, relative
to the tool centre point and in the world (demos recorded with ``meta["object_mm"]``, ``bc_data.BCSample``).
Why: bench/object_probe.py found that the shipped prior's features do not hold where the sweep's trash is
while its 96 px frames do; the head is a training aid, dropped at export (a simulator-only target).

Exported to ``out_dir`` as a policy checkpoint (model, processor, ``value_head.safetensors``, and
``policy_settings.json``: the grammar limits below, the release prompt and the frame size, which the actor
and the trainer read from there) that ``vlac_actor.load_policy`` loads.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from vlac_core.config import ConfigError, param
from vlac_trainer.offline.train_common import LoopSettings, ModelSettings, add_train_arguments, run_training

SECTION = "train_actor"


@dataclass
class ActorTrainConfig(LoopSettings, ModelSettings):
    """Section ``train_actor`` of the config file."""

    train_data: list[str] = param([], "folders of expert demos (successful ones) and DAgger rollouts")
    self_data: list[str] = param(
        [], "folders of the policy's own rollouts (critic_rollouts collect): the successful ones are cloned"
    )
    max_episodes_per_folder: int = param(0, "use at most this many expert episodes per folder (0: all)", low=0)
    out_dir: str = param("models/sim_actor", "where the trained policy is exported")
    work_dir: str = param("out/train_actor", "checkpoints, TensorBoard logs and the built base model")
    batch_size: int = param(12, "steps (observation, action) per optimizer step", low=1)
    value_coef: float = param(0.1, "weight of the value head's warm-up loss (0: head left as initialised)", low=0.0)
    gamma: float = param(0.99, "discount of the value warm-up targets", low=0.0, high=1.0)
    max_translation_mm: int = param(100, "grammar limit the policy learns (saved with it), mm", low=1, high=10000)
    max_rotation_deg: int = param(180, "grammar limit the policy learns (saved with it), deg", low=1, high=180)
    open_data: list[str] = param(
        [], "folders of rollouts with ground truth (critic_rollouts collect): held-bowl steps teach the open decision"
    )
    open_coef: float = param(1.0, "weight of the open-decision loss (used only with open_data)", low=0.0)
    open_batch_size: int = param(16, "open-decision samples per optimizer step", low=2)
    open_over_share: float = param(0.25, "share of each open-decision batch taken over the plate", low=0.01, high=0.99)
    object_coef: float = param(
        0.0,
        "weight of the auxiliary object loss: a linear head on the prompt features regresses the moved object's "
        "position (demos recorded with meta object_mm); 0: off",
        low=0.0,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, SECTION)


def run(args: argparse.Namespace) -> int:
    return run_training(
        args,
        command="vlac train actor",
        section=SECTION,
        config_cls=ActorTrainConfig,
        train=train_actor,
        exported="policy",
    )


def train_actor(config: ActorTrainConfig, *, progress: bool = True, stop_after: int | None = None):
    """Train (or resume) and export; returns the loop's result. ``stop_after`` is for tests."""
    from dataclasses import replace
    from pathlib import Path

    import torch

    from vlac_actor.policy import load_policy
    from vlac_actor.policy_settings import PolicySettings
    from vlac_actor.scoring import score_actions
    from vlac_trainer.offline.bc_data import batch_indices, bc_samples, open_batch_indices, open_samples
    from vlac_trainer.offline.train_common import (
        load_expert_records,
        load_self_records,
        load_truth_records,
        prepare_base_model,
        write_training_info,
    )
    from vlac_trainer.offline.train_loop import TrainLoop
    from vlac_trainer.online.ppo import demo_nll_loss

    work_dir = Path(config.work_dir)
    if not config.train_data and not config.self_data:
        raise ConfigError("train_data and self_data: no episode folders given")
    records = load_expert_records(config.train_data, config.max_episodes_per_folder) if config.train_data else []
    own = load_self_records(config.self_data)
    samples = [s for r in records + own for s in bc_samples(r, config.gamma)]
    opens = [s for r in load_truth_records(config.open_data) for s in open_samples(r)] if config.open_data else []
    object_scale = object_target_scale(samples, config) if config.object_coef > 0 else None
    over_plate = [s.over_plate for s in opens]
    settings = PolicySettings(  # the release prompt (bc_samples: one view, no history), these limits
        max_translation_mm=config.max_translation_mm,
        max_rotation_deg=config.max_rotation_deg,
    )
    policy = load_policy(
        prepare_base_model(config, work_dir), settings=settings, device="cpu", dtype="fp32", allow_fresh_value_head=True
    )
    # The frame size it learns on is its processor's: a base_model keeps its own, whatever image_size_px says.
    policy.settings = replace(settings, image_size_px=policy.loaded.image_size_px)
    modules = {"model": policy.loaded.model, "value_head": policy.value_head}
    if object_scale is not None:  # trained and checkpointed with the model, not exported
        torch.manual_seed(config.seed)
        modules["object_head"] = torch.nn.Linear(policy.value_head.linear.in_features, len(object_scale[0]))
    loop = TrainLoop(modules, config, work_dir)

    def step_fn(step: int):
        batch = [samples[i] for i in batch_indices(step, config.batch_size, len(samples), config.seed)]
        scores = score_actions(
            policy, [s.content for s in batch], [s.images for s in batch], [s.action for s in batch], with_grad=True
        )
        nll = demo_nll_loss(scores.token_logprobs, scores.mask)
        targets = torch.tensor([s.value_target for s in batch], dtype=torch.float32)
        value_loss = torch.nn.functional.mse_loss(scores.values, targets)
        loss = nll + config.value_coef * value_loss
        scalars = {"nll_per_number_token": float(nll.detach()), "value_mse": float(value_loss.detach())}
        if object_scale is not None:
            object_loss = object_mse(modules["object_head"], scores.prompt_hidden, batch, object_scale)
            if object_loss is not None:
                loss = loss + config.object_coef * object_loss
                scalars["object_mse"] = float(object_loss.detach())
        if opens:
            picked = [
                opens[i]
                for i in open_batch_indices(
                    step, config.open_batch_size, over_plate, config.open_over_share, config.seed
                )
            ]
            open_scores = score_actions(
                policy,
                [s.content for s in picked],
                [s.images for s in picked],
                [s.action for s in picked],
                with_grad=True,
            )
            open_nll = -open_scores.open_logprob.mean()
            loss = loss + config.open_coef * open_nll
            scalars["open_nll"] = float(open_nll.detach())
        return loss, scalars

    result = loop.run(step_fn, stop_after=stop_after, progress=progress)
    if loop.step >= config.steps:
        out_dir = Path(config.out_dir)
        policy.save(out_dir)
        extra = {"bc_samples": len(samples), "open_samples": len(opens), "open_over_plate": int(sum(over_plate))}
        if object_scale is not None:
            extra["object_samples"] = sum(s.object_mm is not None for s in samples)
            extra["object_target_mean_mm"] = [round(v, 2) for v in object_scale[0].tolist()]
            extra["object_target_std_mm"] = [round(v, 2) for v in object_scale[1].tolist()]
        extra["self_episodes"] = len(own)
        write_training_info(out_dir, config, records + own, result, extra)
    return result


def object_target_scale(samples, config: ActorTrainConfig):
    """(mean, std) of the samples' object targets, mm (the head regresses them standardised); a config whose
    demos recorded no object position is refused: the loss would silently train nothing."""
    import torch

    targets = [s.object_mm for s in samples if s.object_mm is not None]
    if not targets:
        raise ConfigError(
            f"object_coef {config.object_coef}: no sample of train_data {config.train_data} records where the object "
            "is (meta object_mm); re-collect the demos with this version (vlac collect-demos) or set object_coef: 0"
        )
    rows = torch.tensor(targets, dtype=torch.float32)
    return rows.mean(0), rows.std(0).clamp(min=1.0)


def object_mse(head, prompt_hidden, batch, scale):
    """Mean squared error of ``head``'s standardised object position on the batch's samples that record one
    (None when none does)."""
    import torch

    rows = [i for i, s in enumerate(batch) if s.object_mm is not None]
    if not rows:
        return None
    mean, std = scale
    targets = (torch.tensor([batch[i].object_mm for i in rows], dtype=torch.float32) - mean) / std
    return torch.nn.functional.mse_loss(head(prompt_hidden[rows].float()), targets)
