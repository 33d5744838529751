"""SIGINT, SIGTERM and SIGHUP all end a session the way Ctrl-C does: episodes recorded, state saved.

Why: ``docker stop``, ``timeout``, systemd and SLURM send SIGTERM, and a closed terminal SIGHUP;
Python's default for both is to die on the spot, leaving bags unfinished and no summary. Here the
first of them raises KeyboardInterrupt in the main thread while the session is :attr:`live` (the
runtime's one handler for a stop; while it loads models or saves, the signal is only noted and
the runtime stops at the next safe point), and every later one only says to wait: the shutdown that
records and saves is never cut short by a second signal. The exit status is 128 + the signal
number, as shells report it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).

The ``vlac`` program (``vlac.cli.console_main``) installs one for its whole life, so SIGTERM and
SIGHUP stop every command the way Ctrl-C does from its first line; the session nests its own inside.
Once the command has returned, everything it writes is written, and the stop signals are ignored
(:func:`ignore_stop_signals`) for the interpreter's exit, which can take seconds (threads, EGL and
torch teardown): a signal there would otherwise kill a finished run with a status saying it failed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

#: The signals that stop a session cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_code_of(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal a :class:`StopSignals` raised ``interrupt`` for; 130 for a plain Ctrl-C."""
    name = interrupt.args[0] if interrupt.args else None
    return 128 + int(signal.Signals[name]) if name in {s.name for s in STOP_SIGNALS} else 130


def ignore_stop_signals() -> None:
    """From now on the stop signals do nothing (main thread only): for a process whose work is done."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class StopSignals:
    """Context manager: while entered (main thread only), the stop signals are handled as described above;
    leaving restores the handlers it replaced. :meth:`install` alone is for a whole process's life."""

    def __init__(self, say: Callable[[str], None] = print, *, live: bool = True, who: str = "session") -> None:
        self.say = say
        self.who = who  # the messages' prefix
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
            self.say(f"{self.who}: {self.received.name}: stopping as soon as loading or saving allows, please wait")
            return
        self.say(f"{self.who}: still saving, please wait")

    def install(self) -> None:
        """Handle the stop signals from now on, remembering the handlers replaced (main thread only:
        Python allows handlers only there; elsewhere this does nothing)."""
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def __enter__(self) -> StopSignals:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
