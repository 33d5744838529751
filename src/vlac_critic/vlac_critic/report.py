"""Reporting trajectory evaluations: a table in the paper's Table 1 layout and PNG curve plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .evaluation import TrajectoryEvaluation

METRIC_COLUMNS = ("VOC", "VROC", "VOC-F1", "NR")
_METRIC_FIELDS = ("voc", "vroc", "voc_f1", "nr")


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def mean_metrics(results: Sequence[TrajectoryEvaluation]) -> dict[str, float]:
    """The Mean row: each metric averaged over the trajectories where it is defined (NaN left out).

    VOC-F1 is the mean of the per-trajectory VOC-F1 values (each in [-1, 1], see
    ``metrics.voc_f1``), not the VOC-F1 of the mean VOC and VROC: every trajectory weighs the same,
    as in the other columns. NaN when no trajectory defines the metric.
    """
    return {name: _mean([getattr(r, name) for r in results]) for name in _METRIC_FIELDS}


def format_table(results: Sequence[TrajectoryEvaluation]) -> str:
    """Rows per trajectory and the Mean row of :func:`mean_metrics`; columns VOC, VROC, VOC-F1, NR."""
    name_width = max([len("Trajectory"), len("Mean"), *(len(r.name) for r in results)])
    header = f"{'Trajectory':<{name_width}}  {'Frames':>6}  {'Pairs':>5}  " + "  ".join(
        f"{c:>6}" for c in METRIC_COLUMNS
    )
    header += f"  {'Unparsed':>8}"
    lines = [header, "-" * len(header)]
    for r in results:
        metrics = "  ".join(f"{_fmt(v):>6}" for v in (r.voc, r.vroc, r.voc_f1, r.nr))
        lines.append(f"{r.name:<{name_width}}  {r.n_frames:>6}  {len(r.pairs):>5}  {metrics}  {r.parse_failures:>8}")
    lines.append("-" * len(header))
    means = list(mean_metrics(results).values())
    total_unparsed = sum(r.parse_failures for r in results)
    metrics = "  ".join(f"{_fmt(v):>6}" for v in means)
    lines.append(f"{'Mean':<{name_width}}  {'':>6}  {'':>5}  {metrics}  {total_unparsed:>8}")
    return "\n".join(lines)


def plot_curves(result: TrajectoryEvaluation, out_path: Path) -> Path:
    """Value curves (forward, reversed) and critic curves of one trajectory, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def as_float(critics):
        return [math.nan if c is None else c for c in critics]

    fig, (ax_value, ax_critic) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    steps = np.arange(len(result.values_pct))
    ax_value.plot(steps, result.values_pct, marker="o", label=f"forward (VOC {_fmt(result.voc)})")
    ax_value.plot(
        steps, result.reversed_values_pct, marker="x", label=f"inverted pairs, negated (VROC {_fmt(result.vroc)})"
    )
    ax_value.set_ylabel("value (%)")
    ax_value.legend()
    ax_value.set_title(result.name)
    pair_steps = np.arange(1, len(result.critics_pct) + 1)
    ax_critic.plot(pair_steps, as_float(result.critics_pct), marker="o", label="forward critic")
    ax_critic.plot(pair_steps, as_float(result.reversed_critics_pct), marker="x", label="inverted pairs, negated")
    ax_critic.axhline(0.0, color="grey", linewidth=0.8)
    ax_critic.set_xlabel("pair")
    ax_critic.set_ylabel("progress (%)")
    ax_critic.legend()
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=80)
    plt.close(fig)
    return out_path
