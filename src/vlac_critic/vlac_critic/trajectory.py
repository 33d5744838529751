"""Frame pairing and value curves of a trajectory (paper eq. 7-9, release evaluation code).

A trajectory's frames are paired with a step ``skip`` (release default: 5 frames at 5 fps):

- with frame skipping, the video is sampled every ``skip`` frames (``frames[::skip]``, so trailing
  frames past the last multiple of ``skip`` are dropped) and consecutive samples are paired;
- without frame skipping, every frame ``i >= skip`` is paired with ``i - skip`` and each critic is
  divided by ``skip`` before it enters the value curve (the pairs overlap, each covers ``skip`` steps).

The value curve starts at 0 % and takes one update per critic ``c`` (percent):

- ``"release"``: ``v <- v + (100 - v) * c / 100`` for every ``c`` — the release's default, negative
  ``c`` included (a negative critic then removes a share of the *remaining* way, so the value can
  drop below 0 and a +c/-c pair does not cancel);
- ``"signed"``: the release rule for ``c >= 0`` and ``v <- v + v * c / 100`` for ``c < 0`` — a
  negative critic removes that share of the progress made so far, which keeps ``v`` in [0, 100].

An unparsable answer (``None``) leaves the value unchanged: no reward is invented for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

VALUE_RULES = ("release", "signed")


def pair_indices(n_frames: int, skip: int, frame_skipping: bool = True) -> list[tuple[int, int]]:
    """(earlier, later) frame indices of the pairs a trajectory of ``n_frames`` is scored on."""
    if skip < 1:
        raise ValueError(f"skip must be >= 1 frame, got {skip}")
    if n_frames < skip + 1:
        raise ValueError(f"a trajectory of {n_frames} frames has no pair at skip {skip}; need >= {skip + 1} frames")
    if frame_skipping:
        sampled = list(range(0, n_frames, skip))
        return list(itertools.pairwise(sampled))
    return [(i - skip, i) for i in range(skip, n_frames)]


def critic_scale(skip: int, frame_skipping: bool) -> float:
    """Factor applied to each critic before the value update (1/skip without frame skipping)."""
    return 1.0 if frame_skipping else 1.0 / skip


def update_value(value_pct: float, critic_pct: float, rule: str = "release") -> float:
    """One value-curve step (see module docstring for the two rules)."""
    if rule not in VALUE_RULES:
        raise ValueError(f"value rule {rule!r}: expected one of {VALUE_RULES}")
    if rule == "signed" and critic_pct < 0:
        return value_pct + value_pct * critic_pct / 100.0
    return value_pct + (100.0 - value_pct) * critic_pct / 100.0


def value_curve(critics_pct: Sequence[float | None], rule: str = "release", scale: float = 1.0) -> np.ndarray:
    """Value (percent) before the first pair and after each pair: ``len(critics_pct) + 1`` values from 0."""
    values = [0.0]
    for critic in critics_pct:
        values.append(values[-1] if critic is None else update_value(values[-1], float(critic) * scale, rule))
    return np.asarray(values, dtype=np.float64)
