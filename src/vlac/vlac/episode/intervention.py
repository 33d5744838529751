"""Intervention rate: how much the operator had to help, over the last ``window`` episodes.

Two rates, both over the window: the share of steps that were teleoperated, and the share of
episodes with at least one teleoperated step. Aborted episodes are left out (they say nothing
about the policy). Falling rates are the human-in-the-loop curve the paper reports.
"""

from __future__ import annotations

from collections import deque

from vlac_core.types import Episode, Termination


class InterventionTracker:
    def __init__(self, window: int = 50) -> None:
        if window < 1:
            raise ValueError(f"window={window}: expected at least 1 episode")
        self._recent: deque[tuple[int, int]] = deque(maxlen=window)  # (human steps, steps) per episode
        self.total_episodes = 0
        self.total_interventions = 0

    def record(self, episode: Episode) -> None:
        if episode.termination is Termination.ABORTED or episode.length == 0:
            return
        self._recent.append((episode.human_steps, episode.length))
        self.total_episodes += 1
        self.total_interventions += int(episode.human_steps > 0)

    @property
    def step_rate(self) -> float | None:
        """Teleoperated steps / all steps in the window; None before any episode."""
        steps = sum(n for _, n in self._recent)
        return sum(h for h, _ in self._recent) / steps if steps else None

    @property
    def episode_rate(self) -> float | None:
        """Episodes with any teleoperated step / episodes in the window; None before any episode."""
        return sum(h > 0 for h, _ in self._recent) / len(self._recent) if self._recent else None
