"""A spawned child process that serves one request at a time over a pipe: a model's Python off the caller's GIL.

Why: on CPU the tiny sim models are bound by Python (transformers' loops), not by matrix work, and an
embedded session runs its arms, actor, critic and trainer as threads of one interpreter, so one GIL
(bench/session_step.py). The critic's model (``vlac_critic.process_backend``) and the trainer's updates
(``vlac_trainer.online.update_process``) can run in a child of their own; this is the plumbing they share.

The caller side, :class:`WorkerProcess`, starts the child with the ``spawn`` method (never ``fork``: the
caller runs threads), waits for it to be ready and sends requests, one at a time under a lock. The
child side, :func:`serve`, builds its object, then answers every request with ``("ok", result)`` or
``("error", text)`` until told to close or until the caller's end of the pipe closes (the caller died).
A child that fails to build, dies, or fails a request raises the caller's error type with what it said.
Messages cross the pipe as plain pickle bytes (:func:`_send` / :func:`_receive_message`), never through
``Connection.send``: once torch is imported, that pickler moves every CPU tensor it sends into shared
memory *in place* (``share_memory_``: a new buffer, the old one freed, a file descriptor served by a
helper thread). For the trainer that meant the caller's live model weights changed memory under every
update while other threads of the session ran; a plain pickle copies the tensors and touches nothing.
Ctrl-C reaches the terminal's whole process group, so the child ignores SIGINT: the caller decides when
it stops (a session stopping gracefully still needs it for its last step). SIGTERM keeps its default,
and the child is a daemon: it never outlives the caller.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any


class WorkerProcessError(RuntimeError):
    """A worker child failed to start, died, or failed a request; the message says which and why."""


class WorkerProcess:
    """The caller's handle on one child running ``target(conn, *args)`` (which calls :func:`serve`)."""

    def __init__(
        self,
        what: str,
        target: Callable[..., None],
        args: tuple,
        error: type[WorkerProcessError] = WorkerProcessError,
    ) -> None:
        """Start the child and wait until it is ready (``ready`` holds what its builder returned)."""
        self.what = what  # names the child in errors, e.g. "critic process"
        self._error = error
        self._lock = threading.Lock()
        self._closed = False
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(target=target, args=(child_conn, *args), name=what, daemon=True)
        self._process.start()
        child_conn.close()
        self.ready = self._receive("starting")

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def request(self, message: tuple, doing: str) -> Any:
        """Send ``message`` and return the child's answer; ``doing`` names the request in errors."""
        with self._lock:
            if self._closed:
                raise self._error(f"{self.what}: closed")
            try:
                _send(self._conn, message)
            except (BrokenPipeError, ConnectionResetError, OSError) as error:
                raise self._error(f"{self.what}: gone ({self._exit_text()}): {error}") from None
            return self._receive(doing)

    def _receive(self, doing: str) -> Any:
        try:
            kind, payload = _receive_message(self._conn)
        except (EOFError, ConnectionResetError, OSError):
            self._process.join(timeout=5.0)
            self._closed = True
            raise self._error(f"{self.what}: exited while {doing} ({self._exit_text()})") from None
        if kind == "error":
            if doing == "starting":  # the child has returned
                self._process.join(timeout=5.0)
                self._closed = True
            raise self._error(f"{self.what}: {doing} failed: {payload}")
        return payload

    def _exit_text(self) -> str:
        code = self._process.exitcode
        return "still running" if code is None else f"exit code {code}"

    def close(self) -> None:
        """Stop the child (waits up to 10 s, then terminates it); later requests raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):  # a child already gone needs no message
                _send(self._conn, ("close",))
            self._process.join(timeout=10.0)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5.0)
            self._conn.close()


def serve(conn, build: Callable[[], tuple[Any, Any]], handle: Callable[[Any, tuple], Any]) -> None:
    """The child's loop: ``build()`` -> (object, ready payload), then ``handle(object, message)`` per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        served, ready = build()
    except Exception as error:  # the caller raises it, named
        _send(conn, ("error", f"{type(error).__name__}: {error}"))
        conn.close()
        return
    _send(conn, ("ok", ready))
    while True:
        try:
            message = _receive_message(conn)
        except (EOFError, OSError):  # the caller is gone
            return
        if message[0] == "close":
            conn.close()
            return
        try:
            reply = ("ok", handle(served, message))
        except Exception as error:
            reply = ("error", f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
        _send(conn, reply)


def _send(conn, message: Any) -> None:
    """``message`` as plain pickle bytes: tensors are copied, never moved to shared memory (module docstring)."""
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _receive_message(conn) -> Any:
    return pickle.loads(conn.recv_bytes())
