"""Session step split: where one step of ``vlac session`` spends its time, for 1, 2 and 4 arms.

For each arm count a short embedded session (``vlac.session.runtime.EmbeddedSession``, the object
``main_session`` builds) runs from the experiment's parameter file with the shipped models, the
simulator's dense reward (``reward_source: sim_dense``; the critic still scores every step for the
audit, so its time counts), no evaluations, into a temporary output folder. Before ``run()`` each
training arm's ``EpisodeLoop`` gets timing proxies in place of its actor, critic, robot, ground truth,
bag sink and actor thread pool, and the trainer's ``update_once`` / ``save_checkpoint`` are timed.
Nothing under src/ changes. Wall time per call is summed per stage, over every arm:

- ``actor``: ``act`` request to answer (on the loop's worker thread when the next action is computed
  while the critic scores, ``overlap_inference``); ``actor_blocking``: what the loop thread itself
  spent in ``act`` or waiting for the overlapped answer, i.e. the actor time not hidden;
- ``critic``: ``progress_pct`` + ``done_prob`` (the shared ``BatchingCritic``; waiting for a batch counts);
- ``robot_execute``: ``execute`` (safety envelope, IK and the control period's physics);
- ``observe_render``: ``observe`` (joint state and the camera render);
- ``record``: the bag sink: ``append_step`` (``record_step``) and, once per episode, ``begin_episode`` +
  ``finish_episode`` (``record_episode``: bag close, fsync, episode index, handing it to the trainer);
- ``reset``: the scene reset at each episode's start (seed reset or snapshot restore, first render);
- ``truth``: the simulator's ground truth (``truth`` per step, ``ground_truth_success`` per episode);
- ``other``: the rest of ``run_episode`` on the loop thread (the loop's own bookkeeping, GIL waits
  between calls).

Arms run concurrently (threads sharing 2 cores and the GIL), so per-step means are per-arm sums over
all steps: ``actor_blocking + critic + robot_execute + observe_render + record + reset + truth + other``
is one arm's mean time per step (``per_episode_ms``: the once-per-episode parts), and session steps/s
is about ``arms / that``. The trainer row: updates done, wall and thread-CPU seconds per update
(publishing included), updates per collected episode, checkpoint saves, and ``collection_while``: an
arm's ms per step in episodes the trainer's updates overlapped (``busy``, half their time or more) vs
the others (``idle``), i.e. what the trainer thread costs the arms. Each arm count runs in a child
process (fresh models, MuJoCo and torch state).

``--variants`` adds what-if runs that size a change: ``no_trainer`` (episodes are recorded but never
reach the trainer), ``no_critic`` (a critic answering at once; sim_* rewards only), ``bare`` (both),
``in_process`` (the critic's model and the trainer's updates under the session's own GIL, ``own_process:
false`` in ``critic_node`` and ``trainer_node``), ``lessons`` (``trainer_node.lesson_agreement`` on: what the
per-update lesson diagnostic costs an update);
JSON keys ``<arms>/<variant>``. Timings on a shared machine are noisy (each run records its load
average): compare runs of one invocation.
Prints a table and, as its last line, one JSON object.
Usage: MUJOCO_GL=egl python bench/session_step.py [--arms 1 2 4] [--episodes 8] [--max-steps 30]
       [--variants full no_trainer no_critic bare in_process lessons] [--reward-source sim_dense] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config" / "experiment_pick_bowl.yaml"

#: Loop method -> stage, per object the loop calls.
ACTOR_METHODS = {"act": "actor"}
CRITIC_METHODS = {"progress_pct": "critic", "done_prob": "critic"}
ROBOT_METHODS = {
    "execute": "robot_execute",
    "observe": "observe_render",
    "reset": "reset",
    "ground_truth_success": "truth",
}
TRUTH_METHODS = {"truth": "truth"}
SINK_METHODS = {"begin_episode": "record_episode", "append_step": "record_step", "finish_episode": "record_episode"}
#: Stages timed on an arm's loop thread; they nest inside ``run_episode`` without overlapping.
LOOP_STAGES = (
    "actor_inline",
    "actor_wait",
    "critic",
    "robot_execute",
    "observe_render",
    "record_step",
    "record_episode",
    "reset",
    "truth",
)
#: The per-step split, in report order.
SPLIT_KEYS = (
    "actor",
    "actor_blocking",
    "critic",
    "robot_execute",
    "observe_render",
    "record",
    "reset",
    "truth",
    "other",
)

_worker = threading.local()  # .active: this thread is running a call submitted through a PoolProxy


def on_pool_worker() -> bool:
    return getattr(_worker, "active", False)


class StageTimer:
    """Wall seconds and calls per stage, summed; thread-safe (an arm's loop and actor threads share one)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.episodes: list[tuple[float, float, int]] = []  # (start, end, steps) of each timed episode
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds
            self.calls[stage] += 1

    def timed(self, fn: Callable, stage: str, inline_stage: str | None = None) -> Callable:
        """``fn`` that adds its wall time to ``stage`` (and to ``inline_stage`` when not on a pool worker)."""

        def call(*args, **kwargs):
            start = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = self.clock() - start
                self.add(stage, elapsed)
                if inline_stage is not None and not on_pool_worker():
                    self.add(inline_stage, elapsed)

        return call

    def snapshot(self) -> tuple[dict[str, float], dict[str, int]]:
        with self._lock:
            return dict(self.seconds), dict(self.calls)


class TimingProxy:
    """Stands in for ``target``: the methods named in ``methods`` are timed into their stage, everything
    else (attributes, properties, other methods, attribute assignment) goes to ``target`` unchanged.

    ``inline_suffix``: a timed call not made on a PoolProxy worker is also added to ``stage + suffix``
    (the actor's calls on the loop thread itself, as opposed to the overlapped ones)."""

    def __init__(
        self, target: Any, timer: StageTimer, methods: Mapping[str, str], *, inline_suffix: str | None = None
    ) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_timer", timer)
        object.__setattr__(self, "_methods", dict(methods))
        object.__setattr__(self, "_inline_suffix", inline_suffix)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        stage = self._methods.get(name)
        if stage is None:
            return value
        inline = stage + self._inline_suffix if self._inline_suffix else None
        return self._timer.timed(value, stage, inline)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)


class _TimedFuture:
    """A Future whose ``result`` / ``exception`` waits are timed (the loop thread waiting for the actor)."""

    def __init__(self, future, timer: StageTimer, stage: str) -> None:
        self._future, self._timer, self._stage = future, timer, stage

    def result(self, timeout: float | None = None):
        return self._timer.timed(self._future.result, self._stage)(timeout)

    def exception(self, timeout: float | None = None):
        return self._timer.timed(self._future.exception, self._stage)(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._future, name)


class PoolProxy:
    """Stands in for the loop's executor: submitted calls run marked as pool work; waits on them are timed."""

    def __init__(self, pool, timer: StageTimer, wait_stage: str = "actor_wait") -> None:
        self._pool, self._timer, self._wait_stage = pool, timer, wait_stage

    def submit(self, fn: Callable, /, *args, **kwargs) -> _TimedFuture:
        def marked(*a, **k):
            _worker.active = True
            try:
                return fn(*a, **k)
            finally:
                _worker.active = False

        return _TimedFuture(self._pool.submit(marked, *args, **kwargs), self._timer, self._wait_stage)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def instrument_loop(loop, timer: StageTimer) -> None:
    """Put timing proxies in place of what ``loop`` (an EpisodeLoop) calls, and time its episodes."""
    loop.actor = TimingProxy(loop.actor, timer, ACTOR_METHODS, inline_suffix="_inline")
    loop.critic = TimingProxy(loop.critic, timer, CRITIC_METHODS)
    loop.robot = TimingProxy(loop.robot, timer, ROBOT_METHODS)
    if loop.ground_truth is not None:
        loop.ground_truth = TimingProxy(loop.ground_truth, timer, TRUTH_METHODS)
    loop.sink = TimingProxy(loop.sink, timer, SINK_METHODS)
    loop._pool = PoolProxy(loop._pool, timer)  # the overlapped actor calls and the loop's waits for them
    run_episode = loop.run_episode

    def timed_episode(*args, **kwargs):
        start = timer.clock()
        try:
            result = run_episode(*args, **kwargs)
        finally:
            end = timer.clock()
            timer.add("episode", end - start)
        timer.episodes.append((start, end, result.episode.length))
        return result

    loop.run_episode = timed_episode


def step_ms_by_trainer(
    episodes: list[tuple[float, float, int]], updates: list[tuple[float, float]], busy_share: float = 0.5
) -> dict[str, dict[str, float]]:
    """Collection speed while the trainer updates vs while it is idle: episodes (start, end, steps) are
    ``busy`` when updates (start, end) cover at least ``busy_share`` of their time, else ``idle``;
    per group the episodes, steps and mean wall ms per step (an arm's step, as ``arm_step_ms``)."""
    groups: dict[str, list[float]] = {"idle": [0, 0, 0.0], "busy": [0, 0, 0.0]}
    for start, end, steps in episodes:
        covered = sum(max(0.0, min(end, u_end) - max(start, u_start)) for u_start, u_end in updates)
        group = groups["busy" if end > start and covered / (end - start) >= busy_share else "idle"]
        group[0] += 1
        group[1] += steps
        group[2] += end - start
    return {
        name: {"episodes": n, "steps": steps, "step_ms": 1000.0 * wall / steps if steps else None}
        for name, (n, steps, wall) in groups.items()
    }


def step_split(seconds: Mapping[str, float], steps: int) -> dict[str, float]:
    """Milliseconds per step of each stage from summed seconds (``episode``: run_episode wall time).

    ``actor`` is every act call (overlapped ones included); ``actor_blocking`` the part the loop thread
    spent (inline calls + waits for overlapped ones); ``other`` = episode time - the loop-thread stages.
    """
    if steps <= 0:
        return {key: 0.0 for key in SPLIT_KEYS}

    def s(stage: str) -> float:
        return seconds.get(stage, 0.0)

    split = {
        "actor": s("actor"),
        "actor_blocking": s("actor_inline") + s("actor_wait"),
        "critic": s("critic"),
        "robot_execute": s("robot_execute"),
        "observe_render": s("observe_render"),
        "record": s("record_step") + s("record_episode"),
        "reset": s("reset"),
        "truth": s("truth"),
        "other": s("episode") - sum(s(stage) for stage in LOOP_STAGES),
    }
    return {key: 1000.0 * value / steps for key, value in split.items()}


#: What a run keeps: ``full`` the session as configured; ablations (what-if, to size a change):
#: ``no_trainer`` (episodes never reach the trainer), ``no_critic`` (a constant critic: no scoring,
#: sim_* rewards only), ``bare`` (both), ``in_process`` (the critic's model and the trainer's updates in
#: the session's own process, ``own_process: false``: what running them in child processes saves), ``lessons``
#: (``trainer_node.lesson_agreement`` on: the lesson diagnostic's extra backward pass per update).
VARIANTS = ("full", "no_trainer", "no_critic", "bare", "in_process", "lessons")


class NullCritic:
    """A critic that answers at once (progress 0 %, done probability 0): the cost of a step without scoring."""

    def progress_pct(self, earlier_image, later_image, task, first_image) -> float:
        return 0.0

    def done_prob(self, image, task) -> float:
        return 0.0


def result_key(arms: int, variant: str) -> str:
    """The JSON key of one run: the arm count, with the variant after a slash unless it is ``full``."""
    return str(arms) if variant == "full" else f"{arms}/{variant}"


def per_episode(seconds: Mapping[str, float], episodes: int) -> dict[str, float]:
    """Milliseconds per episode of the once-per-episode stages and of the whole episode."""
    keys = {"episode": "episode", "reset": "reset", "record_episode": "record_episode"}
    return {key: 1000.0 * seconds.get(stage, 0.0) / episodes if episodes else 0.0 for key, stage in keys.items()}


def trainer_summary(update_s: list[float], update_cpu_s: list[float], update_steps: list[int], episodes: int) -> dict:
    """The trainer row: updates done (those that trained), seconds per update, updates per episode."""
    n = len(update_s)
    return {
        "updates": n,
        "s_per_update": sum(update_s) / n if n else None,
        "cpu_s_per_update": sum(update_cpu_s) / n if n else None,
        "ms_per_trained_step": 1000.0 * sum(update_s) / sum(update_steps) if sum(update_steps) else None,
        "updates_per_episode": n / episodes if episodes else None,
        "update_s_total": sum(update_s),
    }


# -- one arm count (child process) ------------------------------------------------------------------


def session_files(
    config: Path,
    max_steps: int | None,
    reward_source: str,
    *,
    trainer: bool = True,
    own_process: bool | None = None,
    lessons: bool | None = None,
):
    """The parameter file with the bench's changes: reward source, step limit, no evaluations, fresh folder
    (``trainer=False``: episodes are recorded but not handed to the trainer, so it never updates;
    ``own_process``: set it for the critic and the trainer, ``lessons``: the trainer's lesson_agreement; None
    keeps the file's)."""
    from vlac.param_file import load_session_files

    files = load_session_files(config)
    if own_process is not None:
        files = replace(
            files,
            critic=replace(files.critic, own_process=own_process),
            trainer=replace(files.trainer, own_process=own_process),
        )
    if lessons is not None:
        files = replace(files, trainer=replace(files.trainer, lesson_agreement=lessons))
    manager = replace(files.manager, reward_source=reward_source, send_to_trainer=trainer)
    if max_steps:
        manager = replace(manager, max_steps=max_steps)
    session = replace(
        files.session, eval_every_episodes=0, eval_at_start=False, eval_at_end=False, resume=False, demo_dir=""
    )
    return replace(files, manager=manager, session=session)


def _time_trainer(trainer, record: dict[str, list]) -> None:
    update_once, save_checkpoint = trainer.update_once, trainer.save_checkpoint

    def timed_update():
        wall, cpu = time.perf_counter(), time.thread_time()
        stats = update_once()
        if stats is not None:  # None: nothing to train on, no update
            record["update_span"].append((wall, time.perf_counter()))
            record["update_s"].append(time.perf_counter() - wall)
            record["update_cpu_s"].append(time.thread_time() - cpu)
            record["update_steps"].append(int(stats.steps))
            record["update_warmup"].append(bool(stats.warmup))
        return stats

    def timed_save():
        wall = time.perf_counter()
        try:
            return save_checkpoint()
        finally:
            record["checkpoint_s"].append(time.perf_counter() - wall)

    trainer.update_once = timed_update
    trainer.save_checkpoint = timed_save


def run_one(
    arms: int,
    episodes: int,
    config: Path,
    max_steps: int | None,
    reward_source: str,
    out: Path,
    variant: str = "full",
) -> dict:
    from vlac.session.runtime import EmbeddedSession

    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    if variant in ("no_critic", "bare") and reward_source == "critic":
        raise ValueError(f"variant {variant}: needs a sim_* reward source (the critic is the reward otherwise)")
    files = session_files(
        config,
        max_steps,
        reward_source,
        trainer=variant not in ("no_trainer", "bare"),
        own_process=False if variant == "in_process" else None,
        lessons=True if variant == "lessons" else None,
    )
    session = EmbeddedSession(files, episodes=episodes, arms=arms, out_dir=out)
    started = time.perf_counter()
    session.prepare()
    setup_s = time.perf_counter() - started
    timers = {arm.robot.robot_id: StageTimer() for arm in session.arms}
    for arm in session.arms:
        if variant in ("no_critic", "bare"):
            arm.loop.critic = NullCritic()
        instrument_loop(arm.loop, timers[arm.robot.robot_id])
    trainer_record: dict[str, list] = defaultdict(list)
    _time_trainer(session.trainer, trainer_record)
    load_before = os.getloadavg()[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = session.run()
    wall_s = time.perf_counter() - wall0
    cpu_s = time.process_time() - cpu0
    totals: dict[str, float] = defaultdict(float)
    per_arm = {}
    for robot_id, timer in timers.items():
        seconds, calls = timer.snapshot()
        steps = calls.get("robot_execute", 0)  # one execute per step
        per_arm[robot_id] = {
            "episodes": calls.get("episode", 0),
            "steps": steps,
            "seconds": {k: round(v, 3) for k, v in sorted(seconds.items())},
        }
        for stage, value in seconds.items():
            totals[stage] += value
    steps = sum(a["steps"] for a in per_arm.values())
    collected = sum(a["episodes"] for a in per_arm.values())
    trainer = trainer_summary(
        trainer_record["update_s"], trainer_record["update_cpu_s"], trainer_record["update_steps"], collected
    )
    trainer["each"] = [  # per update: value warm-up or PPO, wall s, trained steps
        {"warmup": w, "s": s, "steps": n}
        for w, s, n in zip(
            trainer_record["update_warmup"], trainer_record["update_s"], trainer_record["update_steps"], strict=True
        )
    ]
    trainer["collection_while"] = step_ms_by_trainer(
        [e for timer in timers.values() for e in timer.episodes], trainer_record["update_span"]
    )
    trainer["checkpoints"] = len(trainer_record["checkpoint_s"])
    trainer["checkpoint_s_total"] = sum(trainer_record["checkpoint_s"])
    update_log = out / "trainer" / "updates.jsonl"  # the trainer's own log: one line per update
    trainer["updates_jsonl_lines"] = len(update_log.read_text().splitlines()) if update_log.exists() else 0
    trainer["share_of_wall"] = trainer["update_s_total"] / wall_s if wall_s else None
    return {
        "arms": arms,
        "variant": variant,
        "exit_code": result.exit_code,
        "episodes": collected,
        "steps": steps,
        "setup_s": setup_s,
        "wall_s": wall_s,
        "steps_per_s": steps / wall_s if wall_s else 0.0,
        "process_cpu_s": cpu_s,
        "cores_busy": cpu_s / wall_s if wall_s else 0.0,
        "loadavg_1m_before": load_before,
        "loadavg_1m_after": os.getloadavg()[0],
        "per_step_ms": step_split(totals, steps),
        "arm_step_ms": 1000.0 * totals.get("episode", 0.0) / steps if steps else 0.0,
        "per_episode_ms": per_episode(totals, collected),
        "trainer": trainer,
        "critic_batches": session.critic.batch_stats(),
        "per_arm": per_arm,
    }


# -- parent: every arm count, the table, the JSON ---------------------------------------------------


def child_command(args: argparse.Namespace, arms: int, variant: str, work: Path) -> list[str]:
    """The command line of the child process that runs one arm count and variant."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--variant",
        variant,
        "--one",
        str(arms),
        "--episodes",
        str(args.episodes),
        "--config",
        str(args.config),
        "--reward-source",
        args.reward_source,
        "--work",
        str(work),
        "--max-steps",
        str(args.max_steps or 0),
    ]


def _child(args: argparse.Namespace, arms: int, variant: str, work: Path) -> dict:
    result_path = work / f"result_{arms}_{variant}.json"
    cmd = child_command(args, arms, variant, work)
    proc = subprocess.run(cmd, stdout=sys.stderr, cwd=ROOT, check=False)  # the session's log goes to stderr
    if proc.returncode != 0 or not result_path.exists():
        return {"arms": arms, "variant": variant, "error": f"child exited with {proc.returncode}"}
    return json.loads(result_path.read_text())


def format_table(results: list[dict]) -> str:
    head = f"{'run':>14} {'wall s':>7} {'steps':>6} {'steps/s':>7} " + " ".join(f"{k[:10]:>10}" for k in SPLIT_KEYS)
    head += f" {'arm ms':>7} {'updates':>7} {'s/upd':>6} {'upd/ep':>6}"
    note = "(ms per step; actor includes the overlapped calls; an arm's step is actor_blocking + critic + ... + other)"
    lines = [head, note]
    for r in results:
        if "error" in r:
            lines.append(f"{result_key(r['arms'], r['variant']):>14} {r['error']}")
            continue
        t = r["trainer"]
        row = f"{result_key(r['arms'], r['variant']):>14} {r['wall_s']:>7.1f} {r['steps']:>6} {r['steps_per_s']:>7.2f} "
        row += " ".join(f"{r['per_step_ms'][k]:>10.1f}" for k in SPLIT_KEYS)
        row += f" {r['arm_step_ms']:>7.1f} {t['updates']:>7} {t['s_per_update'] or 0:>6.2f}"
        row += f" {t['updates_per_episode'] or 0:>6.2f}"
        lines.append(row)
    return "\n".join(lines)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--episodes", type=int, default=8, help="training episodes per arm count (all arms)")
    parser.add_argument("--max-steps", type=int, default=30, help="episode step limit (0: the file's)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--reward-source", default="sim_dense")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["full"],
        choices=VARIANTS,
        help="full, and what-if runs after it for every arm count: no_trainer, no_critic, bare (both), in_process, "
        "lessons (the trainer's lesson diagnostic on)",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child: one arm count
    parser.add_argument("--variant", default="full", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.one is not None:
        out = args.work / f"arms_{args.one}_{args.variant}"
        result = run_one(
            args.one, args.episodes, args.config, args.max_steps or None, args.reward_source, out, args.variant
        )
        (args.work / f"result_{args.one}_{args.variant}.json").write_text(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="session_step_") as tmp:
        results = [_child(args, arms, variant, Path(tmp)) for arms in args.arms for variant in args.variants]
    print(format_table(results))
    print(
        json.dumps(
            _rounded(
                {
                    "bench": "session_step",
                    "config": str(args.config),
                    "episodes": args.episodes,
                    "max_steps": args.max_steps,
                    "reward_source": args.reward_source,
                    "cpu_count": os.cpu_count(),
                    "machine": platform.machine(),
                    "results": {result_key(r["arms"], r["variant"]): r for r in results},
                }
            )
        )
    )


if __name__ == "__main__":
    main()
