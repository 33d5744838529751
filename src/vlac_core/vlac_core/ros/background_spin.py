"""An executor spun on a background thread (the ROS tests' way to run nodes), stopped without rclpy's shutdown race.

The obvious ``threading.Thread(target=executor.spin)`` then ``executor.shutdown()`` races: ``shutdown``
destroys the executor's guard condition while the spinning thread can be inside a wait that reads it
(rclpy issue #968, open on Jazzy: ``Executor.shutdown`` never waits for the work in flight), and the thread
dies with ``'NoneType' object has no attribute 'handle'`` at teardown. Here the thread spins one callback
at a time and checks a stop flag between them, and ``stop`` joins it before it shuts the executor down,
so nothing is waiting on the guard condition when it goes. A callback still running on a
MultiThreadedExecutor's worker at that moment is left to the executor, as ``shutdown`` alone leaves it.
"""

from __future__ import annotations

import threading

from rclpy.executors import Executor, ExternalShutdownException


class BackgroundSpin:
    """Spin ``executor`` until ``stop`` (or the context shuts down); a context manager too."""

    def __init__(self, executor: Executor, poll_s: float = 0.1) -> None:
        self.executor = executor
        self.poll_s = poll_s  # how long one wait lasts: the most a stop waits for the thread to see its flag
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="background-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self.executor.context.ok():
                self.executor.spin_once(timeout_sec=self.poll_s)
        except ExternalShutdownException:  # rclpy was shut down under the test: nothing left to spin
            pass

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the thread, wait for it (at most ``timeout_s``: a callback still running), then shut the
        executor down; raises if the thread did not end."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RuntimeError(f"BackgroundSpin.stop: the spinning thread still runs after {timeout_s} s")
        self.executor.shutdown(timeout_sec=timeout_s)

    def __enter__(self) -> BackgroundSpin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
