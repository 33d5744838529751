"""Per-update PPO diagnostics, one JSON line and one TensorBoard step per update.

What is written is what told issue 11's diagnosis apart: the update's KL to the pre-update policy
and its clip fraction (is the step too big?), entropy per sampled token (is exploration collapsing?),
explained variance and value loss (does V(s) know the returns?), the policy and value terms' gradient
norms on the shared trunk (which term drives the features?), advantage and return statistics,
sampled vs recomputed log-probs (how stale is the data?) and the share of collected episodes
trained on. Read the JSONL with pandas or ``jq``; point ``tensorboard --logdir`` at the folder.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from vlac_core.jsonio import append_jsonl, read_jsonl, strict
from vlac_trainer.online.ppo_trainer import UpdateStats

JSONL_NAME = "updates.jsonl"
TENSORBOARD_DIR = "tensorboard"


#: What the trainer node publishes per update (``trainer/<name>``, std_msgs/Float64) for rqt_plot: topic name ->
#: UpdateStats field. The few a person watches during a session (is the step too big, is exploration collapsing,
#: is the policy drifting off the prior, do the lessons agree); the full record is in updates.jsonl.
TOPIC_STATS = {
    "loss": "loss",
    "pg_loss": "pg_loss",
    "value_loss": "v_loss",
    "entropy": "entropy",
    "approx_kl": "approx_kl",
    "clipfrac": "clipfrac",
    "explained_variance": "explained_variance",
    "grad_norm": "grad_norm",
    "return_mean": "return_mean",
    "prior_kl": "prior_kl",
    "lesson_norm": "lesson_norm",
    "lesson_cos_to_past": "lesson_cos_to_past",
    "lesson_agreement": "lesson_agreement",
    "policy_version": "policy_version",
}


def topic_values(stats: UpdateStats) -> dict[str, float]:
    """The update's figures to publish, by topic name: only those defined (a diagnostic that is off, None, or
    undefined for this update, NaN, is not published, so a plot shows no made-up zero)."""
    values = {}
    for topic, field_name in TOPIC_STATS.items():
        value = getattr(stats, field_name)
        if value is not None and not math.isnan(value):
            values[topic] = float(value)
    return values


def update_record(stats: UpdateStats, **extra: Any) -> dict[str, Any]:
    """``stats`` as a JSON-able dict (NaN as None) with ``extra`` counters merged in."""
    return strict({**dataclasses.asdict(stats), **extra})


class UpdateLog:
    """Appends each update's record to ``<folder>/updates.jsonl`` and writes its numbers to TensorBoard."""

    def __init__(self, folder: str | Path, tensorboard: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / JSONL_NAME
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder / TENSORBOARD_DIR))

    def write(self, stats: UpdateStats, **extra: Any) -> dict[str, Any]:
        record = update_record(stats, **extra)
        append_jsonl(self.path, record, fsync=False)
        if self._writer is not None:
            step = int(stats.policy_version)
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "policy_version":
                    self._writer.add_scalar(f"ppo/{key}", value, step)
            self._writer.flush()
        return record

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_update_log(folder: str | Path) -> list[dict[str, Any]]:
    """The records of ``<folder>/updates.jsonl`` in order (empty when there is none)."""
    return read_jsonl(Path(folder) / JSONL_NAME)
