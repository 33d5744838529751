"""Trajectory metrics of the VLAC paper: VOC, VROC, VOC-F1 and NR.

- VOC: Spearman rank correlation between the value curve and the time index (ties get average
  ranks); 1 for a value that rises with time.
- VROC: the same on the reversed video, as the release computes it (``reverse_eval``): every pair
  is scored inverted (later frame first), the answers are negated and the value curve is built from
  them in forward time order. A good critic answers the inverted pairs negatively, so the negated
  critics rise and VROC is 1, which makes VOC-F1 meaningful.
- VOC-F1: harmonic mean ``2 VOC VROC / (VOC + VROC)``.
- NR: share of (parsed) critic outputs below 0 on the forward video.

A curve with no rank information (constant, or fewer than 2 points) has no correlation: NaN, which
the table prints as ``nan`` rather than a made-up 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr


def spearman_with_time(values: Sequence[float]) -> float:
    """Spearman correlation of ``values`` with 0, 1, 2, ...; NaN when undefined."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or np.all(values == values[0]):
        return math.nan
    return float(spearmanr(np.arange(values.size), values).statistic)


def voc(values: Sequence[float]) -> float:
    """Value-order correlation of a forward value curve."""
    return spearman_with_time(values)


def vroc(reversed_values: Sequence[float]) -> float:
    """Value-reverse-order correlation of the value curve built from the negated inverted-pair critics."""
    return spearman_with_time(reversed_values)


def voc_f1(voc_value: float, vroc_value: float) -> float:
    """Harmonic mean of VOC and VROC; NaN when either is NaN or they sum to 0."""
    total = voc_value + vroc_value
    if math.isnan(total) or total == 0:
        return math.nan
    return 2.0 * voc_value * vroc_value / total


def negative_rate(critics_pct: Sequence[float | None]) -> float:
    """Share of parsed critics below 0; NaN when none was parsed."""
    parsed = [c for c in critics_pct if c is not None]
    if not parsed:
        return math.nan
    return sum(1 for c in parsed if c < 0) / len(parsed)
