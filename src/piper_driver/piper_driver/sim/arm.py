"""``SimArm``: the one simulated PiPER, whoever drives it.

The embedded session's arms (the episode loop's ``Robot``), the arm node with ``backend: sim`` and
the scripted-expert rollouts all move this class, so a demonstration, an embedded episode and an
episode over ROS see the same arm: a ``SimBackend`` behind ``SafeArm`` (every action passes the
safety envelope, as on the real arm), the same resets and the same start states.

Start states: a fresh start is a scene seed; its full simulation state is kept in a
``SnapshotStore`` under the id of ``seed_start_state(task, seed)`` (``pick_bowl-seed7``), so a
return-and-explore reset restores it exactly, on any arm of the same task that shares the store,
and an id that was evicted is rebuilt from the seed it names. That id is the only scheme: the
node's ``start_state_id`` service answers it too.

Frontier states (return-and-explore from where a failed episode got furthest): ``snapshot`` takes the
full state mid-episode (cheap, nothing kept) and ``keep_snapshot`` keeps the one the loop chose, under
the loop's id (``vlac.episode.return_explore.frontier_state_id``). Such a state has no seed to rebuild it
from: once evicted (or after a restart: snapshots live in memory), ``reset`` raises ``StartStateGone``.

Clocks: without ``clock`` the arm keeps its own, simulated seconds continued across resets (a reset
rewinds MuJoCo's time; the envelope's rate limit must never see time go back), and each action steps
the physics through one control period (``on_execute``). With ``clock`` (the arm node's ROS clock)
the owner advances simulated time with ``tick`` (``external``), so observations taken meanwhile see
the arm moving.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from piper_driver.robot import ArmState
from piper_driver.safe_arm import SafeArm
from piper_driver.safety import SafeCommand, SafetyConfig
from piper_driver.sim.backend import SimBackend, SimConfig, SimSnapshot
from piper_driver.sim.scene_seeds import SceneSeeds
from piper_driver.sim.tasks import make_task
from vlac_core.types import DeltaAction, Observation, StartState, StartStateGone, TaskTruth

#: Simulated seconds inserted between episodes on the arm's own continued clock.
_RESET_GAP_S = 1.0


def seed_start_state(task: str, seed: int, image: np.ndarray | None = None) -> StartState:
    """The start state of ``seed``'s scene in ``task``, its id by the one scheme (``pick_bowl-seed7``)."""
    return StartState(f"{task}-seed{int(seed)}", {"task": task, "seed": int(seed)}, image)


_SEED_ID = re.compile(r"(?P<task>.+)-seed(?P<seed>\d+)")


def parse_seed_start_state_id(state_id: str) -> tuple[str, int] | None:
    """(task, scene seed) of an id ``seed_start_state`` made (``pick_bowl-seed7`` -> ("pick_bowl", 7)); None for
    any other id (a return-and-explore frontier's, say). The one parse of that scheme: the arm rebuilds an evicted
    start state from it, and reports read a training episode's scene from it."""
    match = _SEED_ID.fullmatch(state_id or "")
    return None if match is None else (match["task"], int(match["seed"]))


class SnapshotStore:
    """Full simulation states of start states, by state id; shared by the arms of one session."""

    def __init__(self, max_states: int = 1000) -> None:
        self.max_states = max_states
        self._states: dict[str, SimSnapshot] = {}
        self._lock = threading.Lock()

    def put(self, state_id: str, snapshot: SimSnapshot) -> None:
        with self._lock:
            self._states[state_id] = snapshot
            while len(self._states) > self.max_states:
                del self._states[next(iter(self._states))]  # oldest first; seeds rebuild, frontiers are gone

    def get(self, state_id: str) -> SimSnapshot | None:
        with self._lock:
            return self._states.get(state_id)


class SimArm:
    """One simulated arm: ``robot_id`` names it in observations; ``first_seed`` is its first scene.

    ``scenes``: the rule of the fresh starts after it (a pool of scenes cycled; default: the next seed each time).

    ``enabled``: enable the motors at once (an arm nobody else enables); the arm node enables on activate.
    """

    def __init__(
        self,
        robot_id: str,
        task: str,
        sim_config: SimConfig,
        safety: SafetyConfig | None,
        *,
        first_seed: int,
        scenes: SceneSeeds | None = None,
        snapshots: SnapshotStore | None = None,
        clock: Callable[[], float] | None = None,
        enabled: bool = True,
    ) -> None:
        self.robot_id = robot_id
        self._outside_clock = clock
        step_mode = "on_execute" if clock is None else "external"
        self.backend = SimBackend(make_task(task), replace(sim_config, step_mode=step_mode))
        self.safe_arm = SafeArm(self.backend, safety, clock=self.clock)
        self.snapshots = snapshots if snapshots is not None else SnapshotStore()
        self.start_state: StartState | None = None  # what the last reset set up
        self._offset_s = 0.0
        self._fresh_seeds = (scenes if scenes is not None else SceneSeeds(first_seed)).draws(first_seed)
        self._seq = 0
        self._last_stamp_s: float | None = None
        self.safe_arm.connect()
        self.backend.reset(first_seed)
        if enabled:
            self.safe_arm.enable()

    @property
    def task(self) -> str:
        return self.backend.task.name

    @property
    def task_text(self) -> str:
        return self.backend.task.text

    def clock(self) -> float:
        """Seconds on the arm's clock: the owner's, or simulated seconds continued across resets."""
        if self._outside_clock is not None:
            return self._outside_clock()
        return self._offset_s + self.backend.sim_time_s()

    # --- start states --------------------------------------------------------------------------

    def reset(self, start_state: StartState | None) -> StartState:
        """A fresh scene from the next seed, or the kept state ``start_state`` (rebuilt from its seed if not kept)."""
        if start_state is None:
            return self.reset_to_seed(next(self._fresh_seeds))
        before_s = self.clock()
        snapshot = self.snapshots.get(start_state.state_id)
        if snapshot is not None:
            self.backend.restore_state(snapshot)
        elif "frontier_of" in start_state.params:
            raise StartStateGone(
                f"start state {start_state.state_id!r}: a mid-episode snapshot no longer kept (evicted, or "
                "taken before a restart); it cannot be rebuilt from a seed"
            )
        else:
            self.backend.reset(self._seed_of(start_state))
        self._after_reset(before_s, start_state)
        return start_state

    def reset_to_seed(self, seed: int, *, image: bool = True) -> StartState:
        """The scene of ``seed`` (evaluations use fixed seeds), kept for later returns.

        ``image``: render the front camera's first frame into the start state (rollouts that
        record no images skip it).
        """
        before_s = self.clock()
        self.backend.reset(int(seed))
        state = seed_start_state(self.task, seed, self.backend.images()[0] if image else None)
        self.snapshots.put(state.state_id, self.backend.save_state())
        self._after_reset(before_s, state)
        return state

    def snapshot(self) -> SimSnapshot:
        """The full simulation state now, kept nowhere: a candidate frontier (``keep_snapshot``)."""
        return self.backend.save_state()

    def keep_snapshot(self, snapshot: SimSnapshot, state_id: str, image: np.ndarray | None = None) -> StartState:
        """Keep ``snapshot`` under ``state_id`` for a later ``reset`` (return-and-explore to a frontier)."""
        self.snapshots.put(state_id, snapshot)
        return StartState(state_id, {"task": self.task, "frontier_of": snapshot.seed}, image)

    def _seed_of(self, start_state: StartState) -> int:
        if "seed" in start_state.params:
            return int(start_state.params["seed"])
        parsed = parse_seed_start_state_id(start_state.state_id)
        if parsed is None or parsed[0] != self.task:
            raise ValueError(
                f"start state {start_state.state_id!r}: not kept, and neither its params nor its id "
                f"({seed_start_state(self.task, 0).state_id!r} form) name a seed of task {self.task!r}"
            )
        return parsed[1]

    def _after_reset(self, before_s: float, state: StartState) -> None:
        """The rewind guard: the own clock continues past where it was before the reset."""
        self._offset_s = before_s + _RESET_GAP_S - self.backend.sim_time_s()
        self._seq = 0
        self.start_state = state

    # --- the episode loop's Robot ------------------------------------------------------------

    def arm_state(self) -> ArmState:
        """The arm now (nothing rendered), stamped on the arm's clock; the next action answers it."""
        state = self.backend.observe()
        stamp_s = self.clock()
        self._last_stamp_s = stamp_s
        return replace(state, stamp_s=stamp_s)

    def observe(self) -> Observation:
        self._seq += 1
        arm = self.arm_state()
        return Observation(
            robot_id=self.robot_id,
            task=self.task_text,
            images=self.backend.images(),
            end_pose=arm.end_pose,
            gripper_open=arm.gripper_mm >= self.backend.GRIPPER_OPEN_THRESHOLD_MM,
            gripper_mm=arm.gripper_mm,
            joints_rad=arm.joints_rad,
            stamp_s=arm.stamp_s,
            seq=self._seq,
        )

    def execute(self, delta: DeltaAction) -> SafeCommand:
        """Through the safety envelope; the action answers the latest observation (its stamp is checked)."""
        return self.safe_arm.execute(delta, obs_stamp_s=self._last_stamp_s)

    def ground_truth_success(self) -> bool | None:
        return bool(self.backend.success())

    def truth(self) -> TaskTruth:
        """The task's ground truth now (potential, success, phase): the loop's ``ground_truth``."""
        return self.backend.truth()

    # --- for an owner with its own clock (the arm node) --------------------------------------

    def tick(self, duration_s: float) -> bool:
        """Advance simulated time by ``duration_s``; run the command watchdog. True if it held the arm."""
        self.backend.advance(duration_s)
        return self.safe_arm.tick()

    def images(self) -> dict[str, np.ndarray]:
        """{"front": HxWx3 uint8[, "wrist": ...]} of the scene now."""
        frames = self.backend.images()
        return dict(zip(("front", "wrist")[: len(frames)], frames, strict=True))

    def close(self) -> None:
        self.safe_arm.disconnect()
