"""CallWaiter: a service answer the stopped executor will never deliver does not hold Ctrl-C up."""

from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: CallWaiter waits on rclpy futures")
pytest.importorskip("vlac_msgs.srv", reason="vlac_msgs is not built in this workspace")

from rclpy.task import Future  # noqa: E402

from vlac.ros.adapters import CallWaiter, RosCallError  # noqa: E402

NEVER_S = 3600.0  # a wait that would outlast the test run: only close() can end it


def test_close_wakes_a_waiting_call_and_refuses_new_ones():
    waiter = CallWaiter()
    future = Future()
    outcome: dict[str, BaseException] = {}
    waiting = threading.Thread(target=lambda: _capture(outcome, waiter.wait, future, NEVER_S, "get_action"))
    waiting.start()
    waiter.close()
    waiting.join(timeout=60.0)
    assert not waiting.is_alive()
    assert isinstance(outcome["error"], RosCallError)
    assert "get_action: the node is shutting down" in str(outcome["error"])
    assert future.cancelled()
    with pytest.raises(RosCallError, match="score_done: the node is shutting down"):
        waiter.wait(Future(), NEVER_S, "score_done")


def test_an_answer_a_failure_and_a_time_out():
    waiter = CallWaiter()
    answered = Future()
    answered.set_result("reply")
    assert waiter.wait(answered, NEVER_S, "x") == "reply"
    failed = Future()
    failed.set_exception(ValueError("bad request"))
    with pytest.raises(RosCallError, match="x: bad request"):
        waiter.wait(failed, NEVER_S, "x")
    with pytest.raises(RosCallError, match=r"y: no answer within 0\.01 s"):
        waiter.wait(Future(), 0.01, "y")


def test_one_waiter_per_node_closed_by_rclpy_shutdown():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("call_waiter_probe", context=context)
    try:
        waiter = CallWaiter.for_node(node)
        assert CallWaiter.for_node(node) is waiter and not waiter.closed
        rclpy.shutdown(context=context)
        assert waiter.closed
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _capture(outcome: dict, fn, *args) -> None:
    try:
        fn(*args)
    except BaseException as error:  # handed to the test thread
        outcome["error"] = error
