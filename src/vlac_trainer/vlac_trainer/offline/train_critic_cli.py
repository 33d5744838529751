"""`vlac train critic --config config/train_critic.yaml`: supervised fine-tuning of the VLAC critic.

Samples come from ``critic_data`` (the paper's recipe) drawn from successful expert episodes, plus,
when ``rollout_data`` names folders of ``critic_rollouts`` episodes, truth-labelled policy rollouts and
near-goal failures (issue 11) with their own unit shares; the loss is the answer tokens'
cross-entropy (``sft``); the loop (``train_loop``) resumes from ``work_dir/checkpoints`` when it
finds one. The result is exported to ``out_dir`` as a plain
checkpoint that ``vlac critic eval`` and the critic node load.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from vlac_core.config import param
from vlac_trainer.offline.train_common import LoopSettings, ModelSettings, add_train_arguments, run_training

SECTION = "train_critic"


@dataclass
class CriticTrainConfig(LoopSettings, ModelSettings):
    """Section ``train_critic`` of the config file."""

    train_data: list[str] = param([], "folders of collect-demos episodes (npz/ or the folder above it)")
    max_episodes_per_folder: int = param(0, "use at most this many expert episodes per folder (0: all)", low=0)
    out_dir: str = param("models/sim_critic", "where the trained critic is exported")
    work_dir: str = param("out/train_critic", "checkpoints, TensorBoard logs and the built base model")
    batch_units: int = param(5, "units per step (a unit: a 4-sample mini-group, a done pair or 1 sample)", low=1)
    progress_share: float = param(0.7, "relative weight of progress mini-groups", low=0.0)
    in_context_share: float = param(0.1, "relative weight of in-context samples", low=0.0)
    done_share: float = param(0.15, "relative weight of balanced done pairs", low=0.0)
    task_description_share: float = param(0.05, "relative weight of task-description samples", low=0.0)
    mismatch_prob: float = param(
        0.05, "probability a progress sample gets another task's text (label 0)", low=0.0, high=1.0
    )
    n_reference: int = param(6, "reference frames of in-context samples", low=2, high=11)
    distractor_tasks: list[str] = param([], "extra task texts a mismatch may swap in")
    rollout_data: list[str] = param(
        [], "folders of critic_rollouts episodes (policy rollouts, near-goal failures) labelled by ground truth"
    )
    max_rollouts_per_folder: int = param(0, "use at most this many labelled episodes per folder (0: all)", low=0)
    rollout_progress_share: float = param(0.0, "relative weight of truth-labelled progress mini-groups", low=0.0)
    rollout_done_share: float = param(0.0, "relative weight of truth-labelled balanced done pairs", low=0.0)
    near_goal_negative_prob: float = param(
        0.5, "share of truth-labelled 'not done' frames drawn from near-goal phases", low=0.0, high=1.0
    )
    set_down_negative_prob: float = param(
        0.0,
        "share of truth-labelled 'not done' frames drawn from those where the object was set down after the arm moved "
        "it, not a success (a near miss; the rest as near_goal_negative_prob says)",
        low=0.0,
        high=1.0,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, SECTION)


def run(args: argparse.Namespace) -> int:
    return run_training(
        args,
        command="vlac train critic",
        section=SECTION,
        config_cls=CriticTrainConfig,
        train=train_critic,
        exported="critic",
    )


def train_critic(config: CriticTrainConfig, *, progress: bool = True, stop_after: int | None = None):
    """Train (or resume) and export; returns the loop's result. ``stop_after`` is for tests."""
    from pathlib import Path

    from vlac_core.config import ConfigError
    from vlac_core.model import load_model
    from vlac_trainer.offline.critic_data import CriticDataMix, CriticSampler, Trajectory
    from vlac_trainer.offline.critic_rollouts import load_labelled
    from vlac_trainer.offline.sft import answer_batch, answer_loss
    from vlac_trainer.offline.train_common import load_expert_records, prepare_base_model, write_training_info
    from vlac_trainer.offline.train_loop import TrainLoop

    work_dir = Path(config.work_dir)
    records = load_expert_records(config.train_data, config.max_episodes_per_folder)
    trajectories = [Trajectory(r.text, r.front_images, f"{r.task}_s{r.seed}") for r in records]
    try:
        labelled = load_labelled(config.rollout_data, config.max_rollouts_per_folder) if config.rollout_data else []
    except ValueError as error:
        raise ConfigError(f"rollout_data: {error}") from None
    mix = CriticDataMix(
        progress_share=config.progress_share,
        in_context_share=config.in_context_share,
        done_share=config.done_share,
        task_description_share=config.task_description_share,
        mismatch_prob=config.mismatch_prob,
        n_reference=config.n_reference,
        rollout_progress_share=config.rollout_progress_share,
        rollout_done_share=config.rollout_done_share,
        near_goal_negative_prob=config.near_goal_negative_prob,
        set_down_negative_prob=config.set_down_negative_prob,
    )
    try:
        sampler = CriticSampler(
            trajectories, mix, seed=config.seed, distractor_tasks=config.distractor_tasks, labelled=labelled
        )
    except ValueError as error:  # CriticDataError: shares without data, data without labels
        raise ConfigError(str(error)) from None
    loaded = load_model(prepare_base_model(config, work_dir), device="cpu", dtype="fp32")
    loop = TrainLoop({"model": loaded.model}, config, work_dir)

    def step_fn(step: int):
        # units [step * batch_units, (step + 1) * batch_units): the data position is the step itself
        samples = [s for k in range(config.batch_units) for s in sampler.unit(step * config.batch_units + k)]
        # in-context samples are ~2x longer: a pass of their own keeps the short ones unpadded
        groups = [[s for s in samples if len(s.images) > 2], [s for s in samples if len(s.images) <= 2]]
        total, tokens, correct = 0.0, 0, 0.0
        for group in (g for g in groups if g):
            batch = answer_batch(
                loaded, [s.content for s in group], [s.images for s in group], [s.answer for s in group]
            )
            loss, scalars = answer_loss(loaded.model, batch)
            total = total + loss * batch.answer_tokens
            tokens += batch.answer_tokens
            correct += scalars["token_accuracy"] * batch.answer_tokens
        return total / tokens, {"token_accuracy": correct / tokens, "samples": float(len(samples))}

    result = loop.run(step_fn, stop_after=stop_after, progress=progress)
    if loop.step >= config.steps:
        out_dir = Path(config.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        loaded.model.save_pretrained(out_dir)
        loaded.processor.save_pretrained(out_dir)
        write_training_info(
            out_dir, config, records, result, extra={"labelled_episodes": len(labelled)} if labelled else None
        )
    return result
