"""SIGINT, SIGTERM and SIGHUP all end a session the way Ctrl-C does: episodes recorded, state saved.

Why: ``docker stop``, ``timeout``, systemd and SLURM send SIGTERM, and a closed terminal SIGHUP;
Python's default for both is to die on the spot, leaving bags unfinished and no summary. Here the
first of them raises KeyboardInterrupt in the main thread while the session is :attr:`live` (the
runtime's one handler for a stop; while it loads models or saves, the signal is only noted and
the runtime stops at the next safe point), and every later one only says to wait: the shutdown that
records and saves is never cut short by a second signal. The exit status is 128 + the signal
number, as shells report it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

#: The signals that stop a session cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Context manager: while entered (main thread only), the stop signals are handled as described above."""

    def __init__(self, say: Callable[[str], None] = print, *, live: bool = True) -> None:
        self.say = say
        #: The first stop signal received, or None.
        self.received: signal.Signals | None = None
        #: While True the first signal raises KeyboardInterrupt; otherwise (loading, saving) it is only
        #: recorded, and the owner checks :attr:`received` when it is safe to stop.
        self.live = live
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 when none was received: a KeyboardInterrupt from elsewhere)."""
        return 128 + int(self.received if self.received is not None else signal.SIGINT)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
            if self.live:
                raise KeyboardInterrupt(self.received.name)
            self.say(f"session: {self.received.name}: stopping as soon as loading or saving allows, please wait")
            return
        self.say("session: still saving, please wait")

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
