"""ROS transport: per step, the time a 1-arm session spends in ROS transport against the embedded session.

One step of a 1-arm session, as the episode loop makes it (``vlac.episode.loop``): the actor answers
the observation (``act``), the critic scores the step (``progress_pct`` of the previous and the new
front frame) and the new frame (``done_prob``). Four camera images cross per step: one to the actor,
three to the critic (two for progress, one for done); an action comes back.

Two paths run the same calls through the episode loop's own adapters, with identical models:

- ``embedded``: in this process, as ``vlac session`` wires them: ``ServiceActor`` over an
  ``ActorService``, and the shared ``BatchingCritic`` from ``vlac_critic.wiring.build_shared_critic``
  (the builder the critic node calls too);
- ``ros``: the actor node and the critic node as separate processes (their installed console
  scripts, as ``ros2 launch`` starts them), called from a client node in this process through the
  episode manager's ``ServiceActorClient`` and ``ServiceCriticClient`` (``get_action``,
  ``score_progress``, ``score_done``) on a multi-threaded executor.

Both load the same tiny offline checkpoints (``vlac_core.model.build_tiny_model``; the actor's with a
``ValueHead``), decode greedily on one torch thread, and must give the same answers (``same_answers``
counts the steps where they do): model compute is the same on both, so the difference is ROS
transport plus message conversion. Steps alternate between the paths (embedded first on even steps,
ROS first on odd ones) so the machine's noise falls on both alike, and the overhead and the ratio are
medians of per-step paired differences and ratios (``transport_overhead``). ``conversion_ms`` is the
pure Python message conversion of one step (to messages and back), timed apart: a part of the overhead.

The tiny model's compute is small, so the ratio is an upper bound for a real checkpoint; the overhead
in ms is the figure that carries over (it grows with image bytes, not with the model).

Discovery stays on this machine: ``ROS_AUTOMATIC_DISCOVERY_RANGE`` is set to ``LOCALHOST`` when unset,
and the bench refuses to start when it is set to anything else. The ROS domain is ``--domain-id``
(default: ``ROS_DOMAIN_ID`` if set, else 57). Needs the workspace built and ``install/setup.bash``
sourced (vlac_msgs).
Prints a line per image size and, as its last line, one JSON object.
Usage: python bench/ros_transport.py [--sizes 224 448] [--steps 60] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

DEFAULT_DOMAIN_ID = 57
NAMESPACE = "ros_transport_bench"
TASK = "pick up the red cube"
IMAGES_PER_STEP = 4  # actor: 1 view; critic: 2 for progress, 1 for done
NODE_TIMEOUT_S = 120.0  # node start-up (torch import, model load) on a loaded 2-core machine


# -- statistics (pure; tested in src/vlac/test/test_bench_ros_transport.py) ---------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q={q!r}: expected a percentile in [0, 100]")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Fastest, median and p90 of per-step times given in seconds, in ms (3 decimals)."""
    return {
        "min_ms": round(min(seconds) * 1e3, 3),
        "median_ms": round(percentile(seconds, 50) * 1e3, 3),
        "p90_ms": round(percentile(seconds, 90) * 1e3, 3),
    }


def transport_overhead(embedded_s: Sequence[float], ros_s: Sequence[float]) -> dict[str, float]:
    """ROS against embedded, step by step: the median of the paired differences (ROS - embedded) in ms and of
    the paired ratios ROS / embedded.

    Step ``i`` of both paths ran back to back, so pairing cancels the machine's slow drifts (other
    jobs on a shared machine) that a difference of two medians would keep. ``overhead_min_ms`` (fastest
    ROS step - fastest embedded step) is the estimate least touched by other jobs, whose CPU contention
    only ever adds time.
    """
    if len(embedded_s) != len(ros_s) or not embedded_s:
        raise ValueError(f"expected paired step times, got {len(embedded_s)} embedded and {len(ros_s)} ros")
    if min(embedded_s) <= 0.0:
        raise ValueError(f"step times must be positive, got {min(embedded_s)} s")
    differences = [r - e for e, r in zip(embedded_s, ros_s, strict=True)]
    ratios = [r / e for e, r in zip(embedded_s, ros_s, strict=True)]
    return {
        "overhead_ms": round(percentile(differences, 50) * 1e3, 3),
        "ratio": round(percentile(ratios, 50), 3),
        "overhead_min_ms": round((min(ros_s) - min(embedded_s)) * 1e3, 3),
    }


def same_answer(a: float | None, b: float | None) -> bool:
    """Critic answers agree: both unparsable (None), both NaN, or equal."""
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


# -- environment ---------------------------------------------------------------------------------


def loopback_only() -> None:
    """Keep DDS discovery on this machine (set before rclpy is imported; inherited by the node processes)."""
    found = os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if found != "LOCALHOST":
        sys.exit(
            f"ros_transport: ROS_AUTOMATIC_DISCOVERY_RANGE={found!r}; this bench runs with LOCALHOST only "
            "(otherwise Fast DDS sends discovery multicast out of the machine). Unset it or set it to LOCALHOST."
        )


def node_script(package: str, executable: str) -> str:
    """The installed console script of a node, as ``ros2 run`` finds it."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        script = Path(get_package_prefix(package)) / "lib" / package / executable
    except PackageNotFoundError:
        sys.exit(f"ros_transport: package {package!r} not found; build the workspace and source install/setup.bash")
    if not script.is_file():
        sys.exit(f"ros_transport: {script} is missing; build the workspace (colcon build --symlink-install)")
    return str(script)


class NodeProcess:
    """A node started from its console script with ROS parameters; its output goes to a log file."""

    def __init__(self, package: str, executable: str, name: str, params: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        args = ["--ros-args", "-r", f"__node:={name}", "-r", f"__ns:=/{NAMESPACE}"]
        for key, value in params.items():
            args += ["-p", f"{key}:={value}"]
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, node_script(package, executable), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # run_node's Ctrl-C path: destroy the node, shut down
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- models and inputs ---------------------------------------------------------------------------


def build_models(root: Path) -> tuple[Path, Path]:
    """Tiny offline checkpoints: the actor's (with a value head) and the critic's (random weights)."""
    from vlac_actor.value_head import ValueHead
    from vlac_core.model import TinyModelSpec, build_tiny_model

    actor_dir = build_tiny_model(root / "actor", TinyModelSpec(seed=0))
    ValueHead(TinyModelSpec().text_hidden, seed=0).save(actor_dir)
    critic_dir = build_tiny_model(root / "critic", TinyModelSpec(seed=1))
    return Path(actor_dir), Path(critic_dir)


def camera_frames(size_px: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` square RGB frames of noise (ROS sends raw bytes: content does not change the cost)."""
    rng = np.random.default_rng(seed + size_px)
    return [rng.integers(0, 256, (size_px, size_px, 3), dtype=np.uint8) for _ in range(n)]


def observation(frame: np.ndarray, seq: int):
    from vlac_core.types import EndPose, Observation

    return Observation(
        robot_id="arm_0",
        task=TASK,
        images=(frame,),
        end_pose=EndPose(x_mm=250.0, y_mm=-20.0, z_mm=180.0, roll_deg=170.0, pitch_deg=5.0, yaw_deg=-90.0),
        gripper_open=True,
        gripper_mm=30.0,
        joints_rad=(0.0,) * 6,
        stamp_s=1000.0 + seq,
        seq=seq,
    )


# -- one step ------------------------------------------------------------------------------------


def session_step(actor, critic, earlier: np.ndarray, later: np.ndarray, first: np.ndarray, seq: int):
    """One step as the loop makes it; returns (seconds per call, answers) for act, progress, done."""
    obs = observation(later, seq)
    t0 = time.perf_counter()
    action = actor.act(obs, True)
    t1 = time.perf_counter()
    progress = critic.progress_pct(earlier, later, TASK, first)
    t2 = time.perf_counter()
    done = critic.done_prob(later, TASK)
    t3 = time.perf_counter()
    return (t1 - t0, t2 - t1, t3 - t2), (action.text, progress, done)


def conversion_s(frames: list[np.ndarray], msgs, repeats: int) -> list[float]:
    """Seconds per step of message conversion alone: what both sides of the ROS path convert."""
    from vlac_core.convert import observation_from_msg, observation_to_msg
    from vlac_core.images import image_from_msg, image_to_msg

    times = []
    for i in range(repeats):
        earlier, later = frames[i % len(frames)], frames[(i + 1) % len(frames)]
        start = time.perf_counter()
        observation_from_msg(observation_to_msg(observation(later, i + 1), msgs))
        for image in (earlier, later, later):
            image_from_msg(image_to_msg(image, msgs, stamp_s=0.0))
        times.append(time.perf_counter() - start)
    return times


# -- the bench -----------------------------------------------------------------------------------


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str, nodes: Sequence[NodeProcess]) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        for node in nodes:
            node.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready within {timeout_s} s")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 448], help="square image sizes, px")
    parser.add_argument("--steps", type=int, default=60, help="measured steps per size and path")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured steps per size and path")
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", DEFAULT_DOMAIN_ID)))
    args = parser.parse_args(argv)
    if args.steps < 2 or args.warmup < 0 or any(s < 8 for s in args.sizes):
        parser.error("--steps >= 2, --warmup >= 0, --sizes >= 8 px")

    loopback_only()
    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started_s = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)  # the machine is shared: how busy it was, for the reader

    import rclpy
    import torch
    from rclpy.executors import MultiThreadedExecutor
    from transformers.utils import logging as transformers_logging

    from vlac.ros.adapters import ServiceActorClient, ServiceCriticClient
    from vlac.session.adapters import ServiceActor
    from vlac_actor.config import ActorConfig
    from vlac_actor.service import ActorService
    from vlac_core.ros.message_set import rclpy_message_set
    from vlac_critic.config import CriticConfig
    from vlac_critic.wiring import build_shared_critic

    torch.set_num_threads(1)
    logging.getLogger("vlac_critic").setLevel(logging.ERROR)  # random critic weights: every answer is unparsable
    transformers_logging.disable_progress_bar()
    quiet = {"diagnostics_period_s": "60.0"}  # diagnostics once a minute: not in the measured steps
    with tempfile.TemporaryDirectory(prefix="ros_transport_") as tmp:
        tmp_dir = Path(tmp)
        actor_dir, critic_dir = build_models(tmp_dir)
        actor_config = ActorConfig(checkpoint_path=str(actor_dir), policy_version=1, devices=["cpu"], seed=0)
        critic_config = CriticConfig(checkpoint=str(critic_dir), device="cpu", dtype="float32")

        nodes = [
            NodeProcess(
                "vlac_actor",
                "actor_node",
                "actor",
                {"checkpoint_path": str(actor_dir), "policy_version": "1", "devices": "['cpu']", "seed": "0"} | quiet,
                tmp_dir,
            ),
            NodeProcess(
                "vlac_critic",
                "critic_node",
                "critic",
                {"checkpoint": str(critic_dir), "device": "cpu", "dtype": "float32"} | quiet,
                tmp_dir,
            ),
        ]
        rclpy.init()
        client_node = rclpy.create_node("ros_transport_bench_client")
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(client_node)
        spinner = threading.Thread(target=executor.spin, name="bench-executor", daemon=True)
        spinner.start()
        embedded_critic = None
        try:
            msgs = rclpy_message_set()
            embedded_actor = ServiceActor(ActorService(actor_config))
            embedded_critic = build_shared_critic(critic_config)  # what the critic node builds
            ros_actor = ServiceActorClient(client_node, NODE_TIMEOUT_S, msgs, service=f"/{NAMESPACE}/get_action")
            ros_critic = ServiceCriticClient(client_node, NODE_TIMEOUT_S, msgs, namespace=f"/{NAMESPACE}/")
            wait_until(ros_actor.client.service_is_ready, NODE_TIMEOUT_S, "get_action", nodes)
            wait_until(ros_critic.done.service_is_ready, NODE_TIMEOUT_S, "score_done", nodes)
            probe = camera_frames(32, 1)[0]

            def critic_loaded() -> bool:
                try:
                    ros_critic.done_prob(probe, TASK)
                    return True
                except RuntimeError:  # "critic model not loaded yet"
                    return False

            wait_until(critic_loaded, NODE_TIMEOUT_S, "critic model", nodes)
            setup_s = time.perf_counter() - started_s

            paths = {"embedded": (embedded_actor, embedded_critic), "ros": (ros_actor, ros_critic)}
            results = []
            for size in args.sizes:
                frames = camera_frames(size, 4)
                first = frames[0]
                times = {path: [] for path in paths}
                calls = {path: [] for path in paths}
                same = 0
                for i in range(args.warmup + args.steps):
                    earlier, later = frames[i % len(frames)], frames[(i + 1) % len(frames)]
                    order = ("embedded", "ros") if i % 2 == 0 else ("ros", "embedded")
                    answers = {}
                    for path in order:
                        call_s, answers[path] = session_step(*paths[path], earlier, later, first, i + 1)
                        if i >= args.warmup:
                            times[path].append(sum(call_s))
                            calls[path].append(call_s)
                    a, b = answers["embedded"], answers["ros"]
                    same += i >= args.warmup and a[0] == b[0] and same_answer(a[1], b[1]) and same_answer(a[2], b[2])
                row = {
                    "size_px": size,
                    "image_bytes": size * size * 3,
                    "step_image_bytes": IMAGES_PER_STEP * size * size * 3,
                    "embedded": summarize_ms(times["embedded"]),
                    "ros": summarize_ms(times["ros"]),
                    **transport_overhead(times["embedded"], times["ros"]),
                    "conversion_ms": summarize_ms(conversion_s(frames, msgs, args.steps))["median_ms"],
                    "calls_median_ms": {
                        path: {
                            name: round(percentile([c[k] for c in calls[path]], 50) * 1e3, 3)
                            for k, name in enumerate(("act", "progress", "done"))
                        }
                        for path in paths
                    },
                    "same_answers": f"{same}/{args.steps}",
                }
                results.append(row)
                print(
                    f"{size} px: embedded {row['embedded']['median_ms']:.1f} ms (p90 {row['embedded']['p90_ms']:.1f}), "
                    f"ros {row['ros']['median_ms']:.1f} ms (p90 {row['ros']['p90_ms']:.1f}), overhead "
                    f"{row['overhead_ms']:.1f} ms (x{row['ratio']:.2f}; fastest steps {row['overhead_min_ms']:.1f} ms; "
                    f"conversion {row['conversion_ms']:.1f} ms), "
                    f"same answers {row['same_answers']}",
                    flush=True,
                )
        finally:
            if embedded_critic is not None:
                embedded_critic.close()
            executor.shutdown()
            client_node.destroy_node()
            rclpy.try_shutdown()
            for node in nodes:
                node.stop()

    print(
        json.dumps(
            {
                "bench": "ros_transport",
                "what": "per step of a 1-arm session: actor act + critic progress + critic done, sequential; "
                "ros = actor and critic nodes as processes, called from a client node",
                "models": "tiny offline InternVL (actor with value head; critic random weights), greedy, "
                "1 torch thread per process",
                "rmw": os.environ.get("RMW_IMPLEMENTATION", "default (rmw_fastrtps_cpp)"),
                "steps": args.steps,
                "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
                "warmup": args.warmup,
                "sizes": results,
                "setup_s": round(setup_s, 1),
                "total_s": round(time.perf_counter() - started_s, 1),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
