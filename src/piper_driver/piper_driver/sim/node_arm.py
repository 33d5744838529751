"""The arm node's ``sim`` backend: the one simulated arm (``SimArm``) on the node's clock, with its cameras.

The node's timer advances simulated time (``physics_tick_s`` every ``physics_tick_s /
realtime_factor`` wall seconds), so observations taken while an action runs see the arm moving.
Resets by mode: ``home``, ``random`` (the scene of a seed) and ``stored`` (a start state id, the
``SimArm`` scheme ``<task>-seed<n>``: the one ``start_state_id`` answers after a reset).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from piper_driver.node_arm import RESET_MODES, CameraSpec, NodeArm
from piper_driver.robot import ArmState
from piper_driver.sim.arm import SimArm
from piper_driver.sim.node_config import SimNodeConfig
from vlac_core.types import StartState


class SimNodeArm(NodeArm):
    """Builds the scene and renders it once: ConnectionError, RuntimeError (no GL) or ValueError when it cannot."""

    config_type = SimNodeConfig
    reset_modes = RESET_MODES

    def __init__(self, config: SimNodeConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.sim = SimArm(
            f"sim:{config.task}",
            config.task,
            config.sim_config(),
            config.safety_config(),
            first_seed=config.seed,
            clock=clock,
            enabled=False,
        )
        self.safe_arm = self.sim.safe_arm
        try:
            self.sim.images()
        except BaseException:
            self.sim.close()
            raise
        cameras = [CameraSpec("front", config.front_image_topic, config.front_frame_id)]
        if config.wrist_camera:
            cameras.append(CameraSpec("wrist", config.wrist_image_topic, config.wrist_frame_id))
        self.cameras = tuple(cameras)
        self.camera_rate_hz = config.camera_rate_hz

    @property
    def tick_period_s(self) -> float:
        return self.config.physics_tick_s / self.config.realtime_factor

    def tick(self) -> bool:
        return self.sim.tick(self.config.physics_tick_s)

    def enable(self) -> None:
        self.safe_arm.enable()

    def stamp_s(self, state: ArmState, ros_now_s: float) -> float:
        """Simulated observations are current."""
        return ros_now_s

    def identity(self) -> tuple[str, str]:
        return f"simulated PiPER ({self.config.task})", f"sim:{self.config.task}"

    def diagnostics_extra(self) -> dict[str, object]:
        """Ground-truth success is reported for evaluation only."""
        backend = self.sim.backend
        return {
            "task": self.config.task,
            "seed": backend.seed,
            "sim_time_s": f"{backend.sim_time_s():.3f}",
            "ground_truth_success": str(backend.success()).lower(),
        }

    def configured_message(self) -> str:
        return f"simulating {self.config.task!r} ({self.sim.task_text}), seed {self.config.seed}"

    def _reset(self, mode: str, seed: int, state_id: str) -> str:
        if mode == "random":
            return f"start state {self.sim.reset_to_seed(seed, image=False).state_id}"
        if mode == "stored":
            return f"start state {self.sim.reset(StartState(state_id)).state_id}"
        return super()._reset(mode, seed, state_id)

    def images(self) -> dict[str, np.ndarray]:
        return self.sim.images()

    def start_state_id(self) -> str | None:
        state = self.sim.start_state
        return None if state is None else state.state_id
