"""Simulated tasks from the VLAC paper's appendix, by name, with their scripted experts."""

from __future__ import annotations

import numpy as np

from piper_driver.sim.experts import VARIANTS, ScriptedExpert
from piper_driver.sim.tasks.base import SimTask
from piper_driver.sim.tasks.pick_bowl import PickBowlTask
from piper_driver.sim.tasks.pick_bowl_expert import pick_bowl_plan
from piper_driver.sim.tasks.sweep import SweepTask
from piper_driver.sim.tasks.sweep_expert import sweep_plan

TASKS: dict[str, type[SimTask]] = {PickBowlTask.name: PickBowlTask, SweepTask.name: SweepTask}
_PLANS = {PickBowlTask.name: pick_bowl_plan, SweepTask.name: sweep_plan}


def make_task(name: str) -> SimTask:
    """A fresh task object by registry name; a wrong name lists the known ones."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"task: unknown task {name!r}; known: {', '.join(sorted(TASKS))}") from None


def make_expert(
    task: str, variant: str, rng: np.random.Generator, *, noise_mm: float = 0.0, noise_deg: float = 0.0
) -> ScriptedExpert:
    """Scripted policy for ``task``: the expert or a failure variant (see ``experts.VARIANTS``)."""
    if task not in _PLANS:
        raise ValueError(f"task: unknown task {task!r}; known: {', '.join(sorted(_PLANS))}")
    if variant not in VARIANTS:
        raise ValueError(f"variant: unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    return ScriptedExpert(_PLANS[task](variant), rng, noise_mm=noise_mm, noise_deg=noise_deg)
