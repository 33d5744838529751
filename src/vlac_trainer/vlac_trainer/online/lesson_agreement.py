"""Do the updates' lessons agree? A running estimate, one figure per update.

An update's lesson is the first-order direction of its policy term at the pre-update policy:
g = grad_theta sum_s A_s log pi(a_s | s) over the batch's steps, with the advantages the update uses
(``PPOTrainer`` computes it when ``trainer_node.lesson_agreement`` is on; the KL anchor and imitation terms
are left out: this is what the reward teaches). Why log it: docs/rl_experiments.md, "Do the scenes' lessons agree?"
found the lessons of different scenes share only a small direction, measured at the prior after the run; this
measures it on-policy, during the run. For unit lessons u_i made of a shared part (squared length rho) and
independent parts, the mean pairwise cosine is rho, and after n lessons the shared displacement stands
at sqrt(n rho / (1 - rho)) times the noise's, however the episodes were batched into updates. That is not the
whole story ("The prediction tested"): the noise's own walk away from the prior costs success, so read these
figures beside the drift (KL) per update.

This keeps only the running sum U of the unit lessons (one parameter-sized float32 buffer, like one of
Adam's moments), from which, after each lesson:

- ``cos_to_past``: cos(u_n, U_{n-1}), how well this update agrees with everything before it;
- ``agreement``: the mean pairwise cosine of all lessons so far, (|U_n|^2 - n) / (n (n - 1)), the rho above;
- ``shared_to_noise``: sqrt(n rho / (1 - rho)) (0 when rho <= 0): about 3 is where a run's shared lesson
  stands clear of its noise.

The lessons are taken at each update's own policy, so over a long run they mix policies (the estimate is
cumulative, not windowed). A lesson of zero (a group whose episodes all did alike) teaches nothing and is
not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LessonFigures:
    """What one update's lesson added: its norm and the running figures (NaN where undefined)."""

    norm: float  # |g| before scaling to unit length (0: no lesson, not counted)
    cos_to_past: float  # cos(u_n, sum of the earlier unit lessons); NaN for the first lesson
    agreement: float  # mean pairwise cosine of the lessons so far; NaN with fewer than 2
    shared_to_noise: float  # sqrt(n rho / (1 - rho)), 0 for rho <= 0; NaN with fewer than 2
    lessons: int  # lessons counted so far


class LessonAgreement:
    """The running sum of unit lessons and their count; ``add`` each update's lesson in turn."""

    def __init__(self) -> None:
        self.unit_sum: torch.Tensor | None = None
        self.count = 0

    def add(self, lesson: torch.Tensor) -> LessonFigures:
        """Count ``lesson`` (flat, any scale) and return the figures after it."""
        if lesson.dim() != 1:
            raise ValueError(f"LessonAgreement.add: a flat lesson vector expected, got shape {tuple(lesson.shape)}")
        if not bool(torch.isfinite(lesson).all()):
            raise ValueError("LessonAgreement.add: the lesson has non-finite entries (NaN or inf)")
        lesson = lesson.detach().float()
        norm = float(lesson.norm())
        if self.unit_sum is not None and self.unit_sum.shape != lesson.shape:
            raise ValueError(
                f"LessonAgreement.add: a lesson of {lesson.numel()} entries where the earlier ones had "
                f"{self.unit_sum.numel()} (another model?)"
            )
        if norm == 0.0:
            return LessonFigures(0.0, math.nan, *self._running())
        unit = lesson / norm
        cos_to_past = math.nan
        if self.unit_sum is None:
            self.unit_sum = torch.zeros_like(unit)
        else:
            past = float(self.unit_sum.norm())
            if past > 0.0:
                cos_to_past = float(unit @ self.unit_sum) / past
        self.unit_sum += unit
        self.count += 1
        return LessonFigures(norm, cos_to_past, *self._running())

    def _running(self) -> tuple[float, float, int]:
        """(agreement, shared_to_noise, lessons) from the running sum."""
        n = self.count
        if n < 2 or self.unit_sum is None:
            return math.nan, math.nan, n
        rho = (float(self.unit_sum.norm()) ** 2 - n) / (n * (n - 1))
        rho = min(rho, 1.0)  # float rounding on identical lessons
        shared = 0.0 if rho <= 0.0 else (math.inf if rho >= 1.0 else math.sqrt(n * rho / (1.0 - rho)))
        return rho, shared, n

    # -- state, for the update child and the trainer checkpoint -----------------------------------

    def state(self) -> dict:
        """The running sum (None before any lesson) and the count."""
        return {"unit_sum": self.unit_sum, "count": self.count}

    def load_state(self, state: dict) -> None:
        unit_sum, count = state["unit_sum"], int(state["count"])
        if (unit_sum is None) != (count == 0):
            raise ValueError(f"LessonAgreement state: count {count} with {'no' if unit_sum is None else 'a'} sum")
        self.unit_sum = None if unit_sum is None else unit_sum.detach().float().clone()
        self.count = count
