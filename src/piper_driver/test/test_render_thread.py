"""RenderThread: every call runs on the one thread it owns, in order, and close frees last."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from piper_driver.ros.render_thread import RenderThread, RenderThreadClosed


def test_calls_from_many_threads_all_run_on_the_owning_thread():
    render = RenderThread(name="test_render")
    try:
        with ThreadPoolExecutor(max_workers=4) as callers:
            seen = list(callers.map(lambda _: render.call(threading.get_ident), range(40)))
        assert set(seen) == {render.ident}
        assert render.ident != threading.get_ident()
    finally:
        render.close()


def test_calls_run_in_submission_order_and_close_runs_final_after_them():
    render = RenderThread()
    order: list[str] = []
    futures = [render.submit(order.append, f"job{i}") for i in range(5)]
    render.close(final=lambda: order.append("final"))
    assert [f.done() for f in futures] == [True] * 5
    assert order == ["job0", "job1", "job2", "job3", "job4", "final"]
    assert render.closed
    render.close()  # idempotent


def test_an_exception_reaches_the_caller_and_the_thread_keeps_serving():
    render = RenderThread()
    try:
        with pytest.raises(ValueError, match="bad frame"):
            render.call(_raise, ValueError("bad frame"))
        assert render.call(lambda: 42) == 42
    finally:
        render.close()


def test_a_call_after_close_is_refused_with_a_clear_error():
    render = RenderThread(name="closed_one")
    render.close()
    with pytest.raises(RenderThreadClosed, match="closed_one"):
        render.call(lambda: None)


def test_close_raises_what_final_raised():
    render = RenderThread()
    with pytest.raises(RuntimeError, match="could not free"):
        render.close(final=lambda: _raise(RuntimeError("could not free")))


def test_a_call_from_the_owning_thread_runs_directly():
    render = RenderThread()
    try:
        assert render.call(lambda: render.call(threading.get_ident)) == render.ident
    finally:
        render.close()


def _raise(error: BaseException):
    raise error
