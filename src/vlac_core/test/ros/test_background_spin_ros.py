"""BackgroundSpin: callbacks run while it spins; stop ends the thread before the executor shuts down.

A callback still running on a MultiThreadedExecutor's worker when ``stop`` returns is the executor's, as
with ``executor.shutdown`` alone: the helper removes the guard-condition race only."""

from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: the helper spins an rclpy executor")

from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402

from vlac_core.ros.background_spin import BackgroundSpin  # noqa: E402

WAIT_S = 60.0  # for something that does happen


@pytest.mark.parametrize("executor_class", [SingleThreadedExecutor, MultiThreadedExecutor])
def test_callbacks_run_and_stop_joins_the_thread_before_the_executor_goes(executor_class):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("spun", context=context)
    try:
        fired = threading.Event()

        def once() -> None:  # one callback only: none is in flight on a worker thread when the node goes
            timer.cancel()
            fired.set()

        timer = node.create_timer(0.01, once)
        executor = executor_class(context=context)
        executor.add_node(node)
        with BackgroundSpin(executor) as spinner:
            assert fired.wait(WAIT_S), "the timer never fired: nothing spun"
        assert not spinner._thread.is_alive()
        assert executor._guard is None  # shut down after the thread ended: nothing waited on the destroyed guard
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_the_thread_ends_when_rclpy_shuts_down_under_it():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("spun", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = BackgroundSpin(executor)
    rclpy.try_shutdown(context=context)
    spinner._thread.join(WAIT_S)
    assert not spinner._thread.is_alive()
    spinner.stop()  # still shuts the executor down
    node.destroy_node()
