"""The robot backend interface that every arm implementation (piper_sdk, MuJoCo) provides.

The episode loop and the arm node talk only to this interface, so a
new arm is a new file, not an edit of the loop (the LeRobot idea). Motion is
asynchronous: ``execute`` starts a move and returns at once, so the caller can take
the next observation and run inference while the arm moves (the paper's
asynchronous execution).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum

from vlac_core.types import DeltaAction, EndPose


class RobotState(str, Enum):
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"  # link up, motors not enabled: refuses motion
    ENABLED = "enabled"  # accepts motion
    ERROR = "error"  # link lost, enable failed, hardware fault: refuses motion until cleared
    ESTOPPED = "estopped"  # emergency stop latched: refuses motion until resumed


@dataclass(frozen=True)
class ArmState:
    """What the arm reports about itself at one instant."""

    end_pose: EndPose
    joints_rad: tuple[float, ...]  # joint1..joint6
    gripper_mm: float  # opening of the parallel gripper
    stamp_s: float  # monotonic time of the reading
    moving: bool = False


@dataclass(frozen=True)
class RobotStatus:
    """Health of a backend, for diagnostics and for refusing motion with a reason."""

    state: RobotState
    message: str = ""  # why the arm is in ERROR / ESTOPPED, or last notable event
    counters: dict[str, int] = field(default_factory=dict)  # e.g. rejected actions by reason

    @property
    def accepts_motion(self) -> bool:
        return self.state is RobotState.ENABLED


class MotionRefused(RuntimeError):
    """Raised when a backend will not move (not enabled, link lost, e-stop, envelope rejection)."""


class RobotBackend(ABC):
    """One arm. Implementations: ``SdkBackend`` (piper_sdk over CAN), ``SimBackend`` (MuJoCo)."""

    @abstractmethod
    def connect(self) -> None:
        """Open the link (CAN bus, simulation). Raises ConnectionError with the reason."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close the link; safe to call twice."""

    @abstractmethod
    def enable(self, timeout_s: float = 5.0) -> None:
        """Enable the motors (clearing errors first); raises TimeoutError naming what did not come up."""

    @abstractmethod
    def disable(self) -> None:
        """Disable the motors (the arm holds nothing: only do this when it rests)."""

    @abstractmethod
    def observe(self) -> ArmState:
        """Latest arm state; never blocks on motion."""

    @abstractmethod
    def execute(self, delta: DeltaAction) -> None:
        """Start a relative end-pose move and gripper command; returns without waiting for it.

        Raises MotionRefused (and moves nothing) when the backend is not ENABLED.
        Callers pass actions through the safety envelope first.
        """

    #: Opening at or above which ``move_to``'s default fallback opens the gripper (PiPER stroke ~0-80 mm).
    GRIPPER_OPEN_THRESHOLD_MM = 40.0

    def move_to(self, target: EndPose, gripper_mm: float) -> None:
        """Start an absolute end-pose move and gripper command; returns without waiting for it.

        ``SafeArm`` sends what the safety envelope checked (an absolute, clamped target) through
        this method, so what was checked is exactly what is sent. Backends should override it.
        The default, for backends written before it existed, turns the target into an integer
        ``DeltaAction`` from the observed pose, truncated toward that pose so it never goes past
        the checked target, and opens the gripper when ``gripper_mm`` reaches
        ``GRIPPER_OPEN_THRESHOLD_MM``. Raises MotionRefused (and moves nothing) when not ENABLED.
        """
        here = self.observe().end_pose.as_array()
        delta = target.as_array() - here
        delta[3:] = (delta[3:] + 180.0) % 360.0 - 180.0  # shortest way round, -180..180 deg
        steps = [int(v) for v in delta]  # int() truncates toward zero: toward the current pose
        self.execute(DeltaAction(*steps, open=int(gripper_mm >= self.GRIPPER_OPEN_THRESHOLD_MM)))

    @abstractmethod
    def wait_until_still(self, timeout_s: float) -> bool:
        """Block until the current move ends (True) or the time-out passes (False)."""

    @abstractmethod
    def home(self) -> None:
        """Move to the home pose (blocking)."""

    @abstractmethod
    def emergency_stop(self) -> None:
        """Stop now and latch ESTOPPED until ``resume`` is called."""

    @abstractmethod
    def resume(self) -> None:
        """Release an emergency stop (the arm stays where it is)."""

    @abstractmethod
    def status(self) -> RobotStatus:
        """Current health, with the reason for any refusal."""
