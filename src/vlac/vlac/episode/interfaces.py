"""What the episode loop needs from the robot, actor, critic, episode sink and operator.

Small Protocols on purpose (the LeRobot idea): a simulated arm, a real PiPER with a camera, an
in-process actor pool or a ROS client all fit by implementing a few methods; the loop never
changes. The simulated arm is one class for every runtime (``piper_driver.sim.arm.SimArm``); a
real arm is reached over ROS (``vlac.ros.adapters``); the other adapters live with the runtime that
wires them. ``StartState`` is a core type (``vlac_core.types``): the robots below this package make them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from vlac_core.types import DeltaAction, Episode, Observation, PolicyAction, StartState, Transition


@runtime_checkable
class Robot(Protocol):
    """One arm with its camera(s), as the loop sees it."""

    robot_id: str

    def reset(self, start_state: StartState | None) -> StartState:
        """Bring the scene to ``start_state`` (None: a fresh one) and return the state actually set up."""

    def observe(self) -> Observation:
        """Current images, end pose and task; never waits for motion to finish."""

    def execute(self, delta: DeltaAction) -> None:
        """Start a relative move and return at once (the arm moves while the loop goes on)."""

    def ground_truth_success(self) -> bool | None:
        """Whether the task is achieved now, where a simulator knows it; None on a real arm."""


@runtime_checkable
class FrontierRobot(Protocol):
    """A robot that can set up a state it passed through mid-episode (a simulator): return-and-explore
    to the frontier (``return_to: frontier``). A real arm cannot, and is refused at start-up."""

    def snapshot(self) -> Any:
        """The robot's full state now (cheap; kept nowhere)."""

    def keep_snapshot(self, snapshot: Any, state_id: str, image: np.ndarray | None = None) -> StartState:
        """Keep ``snapshot`` so that ``reset(<the returned state>)`` sets it up again."""


@runtime_checkable
class Actor(Protocol):
    """The policy: an action (with token log-probs, value and policy version) for an observation."""

    @property
    def policy_version(self) -> int:
        """Version of the weights ``act`` uses now."""

    def act(self, observation: Observation, greedy: bool) -> PolicyAction:
        """Choose an action; ``greedy`` for evaluation, sampling for exploration."""


@runtime_checkable
class Critic(Protocol):
    """The VLAC critic, one frame pair / frame at a time."""

    def progress_pct(
        self, earlier_image: np.ndarray, later_image: np.ndarray, task: str, first_image: np.ndarray
    ) -> float | None:
        """Signed progress (percent) from the earlier to the later frame; None when the answer was unparsable.

        ``first_image`` is the episode's first frame, for in-context critics; others ignore it.
        """

    def done_prob(self, image: np.ndarray, task: str) -> float | None:
        """Probability (0..1) that the task is complete in ``image``; None when unparsable."""


@runtime_checkable
class EpisodeSink(Protocol):
    """Where episodes are recorded (a bag writer, a buffer). Each call returns once the data is on disk."""

    def begin_episode(self, episode: Episode) -> None:
        """A new episode (ids, task, policy version, start state; no steps yet)."""

    def append_step(self, episode: Episode, transition: Transition) -> None:
        """One more step of ``episode`` (already appended to ``episode.transitions``)."""

    def finish_episode(self, episode: Episode, summary: Any) -> None:
        """The episode ended (termination, success, final observation set); ``summary`` is an EpisodeSummary."""


@runtime_checkable
class Operator(Protocol):
    """A person watching an arm: may end an episode or take over with teleoperation."""

    def end_requested(self, robot_id: str) -> bool:
        """True once when the operator ends the running episode."""

    def teleop_action(self, robot_id: str, observation: Observation) -> DeltaAction | None:
        """The operator's action for this step while teleoperating, else None (the policy acts)."""
