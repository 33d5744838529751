"""What the one arm node serves, per backend, without ROS.

The arm node (``piper_driver.ros.arm_node``) is one lifecycle shell; its parameter ``backend``
chooses the ``NodeArm`` behind it: ``sdk`` (``SdkNodeArm``: a PiPER over CAN) or ``sim``
(``piper_driver.sim.node_arm.SimNodeArm``: the simulated arm and its cameras). Everything that
differs between a real and a simulated arm lives in these classes: how the arm is opened, how often
its clock ticks, how its stamps map onto the node's clock, which resets it offers, what its
diagnostics name, which cameras it has. So the shell never asks which backend it runs, and a new
robot is a new ``NodeArm`` plus a line in ``BACKENDS``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

import numpy as np

from piper_driver.driver_config import DriverNodeConfig
from piper_driver.robot import ArmState, MotionRefused
from piper_driver.ros_units import to_ros_time_s
from piper_driver.safe_arm import SafeArm
from piper_driver.sdk_backend import SdkBackend
from vlac_core.config import param
from vlac_core.types import EndPose

#: backend parameter -> (module, class) of its NodeArm; imported on use, so a robot PC needs no MuJoCo.
BACKENDS = {"sdk": ("piper_driver.node_arm", "SdkNodeArm"), "sim": ("piper_driver.sim.node_arm", "SimNodeArm")}
RESET_MODES = ("home", "random", "stored")
#: Period of the command watchdog of an arm whose clock the node does not drive, s.
WATCHDOG_PERIOD_S = 0.05


@dataclass(frozen=True)
class ArmBackendChoice:
    """The one parameter the arm node reads before it knows which config to declare."""

    backend: str = param("sdk", "what the node drives: sdk (a PiPER over CAN) or sim (MuJoCo)", choices=tuple(BACKENDS))


@dataclass(frozen=True)
class ResetOutcome:
    ok: bool
    message: str
    end_pose: EndPose | None = None


@dataclass(frozen=True)
class CameraSpec:
    """One camera a NodeArm renders itself (a real arm's cameras are camera nodes)."""

    name: str  # key of ``NodeArm.images()``
    topic: str
    frame_id: str


class NodeArm(ABC):
    """One arm as the arm node serves it; ``clock`` is the node's ROS clock (seconds)."""

    config_type: type
    safe_arm: SafeArm
    #: Modes of the reset_arm action this arm offers (a goal with another mode is refused).
    reset_modes: tuple[str, ...] = ("home",)
    cameras: tuple[CameraSpec, ...] = ()
    camera_rate_hz: float = 0.0

    @property
    @abstractmethod
    def tick_period_s(self) -> float:
        """Wall-clock period of ``tick``."""

    @abstractmethod
    def tick(self) -> bool:
        """The arm's periodic work (command watchdog; simulated time). True if the watchdog held the arm."""

    @abstractmethod
    def enable(self) -> None:
        """Enable the motors (TimeoutError, MotionRefused or ConnectionError with the reason)."""

    @abstractmethod
    def stamp_s(self, state: ArmState, ros_now_s: float) -> float:
        """``state``'s time on the node's ROS clock."""

    @abstractmethod
    def identity(self) -> tuple[str, str]:
        """(what the diagnostics name, hardware_id)."""

    @abstractmethod
    def diagnostics_extra(self) -> dict[str, object]:
        """Facts worth a key/value line on /diagnostics."""

    @abstractmethod
    def configured_message(self) -> str:
        """What the node logs once configured."""

    def reset(self, mode: str, seed: int = 0, state_id: str = "") -> ResetOutcome:
        """Bring the arm (and a simulated scene) to a start state; never raises for a bad request."""
        if mode not in self.reset_modes:
            return ResetOutcome(False, f"mode: expected one of {self.reset_modes}, got {mode!r}")
        try:
            message = self._reset(mode, seed, state_id)
        except (MotionRefused, ConnectionError, TimeoutError, ValueError) as error:
            return ResetOutcome(False, f"reset ({mode}) failed: {error}")
        return ResetOutcome(True, message, self.safe_arm.observe().end_pose)

    def _reset(self, mode: str, seed: int, state_id: str) -> str:
        """Run a reset of an offered mode; returns what it did. Home is every arm's."""
        self.safe_arm.home()
        return "home"

    def images(self) -> dict[str, np.ndarray]:
        """{camera name: HxWx3 uint8} of ``cameras`` now."""
        return {}

    def start_state_id(self) -> str | None:
        """Id of the start state the last reset set up (for reset mode stored), or None when none is kept."""
        return None

    def close(self) -> None:
        self.safe_arm.disconnect()


class SdkNodeArm(NodeArm):
    """A PiPER over CAN behind the safety envelope; configure fails (ConnectionError) when it does not answer."""

    config_type = DriverNodeConfig

    def __init__(self, config: DriverNodeConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.safe_arm = SafeArm(SdkBackend(config.sdk_config()), config.safety_config(), clock=clock)
        self.safe_arm.connect()

    @property
    def tick_period_s(self) -> float:
        return WATCHDOG_PERIOD_S

    def tick(self) -> bool:
        return self.safe_arm.tick()

    def enable(self) -> None:
        self.safe_arm.enable(self.config.enable_timeout_s)

    def stamp_s(self, state: ArmState, ros_now_s: float) -> float:
        """The SDK stamps feedback on the monotonic clock: mapped onto the ROS clock, keeping its age."""
        return to_ros_time_s(state.stamp_s, time.monotonic(), ros_now_s)

    def identity(self) -> tuple[str, str]:
        return f"PiPER on {self.config.can_port}", self.config.can_port

    def diagnostics_extra(self) -> dict[str, object]:
        return {"can_port": self.config.can_port}

    def configured_message(self) -> str:
        return f"connected to the PiPER on {self.config.can_port}"


def node_arm_class(backend: str) -> type[NodeArm]:
    """The NodeArm of a ``backend`` parameter value (ValueError naming the known ones)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {tuple(BACKENDS)}, got {backend!r}")
    module, name = BACKENDS[backend]
    return getattr(import_module(module), name)
