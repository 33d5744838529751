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

``SweepLabeler`` does the same for the sweep, whose plan is one push (above behind the trash, lower, push
until it is deep in the dustpan, lift). It starts a fresh plan when the plan finished without success or
when the pusher lost the trash mid-push (out of pushing position: the TCP over ``PUSH_REACH_M`` from the
contact point, or above ``LOW_TCP_M``; the trash slid away, or the policy moved off it), and starts at the push
itself when the TCP is already in pushing position (a policy that got there first is not sent up and back down).

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


#: sweep: the pusher is in pushing position when its TCP is this close to the push's contact point (m,
#: horizontal; the expert lowers 30 mm behind it, to within 4 mm) and low (below).
PUSH_REACH_M = 0.045
#: sweep: a TCP below this height (m) is at the pushing height (the expert pushes at 12 mm).
LOW_TCP_M = 0.03
#: sweep: the done state keeps the gripper closed, as the expert pushes with it closed.
STAY_CLOSED = DeltaAction(0, 0, 0, 0, 0, 0, open=0)


class SweepLabeler:
    """The sweep expert's label for each state of one episode (a new labeler per episode)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._expert = None
        self.replans = 0

    @staticmethod
    def in_push_position(arm_state, scene: dict) -> bool:
        """Is the TCP low and near the point behind the trash where the expert's push starts?"""
        from piper_driver.sim.experts import tcp_of
        from piper_driver.sim.tasks.sweep_expert import push_contact_xy, toward_bin

        tcp = tcp_of(arm_state.end_pose.as_array())
        contact = push_contact_xy(scene, toward_bin(scene))
        return bool(np.linalg.norm(tcp[:2] - contact) <= PUSH_REACH_M and tcp[2] <= LOW_TCP_M)

    def _start(self, arm_state, scene: dict) -> None:
        from piper_driver.sim import tasks  # noqa: F401 (experts import cleanly only after tasks)
        from piper_driver.sim.experts import ScriptedExpert
        from piper_driver.sim.tasks.sweep_expert import sweep_plan

        plan = sweep_plan("expert")
        if self.in_push_position(arm_state, scene):
            plan = [w for w in plan if w.name not in ("above_behind", "lower")]
        self._expert = ScriptedExpert(plan, self._rng)
        self.replans += 1

    def label(self, arm_state, scene: dict, task_done: bool) -> DeltaAction:
        """The expert's action at this state (``scene``: the backend's ``describe()``)."""
        if task_done:
            return STAY_CLOSED
        expert = self._expert
        if (
            expert is None
            or expert.finished
            or (expert.current == "push" and not self.in_push_position(arm_state, scene))
        ):
            self._start(arm_state, scene)
        action = self._expert.act(arm_state, scene)
        if action is None:  # the plan ran out on this very step
            self._start(arm_state, scene)
            action = self._expert.act(arm_state, scene)
        return action if action is not None else STAY_CLOSED


_LABELERS = {"pick_bowl": PickBowlLabeler, "sweep": SweepLabeler}


def make_labeler(task: str, rng: np.random.Generator) -> PickBowlLabeler | SweepLabeler:
    """The DAgger labeler of ``task``; only tasks whose expert can label any state have one."""
    if task not in _LABELERS:
        raise ValueError(f"dagger: no state labeler for task {task!r}; labelers exist for: {', '.join(_LABELERS)}")
    return _LABELERS[task](rng)
