"""Per-robot memory of the last actions, for the optional history prompt (InputLimits.history_len).

The service remembers what it answered each robot. A robot's history restarts when its observation
``seq`` goes back to 0 or backwards (a new episode), so one episode never sees another's actions.
"""

from __future__ import annotations

import threading
from collections import deque

from vlac_core.types import DeltaAction


class ActionHistory:
    def __init__(self, length: int) -> None:
        self.length = length
        self._lock = threading.Lock()
        self._actions: dict[str, deque[DeltaAction]] = {}
        self._last_seq: dict[str, int] = {}

    def recent(self, robot_id: str, seq: int) -> tuple[DeltaAction, ...]:
        """Actions answered to ``robot_id`` before observation ``seq`` of its current episode, oldest first."""
        if self.length == 0:
            return ()
        with self._lock:
            last = self._last_seq.get(robot_id)
            if last is None or seq == 0 or seq <= last:
                self._actions[robot_id] = deque(maxlen=self.length)
                self._last_seq.pop(robot_id, None)
            return tuple(self._actions.get(robot_id, ()))

    def record(self, robot_id: str, seq: int, action: DeltaAction) -> None:
        if self.length == 0:
            return
        with self._lock:
            self._actions.setdefault(robot_id, deque(maxlen=self.length)).append(action)
            self._last_seq[robot_id] = seq
