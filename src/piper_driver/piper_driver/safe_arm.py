"""``SafeArm``: a robot backend whose every move has passed the safety envelope.

It wraps any ``RobotBackend`` (piper_sdk, MuJoCo) and is one itself, so the episode loop and the
arm node hold a ``SafeArm`` and no code path reaches the inner backend's
``execute``/``move_to`` without the envelope: relative actions and absolute targets both go
through it, and only the clamped absolute target is sent. It also runs the command watchdog
(``tick``) and reports the envelope's counters in ``status()`` next to the backend's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from piper_driver.robot import ArmState, MotionRefused, RobotBackend, RobotStatus
from piper_driver.safety import SafeCommand, SafetyConfig, SafetyDecision, SafetyEnvelope
from piper_driver.watchdog import CommandWatchdog
from vlac_core.types import EndPose


class SafeArm(RobotBackend):
    """``backend`` behind a ``SafetyEnvelope``; ``clock`` (monotonic seconds) is injectable for tests."""

    def __init__(
        self,
        backend: RobotBackend,
        config: SafetyConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.envelope = SafetyEnvelope(config)
        self.watchdog = CommandWatchdog(self.envelope.config.watchdog_timeout_s)
        self._clock = clock
        self._lock = threading.Lock()  # one decision at a time: the rate limit and watchdog are shared state
        self._homing = False
        self.last_decision: SafetyDecision | None = None

    # --- the guarded paths -------------------------------------------------------------------

    def execute(self, delta: object, obs_stamp_s: float | None = None) -> SafeCommand:
        """Check ``delta`` (a DeltaAction or 7 raw numbers) and start the clamped move.

        ``obs_stamp_s`` is the capture time of the observation the action answers, on the
        same clock as ``clock``; without it the action is taken to answer the arm's latest
        state (counted as ``unstamped``). Raises MotionRefused, moving nothing, when the envelope rejects it.
        """
        with self._lock:
            self._refuse_unless_ready()
            state = self.backend.observe()
            now_s = self._clock()
            decision = self.envelope.check(state.end_pose, delta, self._stamp(obs_stamp_s, now_s), now_s)
            return self._send(decision, now_s)

    def move_to(self, target: EndPose, gripper_mm: float, obs_stamp_s: float | None = None) -> SafeCommand:
        """An absolute target, limited like a relative action from the current pose."""
        with self._lock:
            self._refuse_unless_ready()
            state = self.backend.observe()
            now_s = self._clock()
            stamp = self._stamp(obs_stamp_s, now_s)
            decision = self.envelope.check_target(state.end_pose, target, gripper_mm, stamp, now_s)
            return self._send(decision, now_s)

    @property
    def homing(self) -> bool:
        """A home move is running (actions are refused meanwhile)."""
        return self._homing

    def _refuse_unless_ready(self) -> None:
        """Refuse before the envelope looks: a refused action must not open a rate-limit window."""
        if self._homing:
            self.envelope.counters["rejected.homing"] += 1
            raise MotionRefused("homing in progress: actions are refused until the arm is home")
        status = self.backend.status()
        if not status.accepts_motion:
            self.envelope.counters[f"rejected.arm_{status.state.value}"] += 1
            raise MotionRefused(f"arm refuses motion ({status.state.value}): {status.message}")

    def _stamp(self, obs_stamp_s: float | None, now_s: float) -> object:
        if obs_stamp_s is None:
            self.envelope.counters["unstamped"] += 1
            return now_s  # in the clock's own time base, whatever clock the caller injected
        return obs_stamp_s

    def _send(self, decision: SafetyDecision, now_s: float) -> SafeCommand:
        self.last_decision = decision
        if decision.rejection is not None:
            raise MotionRefused(
                f"safety envelope rejected the action ({decision.rejection.reason}): {decision.rejection.detail}"
            )
        command = decision.command
        self.backend.move_to(command.target, command.gripper_mm)
        self.watchdog.command_received(now_s)
        return command

    def tick(self) -> bool:
        """Call periodically (the arm node's timer): holds the arm when commands stopped.

        Returns True when it told the arm to hold. Holding sends the current pose as the target
        directly to the backend: stopping in place is inside any envelope the arm is in.
        """
        with self._lock:
            if self._homing or not self.watchdog.expired(self._clock()):
                return False
            if not self.backend.status().accepts_motion:
                return False
            state = self.backend.observe()
            self.backend.move_to(state.end_pose, state.gripper_mm)
            self.envelope.counters["watchdog_hold"] += 1
            return True

    # --- plain delegation --------------------------------------------------------------------

    def connect(self) -> None:
        self.backend.connect()

    def disconnect(self) -> None:
        self.watchdog.disarm()
        self.backend.disconnect()

    def enable(self, timeout_s: float = 5.0) -> None:
        self.backend.enable(timeout_s)

    def disable(self) -> None:
        self.watchdog.disarm()
        self.backend.disable()

    def observe(self) -> ArmState:
        return self.backend.observe()

    def wait_until_still(self, timeout_s: float) -> bool:
        return self.backend.wait_until_still(timeout_s)

    def home(self) -> None:
        """The configured home pose, a long move on purpose: not limited per step. Actions that
        arrive meanwhile are refused (counted as ``rejected.homing``)."""
        with self._lock:
            if self._homing:
                raise MotionRefused("homing already in progress")
            self._homing = True
            self.watchdog.disarm()
        try:
            self.backend.home()
        finally:
            self._homing = False

    def emergency_stop(self) -> None:
        self.watchdog.disarm()
        self.backend.emergency_stop()

    def resume(self) -> None:
        self.backend.resume()

    def status(self) -> RobotStatus:
        inner = self.backend.status()
        counters = dict(inner.counters)
        counters.update({f"safety.{key}": value for key, value in self.envelope.counters.items()})
        counters["safety.watchdog_fired"] = self.watchdog.fired
        return RobotStatus(state=inner.state, message=inner.message, counters=counters)
