"""Parameters the arm node has with either backend, declared once.

A simulated arm stands in for a real one, so the names both backends share (piper_ros'
``auto_enable`` and ``gripper_exist``, what the node publishes, and the safety envelope's keys and
defaults) live in this one base class; each backend's config (``DriverNodeConfig`` for ``sdk``,
``SimNodeConfig`` for ``sim``) adds only what is its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.safety import SafetyConfig
from vlac_core.config import param, validate


@dataclass(frozen=True)
class ArmNodeConfig:
    # --- the arm, as piper_ros names it ---
    auto_enable: bool = param(True, "enable the motors when the node is activated")
    gripper_exist: bool = param(True, "the arm carries the AgileX parallel gripper")
    # --- the node ---
    autostart: bool = param(True, "configure and activate at start-up, without a lifecycle manager")
    # --- what the node publishes ---
    frame_id: str = param("base_link", "frame of end_pose_stamped (the arm's base)")
    publish_rate_hz: float = param(50.0, "joint_states_single / end_pose rate, Hz", low=1.0, high=500.0)
    diagnostics_period_s: float = param(1.0, "diagnostics period, s", low=0.05, high=60.0)
    # --- safety envelope ---
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
        validate(self)  # ranges, also for configs built in code rather than from a file

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
