"""A small supervised training loop that resumes exactly: AdamW, warm-up + cosine, tqdm, TensorBoard.

Plain torch rather than transformers' ``Trainer``: the critic and the actor losses are not a
``model(**batch).loss`` (the actor's goes through ``vlac_actor.scoring`` and a value head outside the
model), the samples are drawn on the fly rather than from a ``Dataset``, and the resume contract is
stricter than ``Trainer``'s (bit-identical to an uninterrupted run, checkpoints in the stack's
atomic safetensors store, no pickle — ``Trainer`` saves optimizer and RNG state with ``torch.save``).

Resuming: a checkpoint holds every module's weights, the optimizer's tensors and metadata, torch's
CPU RNG state and the step. The caller's ``step_fn(step)`` must draw its batch as a pure function of
``(seed, step)`` — the data order position *is* the step — so a run killed after step k and resumed
from its last checkpoint replays the very batches an uninterrupted run sees.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vlac_core.config import ConfigError
from vlac_trainer.checkpoint_store import load_checkpoint, save_checkpoint
from vlac_trainer.offline.train_common import LoopSettings
from vlac_trainer.training_state import optimizer_state_from_tensors, optimizer_state_to_tensors

LOOP_FORMAT = "vlac_trainer.offline.train_loop/1"

#: One training step: (loss to backpropagate, scalars to log).
StepFn = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


#: Settings that say where files go or how fast it runs, not what is trained: they may change on resume.
_NOT_THE_RUN = {"threads", "work_dir", "out_dir"}


def _jsonable(values: dict) -> dict:
    """Settings as JSON stores them (tuples become lists), so saved and current compare equal."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def lr_at(step: int, settings: LoopSettings) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to min_lr_ratio."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    span = max(1, settings.steps - settings.warmup_steps)
    progress = min(1.0, (step - settings.warmup_steps) / span)
    floor = settings.min_lr_ratio
    return settings.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


@dataclass
class LoopResult:
    steps_done: int
    resumed_from: int  # step the run started at (0: fresh)
    last_scalars: dict[str, float]
    seconds: float


class TrainLoop:
    """Trains ``modules`` (name -> module) with ``step_fn``; checkpoints under ``work_dir/checkpoints``."""

    def __init__(self, modules: dict[str, torch.nn.Module], settings: LoopSettings, work_dir: str | Path) -> None:
        if not modules:
            raise ValueError("modules: nothing to train")
        self.modules = modules
        self.settings = settings
        self.work_dir = Path(work_dir)
        self.checkpoint_dir = self.work_dir / "checkpoints"
        self.params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=settings.lr, weight_decay=settings.weight_decay)
        self.step = 0

    # --- checkpoints ---------------------------------------------------------------------------
    def save(self, extra_meta: dict | None = None) -> Path:
        arrays: dict[str, torch.Tensor] = {}
        for name, module in self.modules.items():
            for key, tensor in module.state_dict().items():
                arrays[f"module/{name}/{key}"] = tensor.detach().clone()
        optim_tensors, optim_meta = optimizer_state_to_tensors(self.optimizer.state_dict(), "optim")
        arrays.update(optim_tensors)
        arrays["rng/torch_cpu"] = torch.get_rng_state()
        meta = {
            "format": LOOP_FORMAT,
            "step": self.step,
            "optimizer": optim_meta,
            "settings": _jsonable(asdict(self.settings)),
            "modules": sorted(self.modules),
            **(extra_meta or {}),
        }
        return save_checkpoint(self.checkpoint_dir, arrays, meta, keep=2)

    def try_resume(self) -> int:
        """Restore the latest checkpoint if there is one; returns the step to continue from."""
        loaded = load_checkpoint(self.checkpoint_dir) if self.checkpoint_dir.is_dir() else None
        if loaded is None:
            return 0
        tensors, meta = loaded
        if meta.get("format") != LOOP_FORMAT:
            raise ValueError(f"{self.checkpoint_dir}: format {meta.get('format')!r}, expected {LOOP_FORMAT!r}")
        if sorted(meta["modules"]) != sorted(self.modules):
            raise ValueError(
                f"{self.checkpoint_dir}: holds modules {meta['modules']}, this run trains {sorted(self.modules)}"
            )
        # A resumed run must be the run that was interrupted: other settings would silently mix two runs.
        saved, now = meta["settings"], _jsonable(asdict(self.settings))
        changed = sorted(k for k in (set(saved) | set(now)) - _NOT_THE_RUN if saved.get(k) != now.get(k))
        if changed:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
            raise ConfigError(
                f"{self.checkpoint_dir} was written by a run with other settings ({details}); "
                "restore them or start afresh in another work_dir"
            )
        for name, module in self.modules.items():
            prefix = f"module/{name}/"
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            module.load_state_dict(state, strict=True)
        self.optimizer.load_state_dict(optimizer_state_from_tensors(tensors, meta["optimizer"]))
        torch.set_rng_state(tensors["rng/torch_cpu"])
        self.step = int(meta["step"])
        return self.step

    # --- training ------------------------------------------------------------------------------
    def run(
        self, step_fn: StepFn, *, stop_after: int | None = None, progress: bool = True, tensorboard: bool = True
    ) -> LoopResult:
        """Train from the last checkpoint (or from scratch) to ``settings.steps``.

        ``stop_after`` ends the run after that many steps of this call (tests use it to simulate a
        kill); the last checkpoint is whatever ``checkpoint_every`` produced, as after a real kill.
        """
        from tqdm import tqdm

        settings = self.settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        start = self.try_resume()
        if start == 0:
            torch.manual_seed(settings.seed)
        writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.work_dir / "tensorboard"), purge_step=start)
        for module in self.modules.values():
            module.train()
        scalars: dict[str, float] = {}
        began = time.perf_counter()
        end = settings.steps if stop_after is None else min(settings.steps, start + stop_after)
        bar = tqdm(total=settings.steps, initial=start, disable=not progress, file=sys.stderr, unit="step")
        try:
            while self.step < end:
                lr = lr_at(self.step, settings)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.optimizer.zero_grad(set_to_none=True)
                loss, scalars = step_fn(self.step)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"step {self.step}: loss is {float(loss)}; stopping before it spreads")
                loss.backward()
                if settings.grad_clip > 0:
                    scalars["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, settings.grad_clip))
                self.optimizer.step()
                scalars = {"loss": float(loss.detach()), "lr": lr, **scalars}
                self.step += 1
                if writer is not None and (self.step % settings.log_every == 0 or self.step == settings.steps):
                    for key, value in scalars.items():
                        writer.add_scalar(f"train/{key}", value, self.step)
                if self.step % settings.checkpoint_every == 0 or self.step == settings.steps:
                    self.save()
                bar.update(1)
                bar.set_postfix(loss=f"{scalars['loss']:.4f}")
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        for module in self.modules.values():
            module.eval()
        return LoopResult(self.step, start, scalars, time.perf_counter() - began)
