"""Scripted experts: demonstrations and deliberate failures, emitted as VLAC ``DeltaAction``s.

An expert is a list of waypoints (flange poses computed from the privileged scene state)
followed in closed loop: each step moves toward the active waypoint by at most
``max_step_mm`` / ``max_step_deg`` (the PiPER-scale step of the paper's actions), with
optional Gaussian noise, rounded to the integers of the action template. Failure variants
give the critic its negatives, each ending where the success check says no:
- ``stall``: approaches, then hovers without progress;
- ``wrong_target``: does the motions, but to the wrong place;
- ``undo``: completes the task, then reverses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from piper_driver.robot import ArmState
from piper_driver.sim.model import TCP_OFFSET_M
from piper_driver.sim.tasks.base import TOP_DOWN_PITCH_DEG, TOP_DOWN_ROLL_DEG, wrap_deg
from vlac_core.types import DeltaAction

VARIANTS = ("expert", "stall", "wrong_target", "undo")
FAILURE_VARIANTS = VARIANTS[1:]

#: An expert step's largest move (mm) and turn per axis (deg): the PiPER-scale step of the paper's actions.
STEP_MM = 25.0
STEP_DEG = 10.0

#: A waypoint's target: (scene description, flange pose when the waypoint became active) -> flange pose.
#: The scene dict also holds "pose": the flange pose now.
TargetFn = Callable[[dict, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Waypoint:
    name: str
    target: TargetFn
    open: int
    hold_steps: int = 0  # steps to stay once reached (gripper actuation, settling)
    tolerance_mm: float = 4.0
    budget_steps: int = 30  # give up on this waypoint after this many steps (keeps episodes bounded)
    #: When given, the waypoint ends when this holds for the scene (pushing: the object got there),
    #: instead of when the flange reaches the target.
    done: Callable[[dict], bool] | None = None


def top_down_pose(tcp_xyz_m: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Flange pose [mm, deg] putting the TCP at ``tcp_xyz_m`` with the gripper pointing straight down."""
    x, y, z = (float(v) * 1000.0 for v in tcp_xyz_m)
    return np.array([x, y, z + TCP_OFFSET_M * 1000.0, TOP_DOWN_ROLL_DEG, TOP_DOWN_PITCH_DEG, yaw_deg])


def tcp_of(flange_pose: np.ndarray) -> np.ndarray:
    """TCP position (m) of a top-down flange pose."""
    return np.array([flange_pose[0], flange_pose[1], flange_pose[2] - TCP_OFFSET_M * 1000.0]) / 1000.0


class ScriptedExpert:
    """Follows waypoints in closed loop; ``act`` returns None once the plan is finished."""

    def __init__(
        self,
        plan: list[Waypoint],
        rng: np.random.Generator,
        *,
        noise_mm: float = 0.0,
        noise_deg: float = 0.0,
        max_step_mm: float = STEP_MM,
        max_step_deg: float = STEP_DEG,
    ) -> None:
        if noise_mm < 0 or noise_deg < 0:
            raise ValueError(f"noise: expected non-negative noise_mm/noise_deg, got {noise_mm}, {noise_deg}")
        if not 1.0 <= max_step_mm <= 30.0 or not 1.0 <= max_step_deg <= 15.0:
            raise ValueError(f"max step: expected 1..30 mm and 1..15 deg, got {max_step_mm}, {max_step_deg}")
        self.plan = plan
        self._rng = rng
        self.noise_mm, self.noise_deg = float(noise_mm), float(noise_deg)
        self.max_step_mm, self.max_step_deg = float(max_step_mm), float(max_step_deg)
        self._index = 0
        self._anchor: np.ndarray | None = None
        self._steps_here = 0
        self._held = 0

    @property
    def finished(self) -> bool:
        return self._index >= len(self.plan)

    @property
    def current(self) -> str:
        return "done" if self.finished else self.plan[self._index].name

    def act(self, arm: ArmState, scene: dict) -> DeltaAction | None:
        pose = arm.end_pose.as_array()
        scene = {**scene, "pose": pose}
        while not self.finished:
            waypoint = self.plan[self._index]
            if self._anchor is None:
                self._anchor = pose.copy()
            target = waypoint.target(scene, self._anchor)
            error = target - pose
            error[3:] = [wrap_deg(a) for a in error[3:]]
            if waypoint.done is not None:
                reached = bool(waypoint.done(scene))
            else:
                reached = np.linalg.norm(error[:3]) <= waypoint.tolerance_mm and np.max(np.abs(error[3:])) <= 3.0
            if (reached and self._held >= waypoint.hold_steps) or self._steps_here >= waypoint.budget_steps:
                self._advance()
                continue
            self._steps_here += 1
            if reached:
                self._held += 1
                error[:] = 0.0
            return self._to_action(error, waypoint.open)
        return None

    def _advance(self) -> None:
        self._index += 1
        self._anchor = None
        self._steps_here = self._held = 0

    def _to_action(self, error: np.ndarray, open_: int) -> DeltaAction:
        move, turn = _one_step(error, self.max_step_mm, self.max_step_deg)
        if self.noise_mm:
            move = move + self._rng.normal(0.0, self.noise_mm, size=3)
        if self.noise_deg:
            turn = turn + self._rng.normal(0.0, self.noise_deg, size=3)
        move = np.clip(move, -self.max_step_mm, self.max_step_mm)
        turn = np.clip(turn, -self.max_step_deg, self.max_step_deg)
        steps = [round(float(v)) for v in (*move, *turn)]
        return DeltaAction(*steps, open=int(open_))


def _one_step(error: np.ndarray, max_step_mm: float, max_step_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """A pose error cut to one step: the move scaled to at most ``max_step_mm``, each turn clipped."""
    move = error[:3].copy()
    norm = float(np.linalg.norm(move))
    if norm > max_step_mm:
        move *= max_step_mm / norm
    return move, np.clip(error[3:], -max_step_deg, max_step_deg)


def step_toward(pose: np.ndarray, target: np.ndarray, open_: int) -> DeltaAction:
    """The noise-free action moving flange ``pose`` toward ``target`` by one expert step (``STEP_MM``,
    ``STEP_DEG``), rounded to the action template's integers."""
    error = np.asarray(target, dtype=np.float64) - np.asarray(pose, dtype=np.float64)
    error[3:] = [wrap_deg(a) for a in error[3:]]
    move, turn = _one_step(error, STEP_MM, STEP_DEG)
    return DeltaAction(*[round(float(v)) for v in (*move, *turn)], open=int(open_))


def hover_plan(name: str, steps: int, open_: int) -> list[Waypoint]:
    """Stay where the arm is for ``steps`` steps (the 'stall' failure)."""
    return [Waypoint(name, lambda scene, anchor: anchor, open_, hold_steps=steps, budget_steps=steps + 1)]
