"""Trajectory metrics of the VLAC paper: VOC, VROC, VOC-F1 and NR.

- VOC: Spearman rank correlation between the value curve and the time index (ties get average
  ranks); 1 for a value that rises with time.
- VROC: the same on the reversed video, as the release computes it (``reverse_eval``): every pair
  is scored inverted (later frame first), the answers are negated and the value curve is built from
  them in forward time order. A good critic answers the inverted pairs negatively, so the negated
  critics rise and VROC is 1, which makes VOC-F1 meaningful.
- VOC-F1: the paper's harmonic mean ``2 VOC VROC / (VOC + VROC)`` where it is meaningful, so the
  result always lies in [-1, 1] (see :func:`voc_f1` for the rule on negative correlations).
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
    """VOC-F1 in [-1, 1]; NaN only when VOC or VROC is NaN.

    Rule: when both are >= 0, the paper's harmonic mean ``2 VOC VROC / (VOC + VROC)`` (0 when both
    are 0), which lies between them. When either is negative, ``min(VOC, VROC)``: a critic that
    orders one direction wrongly scores as its worse direction. Why: the plain harmonic mean of two
    correlations of opposite sign is unbounded (VOC 0.9, VROC -0.5 gives -2.25) and was NaN at
    VOC = -VROC; this rule is continuous, non-decreasing in each argument, and equal to the paper's
    value wherever the paper reports one (both correlations non-negative).
    """
    if math.isnan(voc_value) or math.isnan(vroc_value):
        return math.nan
    if voc_value >= 0 and vroc_value >= 0:
        total = voc_value + vroc_value
        return 0.0 if total == 0 else 2.0 * voc_value * vroc_value / total
    return min(voc_value, vroc_value)


def negative_rate(critics_pct: Sequence[float | None]) -> float:
    """Share of parsed critics below 0; NaN when none was parsed."""
    parsed = [c for c in critics_pct if c is not None]
    if not parsed:
        return math.nan
    return sum(1 for c in parsed if c < 0) / len(parsed)
