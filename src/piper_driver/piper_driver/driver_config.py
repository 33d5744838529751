"""Every parameter of the arm node with ``backend: sdk`` (section ``driver_node``), declared once.

The node declares these as ROS parameters (``vlac_core.ros.params.declare_config``); the
embedded runtime reads the same section of the session YAML (``load_section``). Names follow
AgileX's piper_ros where one exists (``can_port``, ``auto_enable``, ``gripper_exist``). The
flat fields are split into the backend's ``SdkConfig`` and the envelope's ``SafetyConfig``,
which validate themselves again; ``check`` adds the cross-field rules (home inside the box).
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.arm_node_config import ArmNodeConfig
from piper_driver.config_checks import ConfigError
from piper_driver.sdk_backend import SdkConfig
from vlac_core.config import param
from vlac_core.types import EndPose


@dataclass(frozen=True)
class DriverNodeConfig(ArmNodeConfig):
    # --- link and arm (piper_ros names first) ---
    can_port: str = param("can0", "CAN interface of this arm (one USB-CAN adapter per arm)")
    bustype: str = param("socketcan", "python-can interface: socketcan on robots, virtual for the fake arm")
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
