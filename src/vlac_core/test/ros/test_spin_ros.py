"""run_node's exit: a Ctrl-C'd node exits 0 once its callbacks return; one whose callback never returns
exits with EXIT_STUCK and names that callback in the stack it prints, instead of hanging at interpreter exit.

Each node runs as its own process (SIGINT, exit status and interpreter exit are what is tested)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: run_node starts rclpy")

from vlac_core.ros.spin import EXIT_STUCK

WAIT_S = 120.0  # for something that does happen: a process starting rclpy on a loaded machine, or exiting

NODE = textwrap.dedent(
    """
    import sys
    import threading

    from rclpy.node import Node

    from vlac_core.ros.spin import run_node

    BLOCK = sys.argv[1] == "block"
    THREADS = int(sys.argv[2])
    release = threading.Event()


    class Waiting(Node):
        def __init__(self):
            super().__init__("waiting")
            self.timer = self.create_timer(0.05, self.callback_that_waits)

        def callback_that_waits(self):
            self.timer.cancel()
            print("in the callback", flush=True)
            if BLOCK:
                release.wait()  # never set: this callback never returns


    run_node(Waiting, threads=THREADS, exit_wait_s=1.0)
    print("run_node returned", flush=True)
    """
)


def run_and_interrupt(tmp_path, mode: str, threads: int = 2) -> subprocess.CompletedProcess:
    """Start the node, SIGINT it once its callback has begun, and collect its exit."""
    script = tmp_path / "node.py"
    script.write_text(NODE)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, str(threads)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = proc.stdout.readline()  # blocks until the callback has started (or the process died)
        assert first == "in the callback\n", (first, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, first + out, err)


@pytest.mark.parametrize("threads", [1, 2])  # SingleThreadedExecutor, MultiThreadedExecutor
def test_a_node_whose_callbacks_return_exits_0_on_ctrl_c(tmp_path, threads):
    done = run_and_interrupt(tmp_path, "return", threads)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("run_node returned\n")
    assert "callbacks still running" not in done.stderr


def test_a_callback_that_never_returns_ends_the_process_with_its_stack(tmp_path):
    done = run_and_interrupt(tmp_path, "block")
    assert done.returncode == EXIT_STUCK, done.stderr
    assert "run_node returned" not in done.stdout
    assert "/waiting: callbacks still running 1 s after the node was destroyed" in done.stderr
    assert "in callback_that_waits" in done.stderr  # faulthandler's line for the stuck frame
