"""The concrete classes behind the episode loop's Protocols, for the embedded runtime (no ROS).

- ``SimRobot``: a ``SimBackend`` behind ``SafeArm`` (every action passes the safety envelope, as on
  the real arm). Fresh starts are scene seeds; each start's full simulation state is kept
  (``save_state``) in a ``SnapshotStore`` shared by the arms, so return-and-explore resets restore
  it exactly (``restore_state``), on any arm of the same task.
- ``ServiceActor``: ``vlac_actor.ActorService`` (its ``ReplicaPool``): an answer with ok=false
  becomes an ``ActorError``, so the loop marks the episode aborted. Inside ``pinned()`` it asks the
  service's pinned copy instead (an evaluation's one version; the other arms' actors are unaffected).
- The critic shared by every arm is ``vlac_critic.batching.BatchingCritic`` (the critic node serves through it too).

The simulated clock: stamps and the safety envelope's clock are simulated seconds, continued
across resets (a reset rewinds MuJoCo's time; the envelope's rate limit must never see time go
back). The loop takes ``SimRobot.clock`` as its clock, so action ages are simulated seconds too.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace

from piper_driver.safe_arm import SafeArm
from piper_driver.safety import SafetyConfig
from piper_driver.sim.backend import SimBackend, SimConfig, SimSnapshot
from piper_driver.sim.tasks import make_task
from vlac_core.types import DeltaAction, Observation, PolicyAction, StartState, TaskTruth

#: Simulated seconds inserted between episodes on the continued clock.
_RESET_GAP_S = 1.0


class ActorError(RuntimeError):
    """The actor answered a request with an error (the reason is the message)."""


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
                del self._states[next(iter(self._states))]  # oldest first; seeds can rebuild them

    def get(self, state_id: str) -> SimSnapshot | None:
        with self._lock:
            return self._states.get(state_id)


class SimRobot:
    """One simulated arm as the episode loop sees it."""

    def __init__(
        self,
        robot_id: str,
        task: str,
        sim_config: SimConfig,
        safety: SafetyConfig,
        *,
        first_seed: int,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.robot_id = robot_id
        self.backend = SimBackend(make_task(task), replace(sim_config, step_mode="on_execute"))
        self.arm = SafeArm(self.backend, safety, clock=self.clock)
        self.snapshots = snapshots or SnapshotStore()
        self._offset_s = 0.0
        self._next_seed = first_seed
        self._seq = 0
        self._last_stamp_s: float | None = None
        self.arm.connect()
        self.backend.reset(first_seed)
        self.arm.enable()

    @property
    def task_text(self) -> str:
        return self.backend.task.text

    def clock(self) -> float:
        """Simulated seconds, continued across resets."""
        return self._offset_s + self.backend.sim_time_s()

    def _rewind_guard(self, before_s: float) -> None:
        self._offset_s = before_s + _RESET_GAP_S - self.backend.sim_time_s()

    def reset(self, start_state: StartState | None) -> StartState:
        """A fresh scene from the next seed, or the kept state ``start_state`` (seed rebuild if not kept here)."""
        before_s = self.clock()
        if start_state is None:
            seed = self._next_seed
            self._next_seed += 1
            return self.reset_to_seed(seed, before_s)
        snapshot = self.snapshots.get(start_state.state_id)
        if snapshot is not None:
            self.backend.restore_state(snapshot)
        elif "seed" in start_state.params:
            self.backend.reset(int(start_state.params["seed"]))
        else:
            raise ValueError(f"start state {start_state.state_id!r}: no kept simulation state and no seed")
        self._rewind_guard(before_s)
        self._seq = 0
        return start_state

    def reset_to_seed(self, seed: int, before_s: float | None = None) -> StartState:
        """The scene of ``seed`` (evaluation trials use fixed seeds); its state is kept for later returns."""
        before_s = self.clock() if before_s is None else before_s
        self.backend.reset(int(seed))
        self._rewind_guard(before_s)
        self._seq = 0
        state_id = f"{self.backend.task.name}-seed{int(seed)}"
        self.snapshots.put(state_id, self.backend.save_state())
        image = self.backend.images()[0]
        return StartState(state_id, {"task": self.backend.task.name, "seed": int(seed)}, image)

    def observe(self) -> Observation:
        self._seq += 1
        arm = self.backend.observe()
        stamp_s = self._offset_s + arm.stamp_s
        self._last_stamp_s = stamp_s
        return Observation(
            robot_id=self.robot_id,
            task=self.backend.task.text,
            images=self.backend.images(),
            end_pose=arm.end_pose,
            gripper_open=arm.gripper_mm >= self.backend.GRIPPER_OPEN_THRESHOLD_MM,
            gripper_mm=arm.gripper_mm,
            joints_rad=arm.joints_rad,
            stamp_s=stamp_s,
            seq=self._seq,
        )

    def execute(self, delta: DeltaAction) -> None:
        """Through the safety envelope; the action answers the latest observation (its stamp is checked)."""
        self.arm.execute(delta, obs_stamp_s=self._last_stamp_s)

    def ground_truth_success(self) -> bool | None:
        return bool(self.backend.success())

    def truth(self) -> TaskTruth:
        """The task's ground truth now (potential, success, phase): the loop's ``ground_truth``."""
        return self.backend.truth()

    def close(self) -> None:
        self.arm.disconnect()


class ServiceActor:
    """``ActorService`` as the loop's Actor; one per loop that pins (the evaluation arm has its own)."""

    def __init__(self, service) -> None:
        self.service = service
        self._pinned = None  # the service's PinnedPolicy while inside pinned()

    @property
    def policy_version(self) -> int:
        pinned = self._pinned
        return pinned.version if pinned is not None else max(self.service.pool.versions)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[int]:
        """Every request in the block is answered by one version (yielded); other actors keep updating."""
        with self.service.pinned_policy() as policy:
            self._pinned = policy
            try:
                yield policy.version
            finally:
                self._pinned = None

    def act(self, observation: Observation, greedy: bool) -> PolicyAction:
        pinned = self._pinned
        reply = (pinned or self.service).act(observation, greedy=greedy)
        if not reply.ok:
            raise ActorError(reply.error)
        return reply.action
