"""Streaming progress: the latest frame scored against the one ``skip`` frames back, with a running value.

ROS-free: the node feeds frames in as they arrive and asks, at its publishing rate, for the pair
to score. Frames arriving faster than the critic can score are not queued: only the newest pair
matters for a live reward, so older unscored frames are simply superseded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from vlac_core.types import check_image

from .trajectory import update_value


@dataclass(frozen=True)
class StreamPair:
    """A pair to score: frames ``skip`` apart; ``stamp_s`` and ``seq`` are the later frame's."""

    earlier: np.ndarray
    later: np.ndarray
    stamp_s: float
    seq: int


class ProgressStream:
    """Ring buffer of the last ``skip + 1`` frames and the running value curve (percent)."""

    def __init__(self, skip: int, value_rule: str = "release") -> None:
        if skip < 1:
            raise ValueError(f"skip must be >= 1 frame, got {skip}")
        self.skip = skip
        self.value_rule = value_rule
        update_value(0.0, 0.0, value_rule)  # validates the rule name now, not at the first score
        self._frames: deque[tuple[np.ndarray, float, int]] = deque(maxlen=skip + 1)
        self._seq = 0
        self._last_scored_seq = -1
        self.value_pct = 0.0

    def push(self, frame: np.ndarray, stamp_s: float) -> None:
        """Add the newest frame (HxWx3 uint8 RGB) captured at ``stamp_s``."""
        check_image(frame, "frame")
        self._frames.append((frame, float(stamp_s), self._seq))
        self._seq += 1

    def pending(self) -> StreamPair | None:
        """The newest pair not yet scored, or None (not enough frames yet, or nothing new)."""
        if len(self._frames) < self.skip + 1:
            return None
        later, stamp_s, seq = self._frames[-1]
        if seq == self._last_scored_seq:
            return None
        return StreamPair(earlier=self._frames[0][0], later=later, stamp_s=stamp_s, seq=seq)

    def record(self, pair: StreamPair, progress_pct: float | None) -> float:
        """Mark ``pair`` scored and update the value (unchanged for an unparsed answer); returns the value."""
        self._last_scored_seq = pair.seq
        if progress_pct is not None:
            self.value_pct = update_value(self.value_pct, progress_pct, self.value_rule)
        return self.value_pct

    def reset(self) -> None:
        """Start over (new episode or task): no frames, value 0."""
        self._frames.clear()
        self._last_scored_seq = -1
        self.value_pct = 0.0
