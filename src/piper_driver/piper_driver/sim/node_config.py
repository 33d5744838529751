"""Every parameter of the sim node, declared once (``vlac_core.config`` style).

The sim node stands in for the driver node *and* the camera node, so the names it shares
with them mean the same (``auto_enable``, ``gripper_exist``, ``frame_id``, ``publish_rate_hz``,
the safety envelope's keys and defaults, which are those of ``DriverNodeConfig``); the rest
say what to simulate and how fast simulated time runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.safety import SafetyConfig
from piper_driver.sim.backend import SimConfig
from piper_driver.sim.variation import VariationSwitches
from vlac_core.config import ConfigError, param, validate


@dataclass(frozen=True)
class SimNodeConfig:
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
    # --- the arm, as the driver node names it ---
    auto_enable: bool = param(True, "enable the motors when the node is activated")
    gripper_exist: bool = param(True, "the arm carries the parallel gripper")
    gripper_open_mm: float = param(70.0, "gripper opening for open: 1, mm", low=1.0, high=70.0)
    autostart: bool = param(True, "configure and activate at start-up, without a lifecycle manager")
    frame_id: str = param("base_link", "frame of end_pose_stamped (the arm's base)")
    publish_rate_hz: float = param(50.0, "joint_states_single / end_pose rate, Hz", low=1.0, high=500.0)
    diagnostics_period_s: float = param(1.0, "diagnostics period, s", low=0.05, high=60.0)
    # --- safety envelope (same keys and defaults as the driver node) ---
    workspace_min_mm: tuple[float, ...] = param((0.0, -400.0, 50.0), "workspace box lower corner x y z, mm")
    workspace_max_mm: tuple[float, ...] = param((550.0, 400.0, 550.0), "workspace box upper corner x y z, mm")
    max_step_mm: float = param(60.0, "longest translation of one action, mm", low=0.1, high=500.0)
    max_step_deg: float = param(30.0, "largest rotation per axis of one action, deg", low=0.1, high=180.0)
    gripper_min_mm: float = param(0.0, "smallest gripper opening commanded, mm", low=0.0, high=80.0)
    gripper_max_mm: float = param(70.0, "largest gripper opening commanded, mm", low=0.0, high=80.0)
    max_observation_age_s: float = param(1.0, "reject actions answering older observations, s", low=0.01)
    watchdog_timeout_s: float = param(2.0, "hold the arm when no command came for this long, s", low=0.05)
    min_command_period_s: float = param(0.05, "reject commands closer together than this, s", low=0.0, high=10.0)

    def __post_init__(self) -> None:
        validate(self)

    def check(self) -> None:
        """Rules across fields (``from_mapping`` calls this after the per-field checks)."""
        try:
            VariationSwitches.parse(self.variation)
            self.sim_config()
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self.safety_config()

    def sim_config(self) -> SimConfig:
        return SimConfig(
            control_period_s=self.control_period_s,
            image_size_px=self.image_size_px,
            wrist_camera=self.wrist_camera,
            step_mode="external",
            gripper_open_mm=self.gripper_open_mm,
            variation=VariationSwitches.parse(self.variation),
        )

    def safety_config(self) -> SafetyConfig:
        return SafetyConfig(
            workspace_min_mm=tuple(self.workspace_min_mm),
            workspace_max_mm=tuple(self.workspace_max_mm),
            max_step_mm=self.max_step_mm,
            max_step_deg=self.max_step_deg,
            gripper_min_mm=self.gripper_min_mm,
            gripper_max_mm=self.gripper_max_mm,
            max_observation_age_s=self.max_observation_age_s,
            watchdog_timeout_s=self.watchdog_timeout_s,
            min_command_period_s=self.min_command_period_s,
        )
