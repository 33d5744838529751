"""What a simulated task is: a scene fragment, seeded initial states, ground truth, object state.

Ground truth (``success`` and ``truth``) serves evaluation, the critic audit, and the control
experiment that replaces the critic's reward by the simulator's (``episode_manager.reward_source``:
``sim_dense`` pays the change of the task-phase potential, ``sim_sparse`` pays success only). By
default the RL loop's reward is the VLAC critic's and ground truth is only recorded beside it.
Object placement uses mocap bodies for fixtures (tray, plate, bin) and free joints for movable
objects, so everything a task randomises lives in ``mjData`` and is captured by ``mj_getState``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from piper_driver.sim.model import TaskXml
from vlac_core.types import TaskTruth

#: Top-down gripper orientation of the PiPER (roll, pitch in degrees): flange z pointing at the table.
TOP_DOWN_ROLL_DEG = 180.0
TOP_DOWN_PITCH_DEG = 0.0


def wrap_deg(angle_deg: float) -> float:
    """Angle in [-180, 180)."""
    return (float(angle_deg) + 180.0) % 360.0 - 180.0


def closeness(distance_m: float, scale_m: float) -> float:
    """1 at distance 0, falling linearly to 0 at ``scale_m`` and beyond: a bounded shaping term."""
    return max(0.0, 1.0 - float(distance_m) / scale_m)


def top_down_yaw_deg(x_mm: float, y_mm: float, twist_deg: float = 0.0) -> float:
    """Yaw of the top-down flange pose that needs no wrist twist at (x, y): the arm's natural yaw there."""
    return wrap_deg(np.degrees(np.arctan2(y_mm, x_mm)) + 180.0 + twist_deg)


class SimTask(ABC):
    """One scene with its objects; bound to a compiled model before use."""

    #: Registry name, e.g. "pick_bowl".
    name: str = ""
    #: The instruction given to the actor and critic.
    text: str = ""
    #: Task phases ``truth`` reports, in task order (the audit breaks its figures down by them).
    phases: tuple[str, ...] = ()
    #: The ``describe()`` key of the object the task moves (its centre, metres): recorded with every simulated
    #: demo (``rollout``'s ``meta["object_mm"]``) for the actor's auxiliary object loss and bench/object_probe.py.
    object_key: str = ""
    #: The ``describe()`` key of where the object must end (its centre, metres; fixed within an episode), for
    #: bench/object_probe.py's ``--target goal``: does the actor know where to carry or push it?
    goal_key: str = ""
    #: Flange pose the arm starts from: [x_mm, y_mm, z_mm, roll_deg, pitch_deg, yaw_deg].
    home_pose: tuple[float, ...] = (250.0, 0.0, 215.0, TOP_DOWN_ROLL_DEG, TOP_DOWN_PITCH_DEG, -180.0)

    @abstractmethod
    def xml(self) -> TaskXml:
        """Bodies, assets and equality constraints this task adds to the scene."""

    @abstractmethod
    def bind(self, model) -> None:
        """Look up the ids this task needs in a compiled model."""

    @abstractmethod
    def reset(self, model, data, rng: np.random.Generator) -> None:
        """Place the objects for a new episode (arm already at home); mj_forward follows."""

    @abstractmethod
    def success(self, model, data) -> bool:
        """Ground truth: is the task done in this state?"""

    @abstractmethod
    def truth(self, model, data) -> TaskTruth:
        """Ground truth of this state: the task-phase potential (0..1, 1 exactly at success), success, phase.

        The potential orders the states of a task the way a person would score progress: each
        phase owns a band of it and a shaping term moves it within the band, so its change over a
        step is a dense ground-truth reward and its sign says whether a step helped.
        """

    def on_physics(self, model, data, gripper_closing: bool, tcp_pos_m: np.ndarray) -> None:  # noqa: B027
        """Called every few physics steps (grasp bookkeeping); most tasks need nothing."""

    def get_state(self) -> dict:
        """Task state outside mjData (kept in snapshots)."""
        return {}

    def set_state(self, state: dict) -> None:  # noqa: B027
        """Restore what ``get_state`` returned."""

    def describe(self, model, data) -> dict:
        """Object positions and flags the scripted experts read (privileged, simulation only)."""
        return {}
