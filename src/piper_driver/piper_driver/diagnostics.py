"""What the driver reports on /diagnostics: a level, a sentence and key/value pairs.

Built from a ``RobotStatus`` (which already carries the backend's and the envelope's counters),
so the node only copies it into diagnostic_msgs. Levels follow diagnostic_msgs/DiagnosticStatus:
OK when the arm can move or merely waits to be enabled, WARN for an emergency stop or a closed
link (someone chose that), ERROR when it refuses motion because something went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from piper_driver.robot import RobotState, RobotStatus

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels

_LEVELS = {
    RobotState.ENABLED: OK,
    RobotState.CONNECTED: OK,
    RobotState.DISCONNECTED: WARN,
    RobotState.ESTOPPED: WARN,
    RobotState.ERROR: ERROR,
}


@dataclass(frozen=True)
class DiagnosticReport:
    level: int
    message: str
    values: tuple[tuple[str, str], ...]


def diagnostic_report(status: RobotStatus, extra: dict[str, object] | None = None) -> DiagnosticReport:
    """``extra``: node-side facts worth a line (CAN port, last refusal)."""
    values = [("state", status.state.value), ("accepts_motion", str(status.accepts_motion).lower())]
    values += [(key, str(value)) for key, value in (extra or {}).items()]
    values += [(key, str(count)) for key, count in sorted(status.counters.items())]
    message = f"{status.state.value}: {status.message}" if status.message else status.state.value
    return DiagnosticReport(level=_LEVELS[status.state], message=message, values=tuple(values))
