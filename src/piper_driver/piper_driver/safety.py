"""The safety envelope every action passes before any backend moves: reject or clamp, and count.

Input is whatever the actor produced — a ``DeltaAction``, or raw numbers that may be NaN, inf,
huge, strings or None — plus the arm's current pose, the stamp of the observation the action
answers and the time now. Output is either an absolute target (``EndPose`` + gripper opening)
that is inside the envelope, with the clamps that were applied, or a rejection with a reason.
Rejections move nothing; every rejection and clamp is counted by reason for diagnostics.

Order of checks: the shape and type of the input, finiteness, observation age, command rate;
then the step limits (translation as a vector, so direction is kept; rotation per axis), the
workspace box, the gripper range.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from piper_driver.config_checks import require, require_number
from vlac_core.config import param, validate
from vlac_core.types import DeltaAction, EndPose

_NUMBER_TYPES = (int, float, np.integer, np.floating)
_FUTURE_STAMP_TOLERANCE_S = 0.05  # clocks of two processes on one host may differ this much


@dataclass(frozen=True)
class SafetyConfig:
    """Limits of the envelope, declared once (``vlac_core.config``: each key with its range and meaning).

    Positions in the arm's base frame (mm), angles in degrees. The arm node's sections extend this
    class (``piper_driver.arm_node_config.ArmNodeConfig``), so a session file, the node's ROS
    parameters and the envelope read the same declarations.
    """

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
        validate(self)  # each key's type and range
        for key in ("workspace_min_mm", "workspace_max_mm"):
            value = getattr(self, key)
            require(isinstance(value, (tuple, list)) and len(value) == 3, key, value, "3 numbers (x, y, z in mm)")
            for axis, v in zip("xyz", value, strict=True):
                require_number(f"{key}.{axis}", v)
        for axis, low, high in zip("xyz", self.workspace_min_mm, self.workspace_max_mm, strict=True):
            require(low < high, f"workspace_max_mm.{axis}", high, f"more than workspace_min_mm.{axis} = {low}")
        require(
            self.gripper_min_mm <= self.gripper_max_mm,
            "gripper_max_mm",
            self.gripper_max_mm,
            f"at least gripper_min_mm = {self.gripper_min_mm}",
        )

    def safety_config(self) -> SafetyConfig:
        """The envelope's part of a config that extends this class (the arm node's section)."""
        return SafetyConfig(**{f.name: getattr(self, f.name) for f in fields(SafetyConfig)})

    def contains(self, pose: EndPose) -> bool:
        xyz = (pose.x_mm, pose.y_mm, pose.z_mm)
        return all(lo <= v <= hi for v, lo, hi in zip(xyz, self.workspace_min_mm, self.workspace_max_mm, strict=True))


@dataclass(frozen=True)
class SafeCommand:
    """A target the envelope let through; ``clamps`` names each limit that changed it."""

    target: EndPose
    gripper_mm: float
    clamps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rejection:
    reason: str  # counter key, e.g. "nonfinite"
    detail: str  # a sentence for logs and diagnostics


@dataclass(frozen=True)
class SafetyDecision:
    command: SafeCommand | None = None
    rejection: Rejection | None = None

    @property
    def accepted(self) -> bool:
        return self.command is not None


def _wrap_deg(angle_deg: float) -> float:
    return (angle_deg + 180.0) % 360.0 - 180.0


def _is_number(value: object) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, (bool, np.bool_))


def _finite(value: object) -> bool:
    """A number that fits a float and is not NaN or infinite (10**400 is an int, not a float)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class SafetyEnvelope:
    """Checks actions against a ``SafetyConfig``; remembers the last accepted command time (rate
    limit) and counts each rejection (``rejected.<reason>``) and clamp (``clamped.<limit>``)."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self.counters: Counter[str] = Counter()
        self._last_command_s: float | None = None

    def check(
        self,
        current: object,
        action: object,
        obs_stamp_s: object,
        now_s: object,
        gripper_mm: object = None,
    ) -> SafetyDecision:
        """Decide on one relative action.

        ``action`` is a ``DeltaAction`` or 7 numbers (dx dy dz mm, droll dpitch dyaw deg, open 0/1).
        ``gripper_mm``, when given, asks for an absolute opening instead of ``open``'s full
        open/close (teleoperation).
        """
        decision = self._decide(current, action, obs_stamp_s, now_s, gripper_mm)
        if decision.rejection is not None:
            self.counters[f"rejected.{decision.rejection.reason}"] += 1
        else:
            self.counters["accepted"] += 1
            for clamp in decision.command.clamps:
                self.counters[f"clamped.{clamp}"] += 1
            self._last_command_s = float(now_s)
        return decision

    def check_target(
        self, current: object, target: object, gripper_mm: object, obs_stamp_s: object, now_s: object
    ) -> SafetyDecision:
        """Decide on an absolute target: the same limits, applied to the move from ``current``."""
        if not isinstance(target, EndPose) or not isinstance(current, EndPose):
            return self._reject_counted("malformed", f"target and current must be EndPose, got {type(target).__name__}")
        delta = target.as_array() - current.as_array()
        delta[3:] = [_wrap_deg(a) for a in delta[3:]]
        return self.check(current, [*delta.tolist(), 0], obs_stamp_s, now_s, gripper_mm=gripper_mm)

    def _reject_counted(self, reason: str, detail: str) -> SafetyDecision:
        self.counters[f"rejected.{reason}"] += 1
        return SafetyDecision(rejection=Rejection(reason, detail))

    # --- the decision ------------------------------------------------------------------------

    def _decide(
        self, current: object, action: object, obs_stamp_s: object, now_s: object, gripper_mm: object
    ) -> SafetyDecision:
        cfg = self.config

        def reject(reason: str, detail: str) -> SafetyDecision:
            return SafetyDecision(rejection=Rejection(reason, detail))

        if not isinstance(current, EndPose):
            return reject("malformed", f"current pose must be an EndPose, got {type(current).__name__}")
        values = self._action_values(action)
        if isinstance(values, str):
            return reject("malformed", values)
        if not all(_finite(v) for v in values):
            return reject("nonfinite", f"action has NaN or infinite values: {values}")
        open_flag = float(values[6])
        if open_flag not in (0.0, 1.0):
            return reject("malformed", f"open must be 0 or 1, got {values[6]!r}")
        if gripper_mm is not None and not _is_number(gripper_mm):
            return reject("malformed", f"gripper_mm must be a number, got {gripper_mm!r}")
        if gripper_mm is not None and not _finite(gripper_mm):
            return reject("nonfinite", f"gripper_mm is not finite: {gripper_mm!r}")
        for name, stamp in (("observation stamp", obs_stamp_s), ("now", now_s)):
            if not _is_number(stamp) or not _finite(stamp):
                return reject("bad_stamp", f"{name} must be a finite number of seconds, got {stamp!r}")
        age_s = float(now_s) - float(obs_stamp_s)
        if age_s > cfg.max_observation_age_s:
            return reject("stale", f"observation is {age_s:.3f} s old (limit {cfg.max_observation_age_s} s)")
        if age_s < -_FUTURE_STAMP_TOLERANCE_S:
            return reject("future_stamp", f"observation stamp is {-age_s:.3f} s in the future: clocks disagree")
        if self._last_command_s is not None and float(now_s) - self._last_command_s < cfg.min_command_period_s:
            return reject(
                "rate_limited",
                f"{float(now_s) - self._last_command_s:.3f} s since the last command "
                f"(minimum {cfg.min_command_period_s} s)",
            )
        return self._clamp(current, [float(v) for v in values[:6]], open_flag == 1.0, gripper_mm)

    @staticmethod
    def _action_values(action: object) -> list[object] | str:
        """The 7 numbers of an action, or a sentence saying why there are none."""
        if isinstance(action, DeltaAction):
            return list(action.as_tuple())
        if isinstance(action, (str, bytes)) or not isinstance(action, (Sequence, np.ndarray)):
            return f"action must be a DeltaAction or 7 numbers, got {type(action).__name__}"
        values = list(np.asarray(action, dtype=object).ravel()) if isinstance(action, np.ndarray) else list(action)
        if len(values) != 7:
            return f"action must have 7 numbers (dx dy dz droll dpitch dyaw open), got {len(values)}"
        for i, v in enumerate(values):
            if not _is_number(v):
                return f"action[{i}] must be a number, got {v!r}"
        return values

    def _clamp(self, current: EndPose, delta: list[float], open_gripper: bool, gripper_mm: object) -> SafetyDecision:
        cfg = self.config
        clamps: list[str] = []
        translation = np.array(delta[:3])
        largest = float(np.max(np.abs(translation)))
        # Length computed on the scaled-down vector: huge finite values cannot overflow it.
        length_mm = largest * float(np.linalg.norm(translation / largest)) if largest > 0 else 0.0
        if length_mm > cfg.max_step_mm:
            clamps.append("step_translation")
            translation = translation / largest
            translation *= cfg.max_step_mm / float(np.linalg.norm(translation))
        rotation = np.clip(np.array(delta[3:]), -cfg.max_step_deg, cfg.max_step_deg)
        if not np.array_equal(rotation, delta[3:]):
            clamps.append("step_rotation")

        here = current.as_array()
        wanted = here[:3] + translation
        xyz = np.clip(wanted, cfg.workspace_min_mm, cfg.workspace_max_mm)
        if not np.array_equal(xyz, wanted):
            clamps.append("workspace")
        if float(np.linalg.norm(xyz - here[:3])) > cfg.max_step_mm + 1e-6:
            # Only when the arm is already outside the box: one step cannot bring it back.
            return SafetyDecision(
                rejection=Rejection(
                    "outside_workspace",
                    f"current position {tuple(round(v, 1) for v in here[:3])} mm is more than one step "
                    "outside the workspace; home the arm",
                )
            )
        angles = [_wrap_deg(a) for a in here[3:] + rotation]

        if gripper_mm is None:
            opening = cfg.gripper_max_mm if open_gripper else cfg.gripper_min_mm
        else:
            opening = min(max(float(gripper_mm), cfg.gripper_min_mm), cfg.gripper_max_mm)
            if opening != float(gripper_mm):
                clamps.append("gripper")
        target = EndPose(*(float(v) for v in xyz), *angles)
        return SafetyDecision(command=SafeCommand(target=target, gripper_mm=opening, clamps=tuple(clamps)))
