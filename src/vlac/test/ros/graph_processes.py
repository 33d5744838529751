"""The whole-graph test's two halves: node processes started from ``vlac.graph``'s node list, and an
rclpy probe that drives and watches them. Every wait is on an event with a deadline, never a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from action_msgs.msg import GoalStatus
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor

from vlac.graph import NodeSpec
from vlac_core.ros.action_client import RecordedActionClient
from vlac_core.ros.background_spin import BackgroundSpin
from vlac_core.ros.qos import EPISODES_QOS, POLICY_VERSION_QOS
from vlac_msgs.action import RunEpisode
from vlac_msgs.msg import Episode, PolicyVersion

#: the colcon install folder of this checkout (the console scripts ``ros2 launch`` would run)
INSTALL = Path(__file__).resolve().parents[4] / "install"


class GraphProcesses:
    """One OS process per node spec, each with its log file; stopped in reverse order at close."""

    def __init__(self, specs: list[NodeSpec], work_dir: Path) -> None:
        self.specs = {spec.fqn: spec for spec in specs}
        self.work_dir = work_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self._starts: dict[str, int] = {}
        # One torch thread per process: seven processes share two cores.
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def start(self, fqn: str | None = None) -> None:
        for name in [fqn] if fqn else list(self.specs):
            spec = self.specs[name]
            slug = name.strip("/").replace("/", "__")
            overrides = self.work_dir / f"{slug}.overrides.yaml"
            overrides.write_text(spec.overrides_yaml())
            self._starts[name] = self._starts.get(name, 0) + 1
            log = open(self.work_dir / f"{slug}.{self._starts[name]}.log", "w")  # noqa: SIM115 - owned by the process
            self.procs[name] = subprocess.Popen(
                spec.command(INSTALL, overrides), stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
            log.close()

    def signal(self, fqn: str, sig: int, timeout_s: float = 120.0) -> int:
        """Send ``sig`` and wait for the process to end; its exit status."""
        proc = self.procs[fqn]
        proc.send_signal(sig)
        return proc.wait(timeout=timeout_s)

    def alive(self, fqn: str) -> bool:
        return self.procs[fqn].poll() is None

    def logs(self) -> str:
        """The tail of every node's log, for a failing assertion's message."""
        parts = []
        for path in sorted(self.work_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {path.name}\n{text[-3000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


class Probe:
    """An rclpy node in the test process: RunEpisode clients, and what the graph publishes."""

    def __init__(self, namespaces: list[str]) -> None:
        self.node = rclpy.create_node("whole_graph_probe")
        self._cond = threading.Condition()
        self.versions: list[int] = []
        self.episodes: list[Episode] = []
        self.diagnostics: dict[str, dict[str, str]] = {}  # status name -> key/values (latest)
        self.node.create_subscription(PolicyVersion, "/policy_version", self._on_version, POLICY_VERSION_QOS)
        self.node.create_subscription(Episode, "/episodes", self._on_episode, EPISODES_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.clients = {ns: RecordedActionClient(self.node, RunEpisode, f"/{ns}/run_episode") for ns in namespaces}
        self.executor = MultiThreadedExecutor(num_threads=4)
        self.executor.add_node(self.node)
        self._spin = BackgroundSpin(self.executor)

    def topic_names(self) -> set[str]:
        """The topics the probe's node sees in the graph now (discovery may still add some)."""
        return {name for name, _ in self.node.get_topic_names_and_types()}

    def _notify(self, update: Callable[[], None]) -> None:
        with self._cond:
            update()
            self._cond.notify_all()

    def _on_version(self, msg: PolicyVersion) -> None:
        self._notify(lambda: self.versions.append(int(msg.version)))

    def _on_episode(self, msg: Episode) -> None:
        self._notify(lambda: self.episodes.append(msg))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        def update() -> None:
            for status in msg.status:
                self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values} | {
                    "_message": status.message
                }

        self._notify(update)

    def wait_for(self, predicate: Callable[[], object], timeout_s: float, what: str, logs: Callable[[], str]):
        """Wait until ``predicate()`` is truthy (re-checked on every message and every second)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout_s:.0f} s\n{self.summary()}\n{logs()}")
                self._cond.wait(min(remaining, 1.0))

    def summary(self) -> str:
        """What the probe saw (call under ``_cond``): a failed wait then tells a lost message from a stalled node."""
        episodes = [f"{m.robot_id}:{m.episode_id}" for m in self.episodes]
        statuses = "\n".join(f"  {name}: {values}" for name, values in sorted(self.diagnostics.items()))
        return f"----- probe\nversions {self.versions}\nepisodes {episodes}\nlatest diagnostics\n{statuses}"

    def diagnostic(self, node_name: str) -> dict[str, str] | None:
        """The latest diagnostic status of the node ``node_name`` (statuses are named "[/ns/]node: what")."""
        for name, values in self.diagnostics.items():
            if name.split(":", 1)[0].rsplit("/", 1)[-1] == node_name:
                return values
        return None

    def forget_diagnostics(self, node_name: str) -> None:
        """Drop what a node reported (before restarting it, so the next report is the new process's)."""
        with self._cond:
            self.diagnostics = {
                k: v for k, v in self.diagnostics.items() if k.split(":", 1)[0].rsplit("/", 1)[-1] != node_name
            }

    def episodes_subscribers(self) -> int:
        return self.node.count_subscribers("/episodes")

    def wait_servers(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(c.wait_for_server(timeout_sec=max(0.0, deadline - time.monotonic())) for c in self.clients.values())

    def send(self, namespace: str, goal: RunEpisode.Goal) -> EpisodeCall:
        return EpisodeCall(self.clients[namespace], goal)

    def close(self) -> None:
        self._spin.stop()
        self.node.destroy_node()


class EpisodeCall:
    """One RunEpisode goal: its feedback as it arrives, then its result."""

    def __init__(self, client: RecordedActionClient, goal: RunEpisode.Goal) -> None:
        self.feedback: list[RunEpisode.Feedback] = []
        self._feedback_cond = threading.Condition()
        self.done = threading.Event()
        self.result: RunEpisode.Result | None = None
        self.status: int | None = None
        self.accepted: bool | None = None
        future = client.send_goal_async(goal, feedback_callback=self._on_feedback)
        future.add_done_callback(self._on_goal)

    def _on_feedback(self, msg) -> None:
        with self._feedback_cond:
            self.feedback.append(msg.feedback)
            self._feedback_cond.notify_all()

    def wait_feedback(self, steps: int, timeout_s: float) -> bool:
        """Wait until ``steps`` feedback messages (recorded steps) have arrived."""
        with self._feedback_cond:
            return self._feedback_cond.wait_for(lambda: len(self.feedback) >= steps, timeout_s)

    def _on_goal(self, future) -> None:
        handle = future.result()
        self.accepted = handle.accepted
        if not handle.accepted:
            self.done.set()
            return
        handle.get_result_async().add_done_callback(self._on_result)

    def _on_result(self, future) -> None:
        response = future.result()
        self.result, self.status = response.result, response.status
        self.done.set()

    @property
    def succeeded(self) -> bool:
        return self.status == GoalStatus.STATUS_SUCCEEDED
