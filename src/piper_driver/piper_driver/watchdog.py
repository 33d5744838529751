"""Command watchdog: notices when commands stop arriving, so the arm can be told to hold.

A policy or a network that dies mid-episode leaves the last target in the arm's controller; for
single-step MOVE P targets that is harmless, but a streaming client (teleoperation, a fast
actor) that stops must not leave the arm chasing a stale plan. The watchdog fires once per
silence: ``expired`` is True the first time it is asked after the time-out, then it disarms
until the next command.
"""

from __future__ import annotations

from piper_driver.config_checks import require_positive


class CommandWatchdog:
    def __init__(self, timeout_s: float) -> None:
        require_positive("watchdog_timeout_s", timeout_s)
        self.timeout_s = timeout_s
        self._last_command_s: float | None = None
        self.fired = 0  # how many silences it has reported

    def command_received(self, now_s: float) -> None:
        """Arm (or re-arm) the watchdog: a command was just sent to the arm."""
        self._last_command_s = now_s

    def disarm(self) -> None:
        """Nothing to guard (the arm was stopped, disabled or homed on purpose)."""
        self._last_command_s = None

    def expired(self, now_s: float) -> bool:
        """True once when more than ``timeout_s`` has passed since the last command."""
        if self._last_command_s is None or now_s - self._last_command_s <= self.timeout_s:
            return False
        self._last_command_s = None
        self.fired += 1
        return True

    @property
    def armed(self) -> bool:
        return self._last_command_s is not None
