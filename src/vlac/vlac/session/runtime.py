"""The embedded runtime: the whole RL loop in one process, no ROS (``vlac session``).

Wiring (the same core objects the ROS nodes drive):

    K arm threads ── EpisodeManager(EpisodeLoop(SimArm k, ServiceActor, BatchingCritic, BagSink k, operator))
         │                         │ shared ActorService (replica pool)   │ shared Critic
         └─ finished episode (bag closed on disk) ──> AsyncTrainer.submit ──> trainer thread:
                PPO update -> PolicyPublisher -> ActorService.announce_version -> replicas reload

``EpisodeManager`` (return-and-explore, intervention rate) is the same core the episode_manager
node drives; only the adapters differ (vlac.session.adapters here, vlac.ros.adapters there). Both
runtimes build the pieces with the same functions: ``vlac.episode.arm_wiring`` (loop, manager,
store, bag sink, per-arm seeds), ``vlac_critic.wiring`` (the batching critic),
``vlac_trainer.online.wiring`` (start point, trainer, the actor/trainer agreement check).

Separate simulated arms (``eval_arm``; with ``session.eval_parallel`` K, also ``eval_arm_1`` ..
``eval_arm_<K-1>``, each on a thread of its own, their trials side by side so the actor and the
critic score them in batches) run the greedy evaluations (fixed seeds, ground-truth success):
before training (training arms wait for it, so the starting policy is what is measured), after
every ``eval_every_episodes`` training episodes (the training arms go on collecting), and at the
end once the trainer is idle and the actor serves its last version. So every training arm
collects alike, and "episodes per arm" means the same for 1, 2 or 4 arms. With
``episode_manager.max_waiting_batches`` N, a training arm waits before its next episode while N batches of
collected episodes wait for an update, so a trainer slower than collection trains on every episode
instead of dropping the ones that grew too old.

Output folder: ``bags/train/<id>/``, ``bags/eval/<id>/`` (rosbag2 MCAP), ``episodes.jsonl``,
``evaluations.jsonl``, ``trainer/`` (checkpoints), ``policies/v<N>/``, ``success_rate.png``,
``summary.json``, ``session.lock``. Paths stored in the folder are relative to it, so it can be
moved or copied and resumed. One run holds the folder at a time (``outdir_lock``: a second run is
refused, naming the holder's pid and host; a dead holder's lock is taken over).

Ctrl-C (SIGINT), SIGTERM and SIGHUP (``stop_signals``) set the stop event: each arm ends its episode
at the next step as ``shutdown`` and records it, the trainer saves its state, the plot and summary
are written, and the command exits with 128 + the signal (130, 143, 129). Running again with the
same output folder resumes: first the leftovers of a crash (``kill -9``) are repaired
(``outdir_recovery``: unfinished bags rebuilt as aborted episodes, cut-off JSONL lines set aside),
then the trainer state, policy version and return-and-explore store come back (a damaged
checkpoint generation falls back to the newest intact one), bags recorded after the last
checkpoint are handed to the trainer again (nothing stored is lost), and only the training
episodes still missing from ``session.episodes`` run (Ctrl-C'd and crash-cut ones do not count).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from piper_driver.sim.arm import SimArm, SnapshotStore, seed_start_state
from vlac.episode.arm_wiring import arm_seeds, bag_sink, build_episode_manager, return_explore_store
from vlac.episode.backpressure import BacklogGate
from vlac.episode.evaluation import evaluation_result, run_in_parallel, trial_result
from vlac.episode.intervention import InterventionTracker
from vlac.episode.loop import EpisodeLoop
from vlac.episode.manager import EpisodeGoal, EpisodeManager
from vlac.episode.recording import BagSink, EpisodeIndex
from vlac.episode.return_explore import ReturnAndExploreStore
from vlac.param_file import SessionFiles
from vlac.session.adapters import ServiceActor
from vlac.session.demos import ScriptedOperator, load_demos, score_demo
from vlac.session.outdir_lock import OutdirBusy, OutdirLock
from vlac.session.outdir_recovery import RecoveryReport, recover_outdir
from vlac.session.report import is_training_episode, plot_success, summarize
from vlac.session.schedule import EpisodeSchedule
from vlac.stop_signals import StopSignals
from vlac_core.jsonio import append_jsonl, write_json
from vlac_core.types import Termination

#: Robot id of the simulated arm that runs the greedy evaluations.
EVAL_ARM = "eval_arm"
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class SessionError(RuntimeError):
    """The session cannot start as configured; the message names the setting and what to do."""


@dataclass
class _Arm:
    robot: SimArm
    loop: EpisodeLoop
    sink: BagSink
    rng: np.random.Generator
    manager: EpisodeManager | None = None  # training arms: the same manager core the ROS node drives


@dataclass
class SessionResult:
    exit_code: int
    out_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


def _say(message: str) -> None:
    print(message, flush=True)


class EmbeddedSession:
    def __init__(self, files: SessionFiles, *, episodes: int | None = None, arms: int | None = None, out_dir=None):
        self.files = files
        s = files.session
        self.session = replace(
            s,
            episodes=s.episodes if episodes is None else episodes,
            arms=s.arms if arms is None else arms,
            out_dir=s.out_dir if out_dir is None else str(out_dir),
        )
        self.out = Path(self.session.out_dir)
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self.schedule = EpisodeSchedule(self.session.episodes, self.session.eval_every_episodes)
        self._arms_done = 0
        self._baseline_done = threading.Event()
        self.errors: list[str] = []
        self.evaluations: list[dict[str, Any]] = []
        self.intervention = InterventionTracker(files.manager.intervention_window)
        self.return_explore = return_explore_store(files.manager)
        self.resumed = False
        self._prepared = False
        self._folder_lock: OutdirLock | None = None
        self.recovery: RecoveryReport | None = None  # what was repaired on start (a resume after a crash)

    # -- set-up -----------------------------------------------------------------------------------

    def check_models(self) -> None:
        """The checkpoint folders exist and actor and trainer agree (the checks the nodes run too)."""
        from vlac_core.checkpoint_dir import require_checkpoint_dir
        from vlac_core.config import ConfigError
        from vlac_critic.wiring import check_critic_checkpoint
        from vlac_trainer.online.wiring import check_actor_trainer_agree, check_groups

        f = self.files
        try:
            require_checkpoint_dir(f.actor.checkpoint_path, "actor_node.checkpoint_path")
            check_critic_checkpoint(f.critic)
            check_actor_trainer_agree(f.actor, f.trainer)
            check_groups(f.trainer.advantage, f.manager.scene_repeats, f.trainer.episodes_per_update)
        except ConfigError as error:
            raise SessionError(f"{f.path}: {error}") from None

    def _build(self) -> None:
        import torch

        from vlac_actor.service import ActorService
        from vlac_critic.wiring import build_shared_critic
        from vlac_trainer.online.wiring import build_trainer, start_point

        f, s, m = self.files, self.session, self.files.manager
        if s.torch_threads:
            torch.set_num_threads(s.torch_threads)
        self.check_models()
        if not s.resume and (self.out / "episodes.jsonl").exists():
            raise SessionError(
                f"{self.out} already holds a session and session.resume is false; choose another --out or delete it"
            )
        for sub in ("bags/train", "bags/eval", "trainer", "policies"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.index = EpisodeIndex(self.out / "episodes.jsonl")

        start = start_point(f.trainer, self.out, resume=s.resume)
        self.resumed = start.resumed
        _say(
            f"session: critic {f.critic.checkpoint}, actor {start.policy_path} "
            f"(policy version {start.policy_version}), done rule {f.manager.done_confirm_steps} step(s) over "
            f"{f.manager.done_threshold:g} (episode_manager.done_rule: {f.manager.done_rule})"
        )
        self.critic = build_shared_critic(f.critic)  # the arms' concurrent calls share batches
        self.actor_service = ActorService(
            replace(f.actor, checkpoint_path=start.policy_path, policy_version=start.policy_version)
        )
        # Backpressure: one rule for both runtimes. Here the trainer's backlog reports feed the gate directly
        # (under ROS they come over /trainer_backlog); they arrive in order, under the trainer's lock.
        self.backlog = BacklogGate(m.max_waiting_batches)
        per_update = f.trainer.episodes_per_update
        self.trainer = build_trainer(
            f.trainer,
            self.out,
            start,
            self.actor_service.announce_version,
            extra_state=self._extra_state,
            on_backlog=lambda waiting: self.backlog.heard(waiting, per_update),
        )
        if self.resumed:
            if "return_explore" in self.trainer.restored_extra:
                self.return_explore = ReturnAndExploreStore.from_state(
                    self.trainer.restored_extra["return_explore"], self.trainer.restored_arrays
                )
            self._reingest_missing()
            self.backlog.heard(self.trainer.backlog, per_update)  # rollouts restored from the checkpoint wait too
            self.evaluations = [json.loads(x) for x in _lines(self.out / "evaluations.jsonl")]
        # Ctrl-C'd episodes were cut short: they are kept (bags, trainer) but not counted, so a resumed
        # session runs them again and keeps its evaluation schedule. Each arm's own count places it in its
        # scenes (arms finish at different rates).
        done = Counter(row["robot_id"] for row in self.index.rows() if is_training_episode(row))
        self.schedule = EpisodeSchedule(
            s.episodes,
            s.eval_every_episodes,
            finished=sum(done.values()),
            evaluated_after=[e["after_episodes"] for e in self.evaluations],
        )
        if s.demo_dir:
            self._load_demos()

        task = f.sim.task
        snapshots = SnapshotStore()
        seeds = [arm_seeds(m.scene_seed, k, done[f"arm_{k}"], m.scene_pool, m.scene_repeats) for k in range(s.arms)]
        robots = {
            f"arm_{k}": SimArm(
                f"arm_{k}",
                task,
                f.sim.sim_config(),
                f.sim.safety_config(),
                first_seed=seeds[k].scene_seed,
                scenes=seeds[k].scenes,
                snapshots=snapshots,
            )
            for k in range(s.arms)
        }
        guided = s.guided_explore_prob > 0 or s.guided_explore_stall_steps > 0
        self.operator = (
            ScriptedOperator(
                robots, task, s.takeover_after_steps, s.guided_explore_stall_steps, tuple(s.guided_explore_stall_phases)
            )
            if guided
            else None
        )
        actor = ServiceActor(self.actor_service)
        # The evaluation arm's own actor: it pins one version per evaluation on a replica of its own,
        # while the training arms' actor keeps getting every version the trainer publishes.
        self.eval_actor = ServiceActor(self.actor_service)
        # Evaluations run on arms of their own, so every training arm collects alike (episodes per arm).
        for robot_id in eval_arm_ids(min(s.eval_parallel, s.eval_trials)):
            robots[robot_id] = SimArm(robot_id, task, f.sim.sim_config(), f.sim.safety_config(), first_seed=s.eval_seed)
        self.arms = []
        for k, robot in enumerate(robots.values()):
            sink = bag_sink(m, self.out / "bags", listeners=[self._on_finished])
            manager = build_episode_manager(
                m,
                robot,
                actor if k < s.arms else self.eval_actor,
                self.critic,
                sink,
                operator=self.operator,
                cancellable=k < s.arms,
                seeds=seeds[k] if k < s.arms else arm_seeds(m.scene_seed, k, self.schedule.finished),
                clock=robot.clock,
                # Embedded arms step the simulation inside execute(): nothing to wait for before observing.
                loop_config=replace(m.loop_config(), observe_delay_s=0.0),
                stop_event=self.stop_event,
                return_explore=self.return_explore,  # shared by the arms, with the tracker, under one lock
                intervention=self.intervention,
                lock=self._lock,
                ground_truth=robot,  # recorded on every step; the reward when reward_source is sim_*
            )
            loop = manager.loop
            rng = np.random.default_rng([f.trainer.seed, k, self.schedule.finished])
            self.arms.append(_Arm(robot, loop, sink, rng, manager))
        self.eval_arms = self.arms[s.arms :]
        del self.arms[s.arms :]

    def _extra_state(self, arrays: dict[str, np.ndarray]) -> dict:
        return {"return_explore": self.return_explore.state("return_explore", arrays)}

    def _reingest_missing(self) -> None:
        """Training bags recorded after the last trainer checkpoint go to the trainer again."""
        from vlac_trainer.online.wiring import reingest_missing

        reingest_missing(self.trainer, [self.out / "bags" / "train"], lambda line: _say(f"session: {line}"))

    def _load_demos(self) -> None:
        s, m = self.session, self.files.manager
        demos = load_demos(s.demo_dir, max_episodes=s.max_demos)
        for demo in demos:
            if s.score_demos:
                demo = score_demo(demo, self.critic, m.loop_config())
            self.trainer.add_demo(demo)
        _say(f"session: {len(demos)} demonstration(s) from {s.demo_dir} in the demo buffer")

    # -- episodes ---------------------------------------------------------------------------------

    def _claim(self) -> bool:
        with self._lock:
            return not self.stop_event.is_set() and self.schedule.claim()

    def _on_finished(self, finished) -> None:
        """Called by an arm's sink once the bag is closed: index it; training episodes go to the trainer."""
        self.index.append(finished)
        if finished.phase == "train" and self.files.manager.send_to_trainer:
            self.trainer.submit(finished.episode)

    def _train_episode(self, arm: _Arm) -> None:
        """One training episode through the arm's EpisodeManager (return-and-explore, intervention rate)."""
        s = self.session
        robot_id = arm.robot.robot_id
        if self.operator is not None:
            take_over = arm.rng.random() < s.guided_explore_prob
            self.operator.begin_episode(robot_id, take_over, int(arm.rng.integers(1 << 30)))
        arm.sink.phase = "train"
        result = arm.manager.run(EpisodeGoal())
        ep, summary = result.episode, result.summary
        with self._lock:
            n = self.schedule.finish(counted=ep.termination is not Termination.SHUTDOWN)
        _say(
            f"[{robot_id}] episode {n}: {ep.termination.value}, success {ep.success}, "
            f"return {summary.episode_return:+.3f}, "
            f"{summary.length} steps ({summary.human_steps} human), policy v{ep.policy_version}"
            + (f", aborted: {summary.abort_reason}" if summary.abort_reason else "")
        )

    def _evaluate(self, executors: list[Executor]) -> None:
        """``eval_trials`` greedy trials from fixed seeds, shared out to the evaluation arms (stops early on Ctrl-C).

        Each arm runs its trials on its own executor thread (its renderer stays on one thread); with
        several arms their concurrent actor requests go to the pinned copy in one batch of up to one
        per arm, and the shared critic batches their scoring.
        """
        s, arms = self.session, self.eval_arms
        for arm in arms:
            arm.sink.phase = "eval"
            if self.operator is not None:
                self.operator.begin_episode(arm.robot.robot_id, False, 0, watch=False)
        with self._lock:
            after = self.schedule.finished  # other arms go on collecting while these arms evaluate
        task = arms[0].robot.task
        starts = [seed_start_state(task, s.eval_seed + i) for i in range(s.eval_trials)]
        ended = 0

        def on_result(start, result) -> None:  # called under run_in_parallel's lock
            nonlocal ended
            ended += 1
            _say(_trial_line(ended, s.eval_trials, version, trial_result(result)))  # progress: trials take minutes

        # One policy for every trial, on the evaluation's own copy: versions the trainer publishes
        # meanwhile still reach the training arms.
        with self.eval_actor.pinned(max_batch=len(arms)) as version:
            results = run_in_parallel(
                [arm.loop for arm in arms], starts, on_result=on_result, executors=executors, stop=self.stop_event
            )
        if self.stop_event.is_set():  # a trial was cut short by Ctrl-C or left unrun: no rate from it
            return
        result = evaluation_result([trial_result(r) for r in results if r is not None])
        record = {
            "after_episodes": after,
            "policy_version": version,
            "trial_policy_versions": sorted({v for t in result.trials for v in t.policy_versions}),
            "trials": len(result.trials),
            "successes": result.successes,
            "aborted": result.aborted,
            "success_rate": result.success_rate,
            "success_source": result.trials[0].success_source if result.trials else None,
        }
        self.evaluations.append(record)
        append_jsonl(self.out / "evaluations.jsonl", record)
        _say(f"[eval] after {after} episodes, policy v{version}: success {result.successes}/{result.counted}")
        for arm in arms:
            arm.sink.phase = "train"

    def _eval_due(self) -> bool:
        with self._lock:
            return self.schedule.eval_due()

    def _arm_main(self, k: int) -> None:
        """A training arm: episodes until the session's count is reached or Ctrl-C."""
        arm = self.arms[k]
        try:
            self._baseline_done.wait()  # the starting policy is evaluated before it changes
            while True:
                # Backpressure: no episode the trainer could not reach before it is too old.
                self.backlog.wait_open(self.stop_event)
                if not self._claim():
                    break
                self._train_episode(arm)
        except Exception as error:  # a broken arm stops the session; what it recorded stays
            self.errors.append(f"arm_{k}: {type(error).__name__}: {error}")
            _say(f"[arm_{k}] stopped by an error: {type(error).__name__}: {error}")
            self.stop_event.set()
        finally:
            with self._lock:
                self._arms_done += 1
            _close_arm(arm)  # in this thread: the renderer's GL context belongs to it

    def _eval_main(self) -> None:
        """The evaluation arms: before training, every ``eval_every_episodes``, and at the end."""
        s = self.session
        # One thread per evaluation arm for the whole session: its renderer's GL context lives there.
        executors = [ThreadPoolExecutor(1, thread_name_prefix=arm.robot.robot_id) for arm in self.eval_arms]
        try:
            if s.eval_at_start and not self.evaluations:
                self._evaluate(executors)
            self._baseline_done.set()
            while not self.stop_event.is_set():
                with self._lock:
                    if self._arms_done >= len(self.arms):
                        break
                if self._eval_due():
                    self._evaluate(executors)
                else:
                    self.stop_event.wait(0.05)
            # Also when a resumed session had no episode left: a final evaluation lost to Ctrl-C runs now.
            if s.eval_at_end and not self.stop_event.is_set():
                self.trainer.wait_idle(timeout_s=3600)
                self.actor_service.wait_for_version(self.trainer.status.policy_version, timeout_s=600)
                last = self.evaluations[-1] if self.evaluations else None
                with self._lock:
                    due = self.schedule.final_eval_due(last, self.trainer.status.policy_version)
                if due:
                    self._evaluate(executors)
        except Exception as error:
            self.errors.append(f"{EVAL_ARM}: {type(error).__name__}: {error}")
            _say(f"[{EVAL_ARM}] stopped by an error: {type(error).__name__}: {error}")
            self.stop_event.set()
        finally:
            self._baseline_done.set()
            arms = zip(executors, self.eval_arms, strict=True)
            closing = [executor.submit(_close_arm, arm) for executor, arm in arms]
            for executor in executors:
                executor.shutdown(wait=True)
            for future in closing:
                future.result()

    # -- run --------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Take the output folder, put it in order after a crash, load models, restore a checkpoint,
        build the arms (``run`` calls it when not done yet)."""
        if not self._prepared:
            self._take_folder()
            try:
                self._build()
            except BaseException:
                self.release_folder()
                raise
            self._prepared = True

    def _take_folder(self) -> None:
        """The output folder's lock (one run per folder); on resume, a crash's leftovers repaired first."""
        if self._folder_lock is None:
            lock = OutdirLock(self.out)
            try:
                lock.acquire()
            except OutdirBusy as error:
                raise SessionError(str(error)) from None
            self._folder_lock = lock
            if lock.taken_over_from:
                _say(f"session: {self.out}: lock taken over from {lock.taken_over_from}, which is no longer running")
        if self.session.resume:
            self.recovery = recover_outdir(self.out, _say)

    def release_folder(self) -> None:
        """Let another run have the output folder (``run`` does this when it ends)."""
        if self._folder_lock is not None:
            self._folder_lock.release()
            self._folder_lock = None

    def run(self) -> SessionResult:
        """The session to its end or to a stop signal (SIGINT, SIGTERM, SIGHUP: see ``stop_signals``)."""
        started = time.monotonic()
        # While models load, a stop signal is only noted: raised inside a library's import or
        # initialisation it would surface as that library's error. The session stops right after.
        with StopSignals(_say, live=False) as signals:
            try:
                try:
                    self.prepare()
                except KeyboardInterrupt:  # a KeyboardInterrupt from elsewhere (none of ours while loading)
                    return SessionResult(signals.exit_code, self.out)
                interrupted = self._run_arms(signals)
                signals.live = False  # from here on a stop signal waits for the saving below
                if not interrupted:  # the last episodes' update is trained and published, not dropped
                    self.trainer.wait_idle(timeout_s=3600)
                self.trainer.stop(timeout_s=3600, checkpoint=True)
                self.actor_service.close()
                self.critic.close()
                summary = self._report(time.monotonic() - started, interrupted)
            finally:
                self.release_folder()
        code = signals.exit_code if interrupted else (1 if self.errors else 0)
        _say(f"session: done ({'interrupted' if interrupted else 'finished'}); output in {self.out}")
        return SessionResult(code, self.out, summary)

    def _run_arms(self, signals: StopSignals) -> bool:
        """Run the arm threads to their end; True when a stop signal ended them early."""
        threads = [
            threading.Thread(target=self._arm_main, args=(k,), name=f"arm_{k}", daemon=True)
            for k in range(len(self.arms))
        ]
        threads.append(threading.Thread(target=self._eval_main, name=EVAL_ARM, daemon=True))
        try:
            signals.live = True
            if signals.received is not None:  # arrived while loading
                raise KeyboardInterrupt(signals.received.name)
            self.trainer.start()
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.2)
        except KeyboardInterrupt:
            signals.live = False
            name = signals.received.name if signals.received is not None else "Ctrl-C"
            _say(f"session: {name}: ending each arm's episode at its next step and recording it ...")
            self.stop_event.set()
            for t in threads:
                if t.ident is not None:
                    t.join()
            return True
        return False

    def _report(self, wall_s: float, interrupted: bool) -> dict[str, Any]:
        rows = self.index.rows()
        status = self.trainer.status
        summary = summarize(
            rows,
            self.evaluations,
            config=str(self.files.path),
            task=self.files.sim.task,
            arms=len(self.arms),
            interrupted=interrupted,
            errors=self.errors,
            wall_time_s=round(wall_s, 1),
            resumed=self.resumed,
            trainer={
                "policy_version": status.policy_version,
                "updates": status.updates,
                "episodes_received": status.episodes_received,
                "routed": status.routed,
                # how much of what the arms collected PPO used (the rest grew too old: max_waiting_batches)
                "rollouts_received": status.rollouts_received,
                "rollouts_trained": status.rollouts_trained,
                "rollouts_dropped": status.rollouts_dropped,
                "failed_updates": status.failed_updates,
                "last_error": status.last_error,
                "updates_this_run": [{k: v for k, v in vars(u).items()} for u in status.history],
            },
            intervention={"step_rate": self.intervention.step_rate, "episode_rate": self.intervention.episode_rate},
            critic=self.critic.batch_stats(),
            return_explore_states=len(self.return_explore),
            bags=len([p for p in (self.out / "bags").glob("*/*") if p.is_dir()]),
            success_rate_png="success_rate.png",
            recovered_on_start=vars(self.recovery) if self.recovery is not None else None,
        )
        plot_success(
            self.out / "success_rate.png",
            rows,
            self.evaluations,
            self.session.rolling_window,
            f"{self.files.sim.task}: {len(self.arms)} arm(s), reward {self.files.manager.reward_source}",
        )
        write_json(self.out / "summary.json", summary)
        return summary


def eval_arm_ids(count: int) -> list[str]:
    """Robot ids of ``count`` evaluation arms: ``eval_arm``, then ``eval_arm_1``, ``eval_arm_2``, ..."""
    return [EVAL_ARM if j == 0 else f"{EVAL_ARM}_{j}" for j in range(count)]


def _close_arm(arm: _Arm) -> None:
    """End an arm's loop, then its robot; call it on the arm's own thread (its GL context lives there)."""
    arm.loop.close()
    arm.robot.close()


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.exists() else []


def _trial_line(n: int, total: int, version: int, trial) -> str:
    """One evaluation trial, as it ends (not "[eval] ..." : log readers key on that prefix for the summary)."""
    outcome = "success" if trial.succeeded else "failure"
    return f"[eval {n}/{total}] policy v{version}: {trial.termination.value}, {outcome}, {trial.length} steps"


def main_session(files: SessionFiles, **overrides) -> int:
    try:
        session = EmbeddedSession(files, **overrides)
        result = session.run()
    except SessionError as error:
        print(f"vlac session: {error}", file=sys.stderr)
        return 2
    return result.exit_code
