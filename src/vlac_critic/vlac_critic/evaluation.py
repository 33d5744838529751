"""Evaluation of the critic on whole trajectories: forward and reversed video, values, metrics.

The reversed video is scored as the release does (``reverse_eval``): each forward pair inverted
(later frame first), in forward order, with the answers negated before they enter the value curve;
in-context prompts keep the trajectory's first frame. Both directions see exactly the same frames
and go to the model in one batched call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .critic import Critic
from .metrics import negative_rate, voc, voc_f1, vroc
from .trajectory import critic_scale, pair_indices, value_curve


@dataclass
class TrajectoryEvaluation:
    """Critics, value curves and metrics of one trajectory (percent for critics and values)."""

    name: str
    n_frames: int
    pairs: list[tuple[int, int]]
    critics_pct: list[float | None]
    reversed_critics_pct: list[float | None]  # negated answers to the inverted pairs, forward order
    values_pct: np.ndarray
    reversed_values_pct: np.ndarray
    voc: float
    vroc: float
    voc_f1: float
    nr: float
    parse_failures: int
    raw_failures: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-friendly summary (NaN becomes None)."""

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(float(x), 6)

        return {
            "name": self.name,
            "frames": self.n_frames,
            "pairs": len(self.pairs),
            "voc": clean(self.voc),
            "vroc": clean(self.vroc),
            "voc_f1": clean(self.voc_f1),
            "nr": clean(self.nr),
            "parse_failures": self.parse_failures,
            "critics_pct": self.critics_pct,
            "reversed_critics_pct": self.reversed_critics_pct,
            "values_pct": [round(float(v), 6) for v in self.values_pct],
            "reversed_values_pct": [round(float(v), 6) for v in self.reversed_values_pct],
        }


def evaluate_trajectory(
    critic: Critic,
    name: str,
    task: str,
    frames: Sequence[np.ndarray],
    skip: int = 5,
    frame_skipping: bool = True,
    value_rule: str = "release",
    reference: Sequence[np.ndarray] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> TrajectoryEvaluation:
    """Score ``frames`` forward and reversed and compute VOC, VROC, VOC-F1 and NR."""
    pairs = pair_indices(len(frames), skip, frame_skipping)
    all_pairs = pairs + [(later, earlier) for earlier, later in pairs]
    earlier = [frames[a] for a, _ in all_pairs]
    later = [frames[b] for _, b in all_pairs]
    first_frame = frames[0] if reference else None
    scores = critic.progress(task, earlier, later, reference or None, first_frame, on_batch)
    critics = [s.progress_pct for s in scores]
    forward_critics = critics[: len(pairs)]
    reversed_critics = [None if c is None else -c for c in critics[len(pairs) :]]
    scale = critic_scale(skip, frame_skipping)
    values = value_curve(forward_critics, value_rule, scale)
    reversed_values = value_curve(reversed_critics, value_rule, scale)
    voc_value, vroc_value = voc(values), vroc(reversed_values)
    return TrajectoryEvaluation(
        name=name,
        n_frames=len(frames),
        pairs=pairs,
        critics_pct=forward_critics,
        reversed_critics_pct=reversed_critics,
        values_pct=values,
        reversed_values_pct=reversed_values,
        voc=voc_value,
        vroc=vroc_value,
        voc_f1=voc_f1(voc_value, vroc_value),
        nr=negative_rate(forward_critics),
        parse_failures=sum(1 for s in scores if not s.parsed),
        raw_failures=[s.raw_answer for s in scores if not s.parsed],
    )
