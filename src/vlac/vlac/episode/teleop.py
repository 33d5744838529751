"""Human-guided explore without ROS types: operator input -> DeltaAction, and the loop's Operator.

A joystick (sensor_msgs/Joy: ``axes``, ``buttons``) or a velocity command (geometry_msgs/Twist:
``linear``, ``angular``) is turned into one VLAC action per step by :class:`TeleopMapping`; the ROS
node only copies the message's numbers in. :class:`TeleopOperator` implements the episode loop's
``Operator``: while an arm is taken over, its steps are the operator's (flagged ``human``, so the
episode goes to the demo buffer), and an operator command older than ``timeout_s`` holds the arm
still rather than repeating a stale move.

Joy layout (Xbox-style pad, as the ``joy`` package reports it): axes 0/1 left stick (y/x),
axis 4 right stick vertical (z), axis 3 right stick horizontal (yaw); buttons: ``takeover``
toggles teleoperation, ``gripper`` toggles the gripper, ``end`` ends the episode. Twist: linear
x/y/z in m/s and angular x/y/z in rad/s, scaled so 1 m/s -> ``max_mm`` and 1 rad/s -> ``max_deg`` per step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vlac_core.types import DeltaAction, Observation

#: Joy axes used, in DeltaAction order (dx, dy, dz, droll, dpitch, dyaw); None = not on the stick.
JOY_AXES: tuple[int | None, ...] = (1, 0, 4, None, None, 3)


@dataclass(frozen=True)
class TeleopMapping:
    max_mm: float = 20.0
    max_deg: float = 10.0
    deadzone: float = 0.1
    takeover_button: int = 4
    gripper_button: int = 0
    end_button: int = 1

    def __post_init__(self) -> None:
        if not (self.max_mm > 0 and self.max_deg > 0):
            raise ValueError(f"max_mm={self.max_mm}, max_deg={self.max_deg}: expected positive step sizes")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"deadzone={self.deadzone}: expected a value in [0, 1)")

    def _scaled(self, value: float, full: float, limit: float) -> int:
        if abs(value) < self.deadzone:
            return 0
        return round(max(-limit, min(limit, value * full)))

    def joy_delta(self, axes: Sequence[float], open_: int) -> DeltaAction:
        """Stick deflections (-1..1) -> a move of up to ``max_mm`` / ``max_deg``; missing axes count as 0."""
        values = []
        for i, axis in enumerate(JOY_AXES):
            deflection = float(axes[axis]) if axis is not None and axis < len(axes) else 0.0
            full = self.max_mm if i < 3 else self.max_deg
            values.append(self._scaled(deflection, full, full))
        return DeltaAction(*values, open=int(open_))

    def twist_delta(self, linear: Sequence[float], angular: Sequence[float], open_: int) -> DeltaAction:
        """m/s and rad/s -> mm and degrees per step (1 m/s = ``max_mm``), clipped to the same limits."""
        if len(linear) != 3 or len(angular) != 3:
            raise ValueError(f"twist: expected 3 linear and 3 angular values, got {len(linear)} and {len(angular)}")
        mm = [self._scaled(float(v), self.max_mm, self.max_mm) for v in linear]
        deg = [self._scaled(float(v), self.max_deg, self.max_deg) for v in angular]
        return DeltaAction(*mm, *deg, open=int(open_))


@dataclass
class _ArmInput:
    takeover: bool = False
    end: bool = False
    delta: DeltaAction | None = None
    stamp_s: float = -1e18
    open_: int = 1
    buttons: tuple[int, ...] = ()


class TeleopOperator:
    """The episode loop's Operator, fed by joystick/twist input per robot; thread-safe."""

    def __init__(
        self, mapping: TeleopMapping | None = None, timeout_s: float = 0.5, clock: Callable[[], float] | None = None
    ):
        import time

        self.mapping = mapping or TeleopMapping()
        self.timeout_s = timeout_s
        self.clock = clock or time.monotonic
        self._arms: dict[str, _ArmInput] = {}
        self._lock = threading.Lock()

    def _arm(self, robot_id: str) -> _ArmInput:
        return self._arms.setdefault(robot_id, _ArmInput())

    def on_joy(self, robot_id: str, axes: Sequence[float], buttons: Sequence[int]) -> None:
        """A Joy message: button presses (rising edges) toggle takeover/gripper or end the episode."""
        with self._lock:
            arm = self._arm(robot_id)
            pressed = tuple(int(b) for b in buttons)
            previous = arm.buttons + (0,) * max(0, len(pressed) - len(arm.buttons))

            def rising(index: int) -> bool:
                return index < len(pressed) and pressed[index] == 1 and previous[index] == 0

            m = self.mapping
            if rising(m.takeover_button):
                arm.takeover = not arm.takeover
            if rising(m.gripper_button):
                arm.open_ = 1 - arm.open_
            if rising(m.end_button):
                arm.end = True
            arm.buttons = pressed
            arm.delta = m.joy_delta(axes, arm.open_)
            arm.stamp_s = self.clock()

    def on_twist(self, robot_id: str, linear: Sequence[float], angular: Sequence[float]) -> None:
        """A Twist message: a move for the arm (takeover is set with ``set_takeover``)."""
        with self._lock:
            arm = self._arm(robot_id)
            arm.delta = self.mapping.twist_delta(linear, angular, arm.open_)
            arm.stamp_s = self.clock()

    def set_takeover(self, robot_id: str, on: bool) -> None:
        with self._lock:
            self._arm(robot_id).takeover = bool(on)

    def set_gripper(self, robot_id: str, open_: bool) -> None:
        with self._lock:
            self._arm(robot_id).open_ = int(open_)

    def request_end(self, robot_id: str) -> None:
        with self._lock:
            self._arm(robot_id).end = True

    def taken_over(self, robot_id: str) -> bool:
        with self._lock:
            return self._arm(robot_id).takeover

    # -- the loop's Operator ---------------------------------------------------------------------

    def end_requested(self, robot_id: str) -> bool:
        with self._lock:
            arm = self._arm(robot_id)
            end, arm.end = arm.end, False
            return end

    def teleop_action(self, robot_id: str, observation: Observation) -> DeltaAction | None:
        with self._lock:
            arm = self._arm(robot_id)
            if not arm.takeover:
                return None
            if arm.delta is None or self.clock() - arm.stamp_s > self.timeout_s:
                return DeltaAction(0, 0, 0, 0, 0, 0, arm.open_)  # no fresh command: hold still
            return arm.delta
