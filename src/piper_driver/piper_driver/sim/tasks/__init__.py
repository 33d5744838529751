"""Simulated tasks from the VLAC paper's appendix, by name, with their scripted experts."""

from __future__ import annotations

import numpy as np

from piper_driver.sim.experts import VARIANTS, ScriptedExpert, Waypoint
from piper_driver.sim.tasks.base import SimTask
from piper_driver.sim.tasks.pick_bowl import PickBowlTask
from piper_driver.sim.tasks.pick_bowl_expert import GRASP_HOLD_STEPS, pick_bowl_plan
from piper_driver.sim.tasks.sweep import SweepTask
from piper_driver.sim.tasks.sweep_expert import sweep_plan

TASKS: dict[str, type[SimTask]] = {PickBowlTask.name: PickBowlTask, SweepTask.name: SweepTask}
_PLANS = {PickBowlTask.name: pick_bowl_plan, SweepTask.name: sweep_plan}
#: Tasks whose expert grasps, so takes ``grasp_hold_steps``, with the hold each one's expert uses by default.
GRASP_HOLD_DEFAULTS: dict[str, int] = {PickBowlTask.name: GRASP_HOLD_STEPS}


def make_task(name: str) -> SimTask:
    """A fresh task object by registry name; a wrong name lists the known ones."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"task: unknown task {name!r}; known: {', '.join(sorted(TASKS))}") from None


def make_expert(
    task: str,
    variant: str,
    rng: np.random.Generator,
    *,
    noise_mm: float = 0.0,
    noise_deg: float = 0.0,
    grasp_hold_steps: int | None = None,
) -> ScriptedExpert:
    """Scripted policy for ``task``: the expert or a failure variant (see ``experts.VARIANTS``).

    ``grasp_hold_steps``: the steps a grasping task's expert stays closing before it lifts (pick_bowl's
    ``GRASP_HOLD_STEPS``); None keeps the task's own. A task without a grasp refuses it."""
    return ScriptedExpert(plan_for(task, variant, grasp_hold_steps), rng, noise_mm=noise_mm, noise_deg=noise_deg)


def plan_for(task: str, variant: str, grasp_hold_steps: int | None = None) -> list[Waypoint]:
    """The waypoints of ``task``'s expert (or failure ``variant``), with ``grasp_hold_steps`` as in ``make_expert``."""
    if task not in _PLANS:
        raise ValueError(f"task: unknown task {task!r}; known: {', '.join(sorted(_PLANS))}")
    if variant not in VARIANTS:
        raise ValueError(f"variant: unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if grasp_hold_steps is None:
        return _PLANS[task](variant)
    if task not in GRASP_HOLD_DEFAULTS:
        raise ValueError(
            f"grasp_hold_steps: task {task!r} has no grasp (tasks with one: {', '.join(GRASP_HOLD_DEFAULTS)})"
        )
    return _PLANS[task](variant, grasp_hold_steps=grasp_hold_steps)
