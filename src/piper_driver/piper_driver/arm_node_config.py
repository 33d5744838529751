"""Parameters the arm node has with either backend, declared once.

A simulated arm stands in for a real one, so the names both backends share (piper_ros'
``auto_enable`` and ``gripper_exist``, what the node publishes) live in this one base class, which
extends the safety envelope's own declarations (``SafetyConfig``: its keys, ranges and defaults are
declared there only); each backend's config (``DriverNodeConfig`` for ``sdk``, ``SimNodeConfig`` for
``sim``) adds only what is its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.safety import SafetyConfig
from vlac_core.config import param


@dataclass(frozen=True)
class ArmNodeConfig(SafetyConfig):
    """The keys of either backend's section; the safety envelope's come from ``SafetyConfig``."""

    # --- the arm, as piper_ros names it ---
    auto_enable: bool = param(True, "enable the motors when the node is activated")
    gripper_exist: bool = param(True, "the arm carries the AgileX parallel gripper")
    # --- the node ---
    autostart: bool = param(True, "configure and activate at start-up, without a lifecycle manager")
    # --- what the node publishes ---
    frame_id: str = param("base_link", "frame of end_pose_stamped (the arm's base)")
    publish_rate_hz: float = param(50.0, "joint_states_single / end_pose rate, Hz", low=1.0, high=500.0)
    diagnostics_period_s: float = param(1.0, "diagnostics period, s", low=0.05, high=60.0)

    def __post_init__(self) -> None:
        super().__post_init__()  # every key's range (the envelope's too) and the envelope's own rules
