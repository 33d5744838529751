"""DAgger labels: the scripted expert's action on every state the policy visits (issue 11, item 4).

Behaviour cloning on expert episodes only sees the expert's states; the prior drifts off them and
never learns to recover (it carries the bowl over the plate and holds it there: it has never seen
that state labelled "lower and let go"). DAgger (Ross et al., 2011) runs the policy, asks the expert
what it would do in each state the policy reached, and trains on those labels too.

The scripted expert is a waypoint plan followed in closed loop, so it can label a state only if it
knows which waypoint applies there. ``PickBowlLabeler`` keeps one ``ScriptedExpert`` in step with the
policy's episode and starts a fresh plan whenever the plan and the scene disagree:
- not holding the bowl while the plan lifts, carries or lowers it (a missed or dropped grasp):
  the pick and place plan again;
- holding it while the plan still reaches for it (the policy grasped first): the place plan only;
- the plan finished but the task is not done: the whole plan again;
- the task is done: stay still with the gripper open (what the expert does after its retreat).
A waypoint the policy never reaches still ends after its step budget, as in the expert's own
episodes, so a label never waits forever on a waypoint the policy does not go to.

``SweepLabeler`` labels the sweep by the state alone (``sweep_expert.label_target``: push when in pushing
position, else go to the approach point behind the trash, low when already low behind it, else over it), not by a
plan kept in step: a first version that kept the expert's plan (a fresh plan, hover first, whenever the pusher
was out of pushing position) gave one state opposite labels by the plan's history (lift to the hover point after
a lost push, lower from it on the way down), and the prior fine-tuned on them oscillated up and down
(sweep 9/50 -> 1/50; docs/models.md). The prior fine-tuned on these state labels did no better (2/50).

Labels are noise-free: noise belongs to what is executed, not to what is taught.
"""

from __future__ import annotations

import numpy as np

from vlac_core.types import DeltaAction

#: Waypoints that need the bowl in the gripper (pick_bowl_expert's names).
_NEEDS_GRASP = ("lift", "carry", "lower")
#: Waypoints that reach for the bowl: the plan is behind once the bowl is held.
_BEFORE_GRASP = ("above_bowl", "descend")
STAY_OPEN = DeltaAction(0, 0, 0, 0, 0, 0, open=1)


class PickBowlLabeler:
    """The pick_bowl expert's label for each state of one episode (a new labeler per episode)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._expert = None
        self.replans = 0

    def _start(self, grasped: bool) -> None:
        from piper_driver.sim import tasks  # noqa: F401 (experts import cleanly only after tasks)
        from piper_driver.sim.experts import ScriptedExpert
        from piper_driver.sim.tasks.pick_bowl_expert import pick_bowl_plan

        plan = pick_bowl_plan("expert")
        if grasped:
            plan = [w for w in plan if w.name not in ("above_bowl", "descend", "close", "lift")]
        self._expert = ScriptedExpert(plan, self._rng)
        self.replans += 1

    def label(self, arm_state, scene: dict, task_done: bool) -> DeltaAction:
        """The expert's action at this state (``scene``: the backend's ``describe()``)."""
        if task_done:
            return STAY_OPEN
        grasped = bool(scene["grasped"])
        expert = self._expert
        if (
            expert is None
            or expert.finished
            or (not grasped and expert.current in _NEEDS_GRASP)
            or (grasped and expert.current in _BEFORE_GRASP)
        ):
            self._start(grasped)
        action = self._expert.act(arm_state, scene)
        if action is None:  # the plan ran out on this very step (its last waypoint was already reached)
            self._start(grasped)
            action = self._expert.act(arm_state, scene)
        return action if action is not None else STAY_OPEN


#: sweep: the done state keeps the gripper closed, as the expert pushes with it closed.
STAY_CLOSED = DeltaAction(0, 0, 0, 0, 0, 0, open=0)


class SweepLabeler:
    """The sweep expert's label for each state, a function of the state alone (one labeler may serve episodes)."""

    def __init__(self, rng: np.random.Generator) -> None:
        del rng  # the labels are deterministic; the argument keeps make_labeler's one signature

    def label(self, arm_state, scene: dict, task_done: bool) -> DeltaAction:
        """The expert's action at this state (``scene``: the backend's ``describe()``)."""
        from piper_driver.sim.experts import step_toward
        from piper_driver.sim.tasks.sweep_expert import label_target

        if task_done:
            return STAY_CLOSED
        pose = arm_state.end_pose.as_array()
        return step_toward(pose, label_target(scene, pose), open_=0)


_LABELERS = {"pick_bowl": PickBowlLabeler, "sweep": SweepLabeler}


def make_labeler(task: str, rng: np.random.Generator) -> PickBowlLabeler | SweepLabeler:
    """The DAgger labeler of ``task``; only tasks whose expert can label any state have one."""
    if task not in _LABELERS:
        raise ValueError(f"dagger: no state labeler for task {task!r}; labelers exist for: {', '.join(_LABELERS)}")
    return _LABELERS[task](rng)
