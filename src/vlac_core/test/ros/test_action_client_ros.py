"""RecordedActionClient: an answer that is ready before its request is on record still completes the call.

The race of rclpy 7.1.6 (ros2/rclpy#1123) is made certain rather than likely: the client's rcl handle
is wrapped so that, after a request has gone out, the sending thread waits until the executor has
seen the answer ready, and then until it has taken it (the stock client) or for a while (ours, whose
executor waits on the lock the sender holds). The stock client drops that answer; ours does not.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: the race is in rclpy's ActionClient")
pytest.importorskip("vlac_msgs.action", reason="vlac_msgs is not built in this workspace")

from rclpy.action import ActionClient, ActionServer  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402

from vlac_core.ros.action_client import RecordedActionClient  # noqa: E402
from vlac_core.ros.background_spin import BackgroundSpin  # noqa: E402
from vlac_msgs.action import ResetArm  # noqa: E402

NEVER_S = 60.0  # waits for something that does happen; only a broken client would sit them out
HOLD_S = 0.5  # how long the sender holds on when the executor cannot take the answer (ours)
READY_INDEX = {"goal": 2, "result": 4}  # positions in the rcl action client's is_ready() tuple


class HoldingHandle:
    """The client's rcl handle; after one kind of request is sent, it holds the sender (see the module)."""

    def __init__(self, handle, kind: str, hold_after_ready_s: float) -> None:
        self._handle = handle
        self._kind = kind
        self._hold_after_ready_s = hold_after_ready_s
        self.answer_ready = threading.Event()
        self.answer_taken = threading.Event()

    def __getattr__(self, name):
        """The handle's own attribute, except this kind's send (then hold) and take (then note it)."""
        attribute = getattr(self._handle, name)
        if name == f"send_{self._kind}_request":
            return lambda request: self._hold(attribute(request))
        if name == f"take_{self._kind}_response":
            return lambda response_type: self._taken(attribute(response_type))
        return attribute

    def __enter__(self):
        return self._handle.__enter__()

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)

    def is_ready(self, wait_set):
        ready = self._handle.is_ready(wait_set)
        if ready[READY_INDEX[self._kind]]:
            self.answer_ready.set()
        return ready

    def _hold(self, sequence_number: int) -> int:
        assert self.answer_ready.wait(NEVER_S), "the server never answered"
        self.answer_taken.wait(self._hold_after_ready_s)
        return sequence_number

    def _taken(self, taken):
        if all(taken):
            self.answer_taken.set()
        return taken


def observed(client_class):
    """The client class, noting when the executor has finished with what it took."""

    class Observed(client_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.executed = threading.Event()

        async def execute(self, taken_data):
            await super().execute(taken_data)
            self.executed.set()

    return Observed


@pytest.fixture
def graph():
    """A reset_arm server and a client node, spun by one multi-threaded executor in the background."""
    context = rclpy.Context()
    rclpy.init(context=context)
    server_node = rclpy.create_node("reset_server", context=context)
    client_node = rclpy.create_node("reset_client", context=context)

    def execute(goal_handle):
        goal_handle.succeed()
        return ResetArm.Result(ok=True, message=f"seed {goal_handle.request.seed}")

    server = ActionServer(server_node, ResetArm, "reset_arm", execute_callback=execute)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(server_node)
    executor.add_node(client_node)
    spinning = BackgroundSpin(executor)
    yield client_node
    spinning.stop()
    server.destroy()
    server_node.destroy_node()
    client_node.destroy_node()
    rclpy.try_shutdown(context=context)


def client_with_holding_handle(node, client_class, kind: str, hold_after_ready_s: float):
    client = observed(client_class)(node, ResetArm, "reset_arm")
    assert client.wait_for_server(timeout_sec=NEVER_S)
    holding = HoldingHandle(client._client_handle, kind, hold_after_ready_s)
    client._client_handle = holding
    return client, holding


def completed(future) -> bool:
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    return done.wait(NEVER_S)


def test_an_early_goal_answer_still_completes_the_call(graph):
    client, holding = client_with_holding_handle(graph, RecordedActionClient, "goal", HOLD_S)
    future = client.send_goal_async(ResetArm.Goal(mode="random", seed=7))
    assert completed(future)
    handle = future.result()
    assert handle.accepted
    assert holding.answer_taken.is_set()  # the executor did take it, after the request was on record
    assert completed(result := handle.get_result_async())
    assert result.result().result.message == "seed 7"


def test_an_early_result_answer_still_completes_the_call(graph):
    client, holding = client_with_holding_handle(graph, RecordedActionClient, "result", HOLD_S)
    goal = client.send_goal_async(ResetArm.Goal(mode="random", seed=8))
    assert completed(goal)
    result = goal.result().get_result_async()
    assert completed(result)
    assert holding.answer_taken.is_set()
    assert result.result().result.message == "seed 8"


def test_the_stock_client_drops_an_early_goal_answer(graph):
    """The control: the same wrapped handle makes rclpy's own client lose the answer (why ours exists)."""
    client, holding = client_with_holding_handle(graph, ActionClient, "goal", NEVER_S)
    future = client.send_goal_async(ResetArm.Goal(mode="random", seed=9))
    assert holding.answer_taken.is_set()  # taken while the request was not yet on record
    assert client.executed.wait(NEVER_S)
    assert not future.done()
    future.cancel()


def test_no_code_of_the_stack_builds_the_stock_action_client():
    """Every action client is a RecordedActionClient: a call of rclpy's ActionClient anywhere else fails."""
    root = Path(__file__).resolve().parents[3]
    allowed = {Path(__file__).resolve()}
    offenders = []
    for path in sorted([*root.glob("*/**/*.py"), *(root.parent / "bench").glob("*.py")]):
        if path.resolve() in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and _called_name(node.func) == "ActionClient":
                offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None
