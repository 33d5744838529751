"""What the critic and actor trainings share: the starting model, the demo episodes, the run record.

A training starts either from a local checkpoint (``base_model``: any InternVL checkpoint in
transformers' format, e.g. a converted VLAC release) or, when that is empty, from a freshly built
tiny model whose sizes are config keys — so the shipped sim models are reproducible from the YAML
alone, with nothing downloaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from vlac_core.config import ConfigError, load_param_file, param, parse_overrides, section_config, with_overrides
from vlac_core.jsonio import write_json


@dataclass
class ModelSettings:
    """Where the weights start from; the tiny-model sizes apply only when ``base_model`` is empty (a base keeps its
    own frame size unless ``resize_base_px`` says otherwise)."""

    base_model: str = param("", "local checkpoint to fine-tune; empty: build a tiny model from the sizes below")
    image_size_px: int = param(64, "image side the model sees (train and evaluate at the same size)", low=16)
    resize_base_px: int = param(
        0,
        "fine-tune base_model at this frame size, its vision position embeddings interpolated "
        "(vlac_core.model.resize); 0: the base's own size",
        low=0,
    )
    patch_size_px: int = param(8, "vision patch side", low=2)
    vision_hidden: int = param(64, "tiny vision width", low=8)
    vision_layers: int = param(2, "tiny vision depth", low=1)
    text_hidden: int = param(128, "tiny decoder width", low=16)
    text_layers: int = param(2, "tiny decoder depth", low=1)
    model_seed: int = param(0, "seed of the tiny model's initial weights")


@dataclass
class LoopSettings:
    """Optimisation settings shared by the critic and actor trainings (config keys of both sections).

    Here rather than in train_loop so the CLI can build its parser without importing torch.
    """

    steps: int = param(3000, "optimizer steps in all", low=1)
    lr: float = param(3e-4, "peak learning rate (tiny models: 3e-4 with warm-up; see MODEL_NOTES)", low=0.0)
    warmup_steps: int = param(200, "linear warm-up steps from 0 to lr", low=0)
    min_lr_ratio: float = param(0.1, "cosine decay ends at lr * min_lr_ratio", low=0.0, high=1.0)
    weight_decay: float = param(0.01, "AdamW weight decay", low=0.0)
    grad_clip: float = param(1.0, "max gradient norm (0: no clipping)", low=0.0)
    seed: int = param(0, "seed of the weights' init, the data order and torch's RNG")
    checkpoint_every: int = param(250, "steps between resumable checkpoints", low=1)
    log_every: int = param(10, "steps between TensorBoard scalars", low=1)
    threads: int = param(0, "torch CPU threads (0: leave torch's default)", low=0)


def prepare_base_model(settings: ModelSettings, work_dir: Path) -> Path:
    """The checkpoint directory training starts from (built under ``work_dir/base`` for a tiny model)."""
    from vlac_core.model import TinyModelSpec, build_tiny_model, check_checkpoint_dir

    if settings.base_model:
        base = check_checkpoint_dir(settings.base_model)
        if not settings.resize_base_px:
            return base
        from vlac_core.model.resize import resize_checkpoint

        try:  # rebuilt on a resume: the same base gives the same weights
            return resize_checkpoint(base, work_dir / f"base_{settings.resize_base_px}px", settings.resize_base_px)
        except ValueError as error:
            raise ConfigError(f"resize_base_px: {error}") from None
    if settings.resize_base_px:
        raise ConfigError("resize_base_px: resizes a base_model; a tiny model built here takes image_size_px")
    try:
        spec = TinyModelSpec(
            image_size_px=settings.image_size_px,
            patch_size_px=settings.patch_size_px,
            vision_hidden=settings.vision_hidden,
            vision_layers=settings.vision_layers,
            text_hidden=settings.text_hidden,
            text_layers=settings.text_layers,
            seed=settings.model_seed,
        )
    except ValueError as error:
        raise ConfigError(f"tiny model sizes: {error}") from None
    return build_tiny_model(work_dir / "base", spec)


def load_expert_records(folders: Sequence[str], max_per_folder: int = 0) -> list:
    """Successful expert episodes and DAgger episodes (``piper_driver.sim.demo_format``), in name order.

    A DAgger episode (``critic_rollouts`` variant ``dagger``) is kept whatever its outcome: its
    labels are the expert's, and the failures are where they teach the most.
    """
    from piper_driver.sim.demo_format import iter_episodes

    if not folders:
        raise ConfigError("train_data: no episode folders given")
    records = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"train_data: {folder!r} is not a directory (collect with `vlac collect-demos`)")
        found = [
            r
            for r in iter_episodes(folder)
            if r.front_images.shape[0] > 0 and ((r.variant == "expert" and r.success) or r.variant == "dagger")
        ]
        if not found:
            raise ConfigError(f"train_data: {folder!r} holds no successful expert or DAgger episode with images")
        records.extend(found[:max_per_folder] if max_per_folder else found)
    return records


def load_truth_records(folders: Sequence[str]) -> list:
    """Every episode of ``folders`` recorded with the simulator's ground truth (``critic_rollouts collect``: per-frame
    phases in its header), in name order; a folder without one is refused, naming it."""
    from piper_driver.sim.demo_format import iter_episodes

    records = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"open_data: {folder!r} is not a directory (collect with critic_rollouts collect)")
        found = [r for r in iter_episodes(folder) if r.front_images.shape[0] > 0 and "phase" in r.meta]
        if not found:
            raise ConfigError(f"open_data: {folder!r} holds no episode with ground-truth phases and images")
        records.extend(found)
    return records


def load_self_records(folders: Sequence[str]) -> list:
    """The policy's own successful rollouts (``critic_rollouts collect --variants policy``), each cut at the step
    it first succeeds, in name order: filtered self-imitation clones what the sampled policy did when it worked.

    Success is the simulator's ground truth after each step (``success_steps``), so an episode that succeeded and
    was undone still teaches the steps that got there, and nothing after. A folder without one is refused.
    """
    from piper_driver.sim.demo_format import iter_episodes

    records = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"self_data: {folder!r} is not a directory (collect with critic_rollouts collect)")
        found = [
            until_first_success(r)
            for r in iter_episodes(folder, variant="policy")
            if r.front_images.shape[0] > 0 and r.success_steps[1:].any()
        ]
        if not found:
            raise ConfigError(f"self_data: {folder!r} holds no successful 'policy' rollout with images")
        records.extend(found)
    return records


def until_first_success(record):
    """``record`` up to the observation after the first step whose ground truth is success."""
    steps = int(np.flatnonzero(record.success_steps[1:])[0]) + 1
    frames = slice(0, steps + 1)
    return replace(
        record,
        front_images=record.front_images[frames],
        wrist_images=None if record.wrist_images is None else record.wrist_images[frames],
        end_poses=record.end_poses[frames],
        gripper_mm=record.gripper_mm[frames],
        joints_rad=record.joints_rad[frames],
        stamps_s=record.stamps_s[frames],
        actions=record.actions[:steps],
        success=True,
        success_steps=record.success_steps[frames],
        meta={k: _cut(v, record.length, steps) for k, v in record.meta.items()},
    )


def _cut(value, length: int, steps: int):
    """A per-frame (length + 1) or per-step (length) list of the header cut to ``steps``; anything else as is."""
    if isinstance(value, list) and len(value) in (length, length + 1):
        return value[: steps + len(value) - length]
    return value


def write_training_info(out_dir: Path, config, records: Sequence, result, extra: dict | None = None) -> Path:
    """``training_info.json`` beside the exported model: config, data, steps and time — how it was made."""
    info = {
        "config": asdict(config),
        "episodes": len(records),
        "tasks": sorted({r.text for r in records}),
        "seeds": sorted({int(r.seed) for r in records}),
        "steps": result.steps_done,
        "resumed_from_step": result.resumed_from,
        "seconds_this_run": round(result.seconds, 1),
        "final_scalars": {k: round(v, 6) for k, v in result.last_scalars.items()},
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    path = out_dir / "training_info.json"
    return write_json(path, info, indent=1)


def add_train_arguments(parser: argparse.ArgumentParser, section: str) -> None:
    """The arguments every `vlac train ...` command takes."""
    parser.add_argument("--config", required=True, help=f"YAML parameter file with a '{section}' section")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help=f"override one key of the '{section}' section (a YAML value; repeatable), e.g. --set seed=1",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_training(
    args: argparse.Namespace, *, command: str, section: str, config_cls: type, train: Callable, exported: str
) -> int:
    """Load the config section, train (or resume), and say where the model went; 2 on a config error."""
    try:
        sections = with_overrides(load_param_file(args.config), section, parse_overrides(args.set))
        config = section_config(sections, section, config_cls, where=f"{args.config} [{section}]")
        result = train(config, progress=not args.no_progress)
    except ConfigError as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    steps = f"{result.steps_done} steps ({result.seconds:.0f} s this run)"
    print(f"{exported} exported to {Path(config.out_dir)} after {steps}")
    return 0
