"""Plain data types exchanged by every part of the stack (no ROS, no torch).

Units are in the field names: millimetres, degrees, radians, seconds. Images are
HxWx3 uint8 RGB numpy arrays. Validation happens at construction so a bad value
fails where it was made, with a message that names the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

#: The seven numbers of the VLAC action template, in template order.
ACTION_FIELDS = ("dx_mm", "dy_mm", "dz_mm", "droll_deg", "dpitch_deg", "dyaw_deg", "open")


class ValidationError(ValueError):
    """A value handed to a core type is malformed; the message names the field."""


def check_image(image: object, name: str = "image") -> np.ndarray:
    """Return ``image`` if it is an HxWx3 uint8 array, else raise naming what is wrong."""
    if not isinstance(image, np.ndarray):
        raise ValidationError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValidationError(f"{name}: expected dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValidationError(f"{name}: expected shape HxWx3 (RGB), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValidationError(f"{name}: empty image of shape {image.shape}")
    return image


def _check_finite(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool):
            raise ValidationError(f"{type(obj).__name__}.{name}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValidationError(f"{type(obj).__name__}.{name}: expected a finite number, got {value!r}")


@dataclass(frozen=True)
class EndPose:
    """Absolute end-effector pose in the arm's base frame (PiPER convention: XYZ, then RPY)."""

    x_mm: float
    y_mm: float
    z_mm: float
    roll_deg: float
    pitch_deg: float
    yaw_deg: float

    def __post_init__(self) -> None:
        _check_finite(self, ("x_mm", "y_mm", "z_mm", "roll_deg", "pitch_deg", "yaw_deg"))

    def as_array(self) -> np.ndarray:
        return np.array(
            [self.x_mm, self.y_mm, self.z_mm, self.roll_deg, self.pitch_deg, self.yaw_deg], dtype=np.float64
        )

    @classmethod
    def from_array(cls, values: np.ndarray | list[float]) -> EndPose:
        values = [float(v) for v in values]
        if len(values) != 6:
            raise ValidationError(f"EndPose.from_array: expected 6 values, got {len(values)}")
        return cls(*values)


@dataclass(frozen=True)
class DeltaAction:
    """The numbers of one VLAC action: a relative end-pose move and the gripper command.

    Integers because the action template writes whole millimetres and degrees;
    ``open`` is 1 to open the gripper and 0 to close it.
    """

    dx_mm: int
    dy_mm: int
    dz_mm: int
    droll_deg: int
    dpitch_deg: int
    dyaw_deg: int
    open: int

    def __post_init__(self) -> None:
        for name in ACTION_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValidationError(f"DeltaAction.{name}: expected an integer, got {value!r}")
        for name in ("droll_deg", "dpitch_deg", "dyaw_deg"):
            if not -180 <= getattr(self, name) <= 180:
                raise ValidationError(f"DeltaAction.{name}: expected -180..180 degrees, got {getattr(self, name)}")
        if self.open not in (0, 1):
            raise ValidationError(f"DeltaAction.open: expected 0 or 1, got {self.open}")

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(int(getattr(self, name)) for name in ACTION_FIELDS)


@dataclass(frozen=True)
class Observation:
    """What the robot side hands the actor and critic at one step.

    ``images[0]`` is the front camera (the one the critic scores); further views
    (wrist camera, ...) follow. ``stamp_s`` is when the frame was captured, so
    consumers can tell how stale it is.
    """

    robot_id: str
    task: str
    images: tuple[np.ndarray, ...]
    end_pose: EndPose
    gripper_open: bool
    gripper_mm: float
    joints_rad: tuple[float, ...]
    stamp_s: float
    seq: int = 0

    def __post_init__(self) -> None:
        if not self.task.strip():
            raise ValidationError("Observation.task: empty task text")
        if not 1 <= len(self.images) <= 3:
            raise ValidationError(f"Observation.images: expected 1 to 3 camera views, got {len(self.images)}")
        for i, image in enumerate(self.images):
            check_image(image, f"Observation.images[{i}]")
        _check_finite(self, ("gripper_mm", "stamp_s"))
        if not all(math.isfinite(j) for j in self.joints_rad):
            raise ValidationError(f"Observation.joints_rad: non-finite value in {self.joints_rad}")


@dataclass(frozen=True)
class PolicyAction:
    """An actor's answer to one observation, with what PPO and the driver need.

    ``token_logprobs`` hold the log-probabilities of the sampled (numeric) tokens
    only; the template's fixed text is teacher-forced and carries none.
    ``logprob_needs_recompute`` is set by backends (vLLM) whose log-probs differ
    from torch's, so the trainer recomputes them before an update.
    """

    delta: DeltaAction
    text: str
    token_logprobs: tuple[float, ...]
    value: float
    policy_version: int
    obs_stamp_s: float
    inference_latency_s: float
    robot_id: str = ""
    obs_seq: int = 0
    logprob_needs_recompute: bool = False

    @property
    def logprob(self) -> float:
        """Log-probability of the whole action under the policy that produced it."""
        return float(sum(self.token_logprobs))


class Termination(str, Enum):
    """Why an episode ended."""

    DONE = "done"  # the reward source said done: the critic's done rule, or true success (sim_* sources)
    STEP_LIMIT = "step_limit"
    OPERATOR = "operator"  # a person ended it
    ABORTED = "aborted"  # an actor, critic or robot error; kept, but not trained on
    SHUTDOWN = "shutdown"  # the session was stopped (Ctrl-C)


@dataclass(frozen=True)
class StartState:
    """Where an episode began, so it can be returned to (return-and-explore).

    ``params`` is whatever the robot side needs to reproduce the scene (a simulator seed and object
    poses; JSON-able). ``image`` is the front camera's first frame, for an operator who arranges a
    real scene by eye. Here, not with the episode loop, because the robots that set start states up
    (``piper_driver.sim.arm.SimArm``) live below the loop's package.
    """

    state_id: str
    params: dict[str, Any] = field(default_factory=dict)
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.state_id:
            raise ValueError("StartState.state_id: empty")


class StartStateGone(LookupError):
    """A kept state the robot can no longer set up: a mid-episode (frontier) snapshot that lived only in
    memory (a resumed session, or one evicted from the snapshot store). Unlike a fresh start's seed,
    it cannot be rebuilt; whoever chose it drops it and says so."""


@dataclass(frozen=True)
class TaskTruth:
    """A simulator's ground truth of one state: what no real arm can report.

    ``potential`` is the task-phase potential in [0, 1] (1 exactly when ``success``), defined per
    task in ``piper_driver.sim.tasks``; ``phase`` names the task phase the state is in.
    """

    potential: float
    success: bool
    phase: str

    def __post_init__(self) -> None:
        _check_finite(self, ("potential",))
        if not 0.0 <= self.potential <= 1.0:
            raise ValidationError(f"TaskTruth.potential: expected 0..1, got {self.potential}")
        if not self.phase:
            raise ValidationError("TaskTruth.phase: empty phase name")


@dataclass(frozen=True)
class Transition:
    """One step: the observation, the action taken, the critic's verdict and, in simulation, the truth.

    ``progress_pct`` and ``done_prob`` are the critic's answers: signed progress from this
    observation to the next one (None when the answer could not be parsed: no reward is invented)
    and the probability that the next one shows the task done. ``reward`` and ``done`` are what
    trains and ends the episode, from the session's reward source (the critic by default, or the
    simulator's ground truth); ``critic_done`` is the critic's own done rule on this step whatever
    the source (left out, it is ``done``: the critic's source).
    ``gt_progress`` (change of the task-phase potential over the step, fraction of the task),
    ``gt_done`` (ground-truth success after the step) and ``gt_phase`` (phase at the step's start)
    are None/"" without a simulator. ``human`` marks steps a person teleoperated.
    """

    observation: Observation
    action: PolicyAction
    progress_pct: float | None
    reward: float
    done_prob: float
    done: bool
    human: bool = False
    critic_done: bool | None = None
    gt_progress: float | None = None
    gt_done: bool | None = None
    gt_phase: str = ""

    def __post_init__(self) -> None:
        if self.critic_done is None:
            object.__setattr__(self, "critic_done", bool(self.done))
        if (self.gt_progress is None) != (self.gt_done is None):
            raise ValidationError("Transition.gt_progress and gt_done: both set (simulation) or both None")

    @property
    def has_ground_truth(self) -> bool:
        return self.gt_progress is not None


@dataclass
class Episode:
    """A finished (or aborted) episode of one robot, in the order it happened."""

    episode_id: str
    robot_id: str
    task: str
    transitions: list[Transition] = field(default_factory=list)
    final_observation: Observation | None = None
    termination: Termination | None = None
    success: bool | None = None  # ground truth, where a simulator knows it (reward only in sim_* sessions)
    policy_version: int = 0
    start_state_id: str | None = None  # set when the episode began from a stored (return-and-explore) state

    @property
    def length(self) -> int:
        return len(self.transitions)

    @property
    def episode_return(self) -> float:
        return float(sum(t.reward for t in self.transitions))

    @property
    def human_steps(self) -> int:
        return sum(1 for t in self.transitions if t.human)

    @property
    def succeeded(self) -> bool:
        """Whether the episode succeeded: the one rule behind every success rate (per-robot sampling,
        return-and-explore, the episode manager, evaluations).

        Ground truth where a simulator gave it (``success``), else the critic's verdict: without ground
        truth (a real arm) the only success signal is the critic's done probability crossing its
        threshold, i.e. ``termination == DONE``.
        """
        if self.success is not None:
            return bool(self.success)
        return self.termination is Termination.DONE

    @property
    def policy_succeeded(self) -> bool:
        """Success of the policy on its own: an episode a person (or the scripted operator) helped is a failure
        of the policy, for return-and-explore and the episode manager's success rate alike (the session report
        applies the same rule to episodes.jsonl rows: vlac.session.report.policy_succeeded)."""
        return self.succeeded and self.human_steps == 0
