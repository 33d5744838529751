"""Every parameter of the arm node with ``backend: sim`` (section ``sim_node``), declared once.

A simulated arm stands in for a real arm's driver *and* camera: what it shares with the ``sdk``
backend (piper_ros names, published topics, the safety envelope) comes from ``ArmNodeConfig``, so
the two cannot drift apart; the fields here say what to simulate and how fast simulated time runs.
The embedded session's simulated arms read the same section.
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.arm_node_config import ArmNodeConfig
from piper_driver.sim.backend import SimConfig
from piper_driver.sim.variation import VariationSwitches
from vlac_core.config import ConfigError, param


@dataclass(frozen=True)
class SimNodeConfig(ArmNodeConfig):
    # --- what to simulate ---
    task: str = param("pick_bowl", "simulated task", choices=("pick_bowl", "sweep"))
    seed: int = param(0, "scene seed of the first episode (reset_arm mode random takes its own)", low=0)
    variation: str = param("none", "scene variation switches: none, all, or a comma list of lighting,table,camera")
    control_period_s: float = param(0.2, "time one action's move takes, s (simulated)", low=0.01, high=2.0)
    physics_tick_s: float = param(0.02, "simulated time advanced per clock tick, s", low=0.002, high=0.2)
    realtime_factor: float = param(1.0, "simulated seconds per wall-clock second", low=0.05, high=20.0)
    # --- cameras (what the camera nodes would publish) ---
    image_size_px: int = param(128, "square image size of the simulated cameras, px", low=32, high=640)
    camera_rate_hz: float = param(10.0, "camera image rate, Hz", low=0.5, high=60.0)
    wrist_camera: bool = param(False, "also publish the wrist camera")
    front_image_topic: str = param("front_camera/image_raw", "topic of the front camera images (rgb8)")
    wrist_image_topic: str = param("wrist_camera/image_raw", "topic of the wrist camera images (rgb8)")
    front_frame_id: str = param("front_camera", "frame_id of the front camera images")
    wrist_frame_id: str = param("wrist_camera", "frame_id of the wrist camera images")
    # --- the gripper (the simulated fingers open 70 mm at most) ---
    gripper_open_mm: float = param(70.0, "gripper opening for open: 1, mm", low=1.0, high=70.0)

    def check(self) -> None:
        """Rules across fields (``from_mapping`` calls this after the per-field checks)."""
        try:
            self.sim_config()  # parses the variation switches; the envelope was checked at construction
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def sim_config(self) -> SimConfig:
        return SimConfig(
            control_period_s=self.control_period_s,
            image_size_px=self.image_size_px,
            wrist_camera=self.wrist_camera,
            step_mode="external",
            gripper_open_mm=self.gripper_open_mm,
            variation=VariationSwitches.parse(self.variation),
        )
