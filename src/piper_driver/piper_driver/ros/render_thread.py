"""One thread that owns an OpenGL context for its whole life and runs every call that touches it.

An EGL (or OSMesa) context is current on at most one thread: ``mujoco.Renderer`` makes its
context current on the thread that creates it or renders with it, and never releases it, so a
second thread that renders (or frees the renderer, as ``Renderer.__del__`` does) fails with
``EGL_BAD_ACCESS``. A MultiThreadedExecutor runs a timer on whichever worker is free, so the arm
node hands everything that creates, uses or frees its renderer to this thread instead and waits
on the returned future. Plain threading, no ROS: tested without a graph.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

_STOP = object()


class RenderThreadClosed(RuntimeError):
    """A call was handed to a render thread after ``close``."""


class RenderThread:
    """Runs submitted calls one at a time, in order, on a single thread created here."""

    def __init__(self, name: str = "render") -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        # daemon: a node that is never destroyed must not keep the interpreter from exiting
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        """The owning thread's id (tests check that rendering happened there)."""
        return self._thread.ident

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, fn: Callable[..., T], *args) -> Future[T]:
        """Queue ``fn(*args)`` for the owning thread; its result or exception arrives in the future."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RenderThreadClosed(f"render thread {self._thread.name!r} is closed: cannot run {fn!r}")
            self._jobs.put((future, fn, args))
        return future

    def call(self, fn: Callable[..., T], *args, timeout_s: float | None = None) -> T:
        """Run ``fn(*args)`` on the owning thread and wait for it (directly when already there)."""
        if threading.get_ident() == self._thread.ident:
            return fn(*args)
        return self.submit(fn, *args).result(timeout=timeout_s)

    def close(self, final: Callable[[], object] | None = None, timeout_s: float | None = None) -> None:
        """Run ``final`` (free the context) after every queued call, then end the thread; idempotent.

        An exception from ``final`` is raised here, after the thread has ended.
        """
        if threading.get_ident() == self._thread.ident:
            raise RuntimeError("RenderThread.close() called from its own thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            future: Future = Future()
            self._jobs.put((future, final or (lambda: None), ()))
            self._jobs.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"render thread {self._thread.name!r} still busy after {timeout_s} s")
        future.result(timeout=0)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # handed to the caller through the future
                future.set_exception(error)
