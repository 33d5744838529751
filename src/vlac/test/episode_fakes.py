"""Test doubles of the episode-loop Protocols: a 1-D world where the arm's position is painted into the image.

The robot's position (an integer) is every pixel of the front image, so the fake critic can read
progress off the pixels exactly like a real critic reads it off the scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, StartState, TaskTruth, Transition

TASK = "push the block to the line"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, dt_s: float) -> None:
        self.now_s += dt_s


class FakeRobot:
    def __init__(self, clock: FakeClock, goal: int = 3, ground_truth: bool = True, robot_id: str = "arm_0") -> None:
        self.robot_id = robot_id
        self.clock = clock
        self.goal = goal
        self.ground_truth = ground_truth
        self.position = 0
        self.seq = 0
        self.executed: list[DeltaAction] = []
        self.resets: list[StartState | None] = []

    def reset(self, start_state: StartState | None) -> StartState:
        self.resets.append(start_state)
        if start_state is None:
            self.position = 0
        elif "pos" in start_state.params:
            self.position = start_state.params["pos"]
        elif start_state.state_id.removeprefix("pos-").isdigit():  # named by its id alone (a goal's start_state_id)
            self.position = int(start_state.state_id.removeprefix("pos-"))
        else:
            raise KeyError(f"start {start_state.state_id!r}: neither a 'pos' param nor a pos-<n> id")
        return StartState(f"pos-{self.position}", {"pos": self.position})

    def observe(self) -> Observation:
        self.seq += 1
        self.clock.advance(0.05)
        return Observation(
            robot_id=self.robot_id,
            task=TASK,
            images=(np.full((2, 2, 3), self.position, dtype=np.uint8),),
            end_pose=EndPose(float(self.position), 0.0, 100.0, 180.0, 0.0, 0.0),
            gripper_open=True,
            gripper_mm=50.0,
            joints_rad=(0.0,) * 6,
            stamp_s=self.clock(),
            seq=self.seq,
        )

    def execute(self, delta: DeltaAction) -> None:
        self.executed.append(delta)
        self.position += delta.dx_mm

    def ground_truth_success(self) -> bool | None:
        return self.position >= self.goal if self.ground_truth else None

    def truth(self) -> TaskTruth:
        """Potential = position / goal (capped at 1); phase "far" before the last unit, "near" on it."""
        success = self.position >= self.goal
        phase = "done" if success else ("near" if self.position == self.goal - 1 else "far")
        return TaskTruth(min(max(self.position, 0) / self.goal, 1.0), success, phase)


class FakeActor:
    """Moves +1 mm per step; raises on the call numbers in ``fail_on_calls`` (1-based)."""

    def __init__(self, clock: FakeClock, latency_s: float = 0.25, fail_on_calls: tuple[int, ...] = ()) -> None:
        self.clock = clock
        self.latency_s = latency_s
        self.fail_on_calls = fail_on_calls
        self.calls: list[tuple[int, bool]] = []  # (observation seq, greedy)

    @property
    def policy_version(self) -> int:
        return 3

    def act(self, observation: Observation, greedy: bool) -> PolicyAction:
        self.calls.append((observation.seq, greedy))
        if len(self.calls) in self.fail_on_calls:
            raise RuntimeError("actor replica lost")
        self.clock.advance(self.latency_s)
        position = int(observation.images[0][0, 0, 0])
        return PolicyAction(
            delta=DeltaAction(1, 0, 0, 0, 0, 0, 1),
            text="{x: 1mm, y: 0mm, z: 0mm, roll: 0 degrees, pitch: 0 degrees, yaw: 0 degrees, open: 1}",
            token_logprobs=(-0.5, -0.25),
            value=0.1 * position,
            policy_version=3,
            obs_stamp_s=observation.stamp_s,
            inference_latency_s=self.latency_s,
            robot_id=observation.robot_id,
            obs_seq=observation.seq,
        )


class FakeCritic:
    """progress = 10 % per unit of position gained; done_prob 0.95 at or past the goal, else 0.1.

    ``unparsable_progress_calls`` / ``unparsable_done_calls`` (1-based) answer None; ``fail_on_progress_call``
    raises (an exception type can be given).
    """

    def __init__(
        self,
        goal: int = 3,
        unparsable_progress_calls: tuple[int, ...] = (),
        unparsable_done_calls: tuple[int, ...] = (),
        fail_on_progress_call: int | None = None,
        error: type[BaseException] = RuntimeError,
    ) -> None:
        self.goal = goal
        self.unparsable_progress_calls = unparsable_progress_calls
        self.unparsable_done_calls = unparsable_done_calls
        self.fail_on_progress_call = fail_on_progress_call
        self.error = error
        self.progress_calls = 0
        self.done_calls = 0
        self.first_images: list[np.ndarray] = []

    def progress_pct(self, earlier_image, later_image, task, first_image) -> float | None:
        self.progress_calls += 1
        self.first_images.append(first_image)
        assert task == TASK
        if self.progress_calls == self.fail_on_progress_call:
            raise self.error("critic server went away")
        if self.progress_calls in self.unparsable_progress_calls:
            return None
        return 10.0 * (int(later_image[0, 0, 0]) - int(earlier_image[0, 0, 0]))

    def done_prob(self, image, task) -> float | None:
        self.done_calls += 1
        if self.done_calls in self.unparsable_done_calls:
            return None
        return 0.95 if int(image[0, 0, 0]) >= self.goal else 0.1


@dataclass
class RecordingSink:
    """Keeps what the loop handed over, in order (a real sink writes it to disk)."""

    events: list[tuple] = field(default_factory=list)
    finished: list[tuple[Episode, object]] = field(default_factory=list)
    steps: dict[str, list[Transition]] = field(default_factory=dict)

    def begin_episode(self, episode: Episode) -> None:
        assert episode.transitions == []
        self.events.append(("begin", episode.episode_id))
        self.steps[episode.episode_id] = []

    def append_step(self, episode: Episode, transition: Transition) -> None:
        self.events.append(("step", episode.episode_id, len(episode.transitions) - 1))
        self.steps[episode.episode_id].append(transition)

    def finish_episode(self, episode: Episode, summary: object) -> None:
        self.events.append(("finish", episode.episode_id, episode.termination))
        self.finished.append((episode, summary))


class ScriptedOperator:
    """Teleoperates at the given step indexes (0-based) and ends the episode before ``end_at_step``."""

    def __init__(self, teleop_steps: dict[int, DeltaAction] | None = None, end_at_step: int | None = None) -> None:
        self.teleop_steps = teleop_steps or {}
        self.end_at_step = end_at_step
        self.asked = 0  # teleop_action calls = step index being chosen

    def end_requested(self, robot_id: str) -> bool:
        return self.end_at_step is not None and self.asked == self.end_at_step

    def teleop_action(self, robot_id: str, observation: Observation) -> DeltaAction | None:
        step = self.asked
        self.asked += 1
        return self.teleop_steps.get(step)
