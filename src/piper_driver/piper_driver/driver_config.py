"""Every parameter of the PiPER driver node, declared once (``vlac_core.config`` style).

The node declares these as ROS parameters (``vlac_core.ros.params.declare_config``); the
embedded runtime reads the same section of the session YAML (``load_section``). Names follow
AgileX's piper_ros where one exists (``can_port``, ``auto_enable``, ``gripper_exist``). The
flat fields are split into the backend's ``SdkConfig`` and the envelope's ``SafetyConfig``,
which validate themselves again; ``check`` adds the cross-field rules (home inside the box).
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.config_checks import ConfigError
from piper_driver.safety import SafetyConfig
from piper_driver.sdk_backend import SdkConfig
from vlac_core.config import param, validate
from vlac_core.types import EndPose


@dataclass(frozen=True)
class DriverNodeConfig:
    # --- link and arm (piper_ros names first) ---
    can_port: str = param("can0", "CAN interface of this arm (one USB-CAN adapter per arm)")
    bustype: str = param("socketcan", "python-can interface: socketcan on robots, virtual for the fake arm")
    auto_enable: bool = param(True, "enable the motors when the node is activated")
    gripper_exist: bool = param(True, "the arm carries the AgileX parallel gripper")
    speed_rate_pct: int = param(50, "MOVE P speed, percent of the arm's maximum", low=1, high=100)
    gripper_effort_mnm: int = param(1000, "gripper effort, 0.001 N·m", low=0, high=5000)
    gripper_open_mm: float = param(70.0, "gripper opening for open: 1, mm", low=0.0, high=80.0)
    gripper_closed_mm: float = param(0.0, "gripper opening for open: 0, mm", low=0.0, high=80.0)
    enable_timeout_s: float = param(5.0, "give up enabling after this long, s", low=0.1, high=60.0)
    link_timeout_s: float = param(0.5, "no arm feedback for this long = CAN link lost, s", low=0.05, high=10.0)
    home_pose: tuple[float, ...] = param(
        (57.0, 0.0, 215.0, 0.0, 85.0, 0.0), "reset pose: x y z (mm), roll pitch yaw (deg)"
    )
    home_timeout_s: float = param(10.0, "give up homing after this long, s", low=0.5, high=120.0)
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
        validate(self)  # ranges above, also for configs built in code rather than from a file

    def sdk_config(self) -> SdkConfig:
        return SdkConfig(
            can_port=self.can_port,
            bustype=self.bustype,
            speed_rate_pct=self.speed_rate_pct,
            gripper_exist=self.gripper_exist,
            gripper_effort_mnm=self.gripper_effort_mnm,
            gripper_open_mm=self.gripper_open_mm,
            gripper_closed_mm=self.gripper_closed_mm,
            link_timeout_s=self.link_timeout_s,
            home_pose=tuple(self.home_pose),
            home_timeout_s=self.home_timeout_s,
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

    def check(self) -> None:
        """Rules across fields (``from_mapping`` calls this after the per-field checks)."""
        self.sdk_config()
        safety = self.safety_config()
        if not safety.contains(EndPose(*self.home_pose)):
            raise ConfigError(
                f"home_pose={list(self.home_pose)}: expected a pose inside the workspace box "
                f"{list(safety.workspace_min_mm)}..{list(safety.workspace_max_mm)} mm"
            )
        for key in ("gripper_open_mm", "gripper_closed_mm"):
            value = getattr(self, key)
            if not safety.gripper_min_mm <= value <= safety.gripper_max_mm:
                raise ConfigError(
                    f"{key}={value}: expected within gripper_min_mm..gripper_max_mm "
                    f"({safety.gripper_min_mm}..{safety.gripper_max_mm})"
                )
