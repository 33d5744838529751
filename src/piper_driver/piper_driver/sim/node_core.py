"""The sim node's logic without ROS: a simulated arm behind the safety envelope, on an external clock.

The node owns wall-clock timers; this object owns what they do: advance simulated time by one
tick, take actions through ``SafeArm`` (exactly the path the real arm's commands take), reset
the scene by mode (``home``, ``random`` with a seed, ``stored`` start states for
return-and-explore) and render the cameras. Tested without ROS; the node only converts messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from piper_driver.robot import MotionRefused
from piper_driver.safe_arm import SafeArm
from piper_driver.sim.backend import SimBackend, SimSnapshot
from piper_driver.sim.node_config import SimNodeConfig
from piper_driver.sim.tasks import make_task
from vlac_core.types import EndPose

RESET_MODES = ("home", "random", "stored")


@dataclass(frozen=True)
class ResetOutcome:
    ok: bool
    message: str
    end_pose: EndPose | None = None


class SimNodeCore:
    """One simulated arm as the sim node serves it; ``clock`` is the node's clock (seconds)."""

    def __init__(self, config: SimNodeConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.backend = SimBackend(make_task(config.task), config.sim_config())
        self.arm = SafeArm(self.backend, config.safety_config(), clock=clock)
        self._stored: dict[str, SimSnapshot] = {}
        self._lock = threading.Lock()

    @property
    def task_text(self) -> str:
        return self.backend.task.text

    def start(self) -> None:
        """Build the scene (ConnectionError with the reason if it cannot be built or rendered)."""
        self.arm.connect()
        self.backend.reset(self.config.seed)

    def tick(self) -> bool:
        """Advance simulated time by one tick; run the command watchdog. True if the watchdog held the arm."""
        self.backend.advance(self.config.physics_tick_s)
        return self.arm.tick()

    def images(self) -> dict[str, np.ndarray]:
        """{"front": HxWx3 uint8[, "wrist": ...]} of the scene now."""
        frames = self.backend.images()
        names = ("front", "wrist")[: len(frames)]
        return dict(zip(names, frames, strict=True))

    def reset(self, mode: str, seed: int = 0, state_id: str = "") -> ResetOutcome:
        """Bring the arm (and, in simulation, the scene) to a start state; never raises for bad requests."""
        try:
            if mode == "home":
                self.arm.home()
            elif mode == "random":
                self.backend.reset(int(seed))
            elif mode == "stored":
                with self._lock:
                    snapshot = self._stored.get(state_id)
                    known = sorted(self._stored)
                if snapshot is None:
                    return ResetOutcome(False, f"state_id: unknown stored state {state_id!r}; known: {known}")
                self.backend.restore_state(snapshot)
            else:
                return ResetOutcome(False, f"mode: expected one of {RESET_MODES}, got {mode!r}")
        except (MotionRefused, ConnectionError, TimeoutError, ValueError) as error:
            return ResetOutcome(False, f"reset ({mode}) failed: {error}")
        message = {"home": "home", "random": f"scene seed {seed}", "stored": f"stored state {state_id}"}[mode]
        return ResetOutcome(True, message, self.arm.observe().end_pose)

    def store_state(self) -> str:
        """Keep the current full simulation state as a start state; returns its id (for reset mode stored)."""
        snapshot = self.backend.save_state()
        with self._lock:
            state_id = f"{self.config.task}_{len(self._stored)}"
            self._stored[state_id] = snapshot
        return state_id

    def diagnostics_extra(self) -> dict[str, object]:
        """Node-side facts for /diagnostics; ground-truth success is reported for evaluation only."""
        return {
            "task": self.config.task,
            "seed": self.backend.seed,
            "sim_time_s": f"{self.backend.observe().stamp_s:.3f}",
            "ground_truth_success": str(self.backend.success()).lower(),
        }
