"""Every parameter of the arm node with ``backend: sdk`` (section ``driver_node``), declared once.

The node declares these as ROS parameters (``vlac_core.ros.params.declare_config``); the
embedded runtime reads the same section of the session YAML (``load_section``). Names follow
AgileX's piper_ros where one exists (``can_port``, ``auto_enable``, ``gripper_exist``). The section
extends the classes that declare its keys (the backend's ``SdkConfig``, the envelope's
``SafetyConfig`` through ``ArmNodeConfig``); ``sdk_config()`` and ``safety_config()`` pick their
parts, and ``check`` adds the rules across them (home inside the box).
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.arm_node_config import ArmNodeConfig
from piper_driver.config_checks import ConfigError
from piper_driver.sdk_backend import SdkConfig
from vlac_core.config import param
from vlac_core.types import EndPose


@dataclass(frozen=True)
class DriverNodeConfig(ArmNodeConfig, SdkConfig):
    """The ``driver_node`` section: the arm node's keys (``ArmNodeConfig``, with the safety envelope's) and
    the SDK backend's (``SdkConfig``), each declared once in its own class; enabling is the node's own."""

    enable_timeout_s: float = param(5.0, "give up enabling after this long, s", low=0.1, high=60.0)

    def __post_init__(self) -> None:
        ArmNodeConfig.__post_init__(self)  # every key's range (the backend's too) and the envelope's rules
        self._check_link_and_home()  # the backend's own rules

    def check(self) -> None:
        """Rules across fields (``from_mapping`` calls this after the per-field checks)."""
        # The section is its SdkConfig and SafetyConfig, both checked at construction: only rules across them.
        if not self.contains(EndPose(*self.home_pose)):
            raise ConfigError(
                f"home_pose={list(self.home_pose)}: expected a pose inside the workspace box "
                f"{list(self.workspace_min_mm)}..{list(self.workspace_max_mm)} mm"
            )
        for key in ("gripper_open_mm", "gripper_closed_mm"):
            value = getattr(self, key)
            if not self.gripper_min_mm <= value <= self.gripper_max_mm:
                raise ConfigError(
                    f"{key}={value}: expected within gripper_min_mm..gripper_max_mm "
                    f"({self.gripper_min_mm}..{self.gripper_max_mm})"
                )
