"""The trainer beside collection: episodes come in from any number of arms, updates run on a thread.

Arms do not wait for training unless they ask for backpressure: every change of ``backlog`` goes out
through ``on_backlog`` (to the embedded session's ``BacklogGate``, or published by the trainer node) and each
arm holds its own next episode (vlac.episode.backpressure). ``submit``
routes a finished episode into the buffers at once (human steps -> demo buffer, autonomous -> rollout
buffer, aborted -> disk only; with self-imitation on, an autonomous one that ended on done also ->
success buffer) and returns; the trainer thread wakes when ``episodes_per_update`` new trainable
episodes have arrived, and then

    drop rollouts with a step older than (version - max_policy_lag)   stale beyond correction
    batch = per-robot dynamic sampling, without replacement          each episode trained on once
    PPOTrainer.update(batch, demos, successes)     behaviour-corrected PPO, GAE, target-KL stop
                                                   (+ demo NLL, + self-imitation NLL)
    PolicyPublisher.publish(policy)                                  new version -> actor pool
    UpdateLog.write(stats)                                           <checkpoint_dir>/updates.jsonl, tensorboard/
    save the training state                                          buffers, counters, optimizer

Checkpoints also follow every ``checkpoint_every_episodes`` received episodes. An episode reaches
``submit`` only after its bag is on disk, and ``ingested_ids`` (in the checkpoint) lists what the
buffers hold, so after a crash :meth:`missing_episode_ids` tells the caller which recorded
episodes to hand back in: nothing stored is lost. An update that fails is logged and counted; the
thread keeps serving (the arms go on with the current version).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vlac_core.types import Episode, Termination
from vlac_trainer.online.buffers import (
    DemoBuffer,
    RolloutBuffer,
    Route,
    SuccessBuffer,
    route_episode,
)
from vlac_trainer.online.policy_publisher import PolicyPublisher
from vlac_trainer.online.ppo_trainer import PPOTrainer, UpdateStats
from vlac_trainer.online.update_log import UpdateLog
from vlac_trainer.training_state import (
    TrainingState,
    load_training_state,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    save_training_state,
)

if TYPE_CHECKING:
    from vlac_trainer.online.update_process import ProcessUpdater

LOG = logging.getLogger("vlac_trainer")
#: Demo (and replayed successful) episodes handed to one update at most (their steps are drawn per minibatch).
DEMO_EPISODES_PER_UPDATE = 16
#: The checkpoint's name for the running sum of the updates' unit lessons (lesson_agreement; absent when off).
LESSONS_TENSOR = "lessons/unit_sum"


@dataclass
class TrainerStatus:
    """Counters for logs, topics and the session summary."""

    policy_version: int = 0
    updates: int = 0
    episodes_received: int = 0
    routed: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in Route})
    failed_updates: int = 0
    last_error: str = ""
    rollouts_trained: int = 0  # rollout episodes some update trained on
    rollouts_dropped: int = 0  # rollout episodes dropped untrained (too old, or no behaviour log-probs)
    history: list[UpdateStats] = field(default_factory=list)

    @property
    def trained_share(self) -> float:
        """Share of the rollout episodes received that an update trained on (NaN before any arrived)."""
        received = self.rollouts_received
        return self.rollouts_trained / received if received else float("nan")

    @property
    def rollouts_received(self) -> int:
        """Rollouts that entered the buffer: autonomous episodes and the policy's part of guided ones."""
        return self.routed.get(Route.ROLLOUT.value, 0) + self.routed.get(Route.GUIDED.value, 0)


class AsyncTrainer:
    """Buffers + PPO trainer + publisher + checkpoints, driven by a background thread."""

    def __init__(
        self,
        trainer: PPOTrainer,
        publisher: PolicyPublisher,
        checkpoint_dir: str | Path,
        *,
        extra_state: Callable[[dict[str, np.ndarray]], dict] | None = None,
        on_update: Callable[[UpdateStats], None] | None = None,
        on_backlog: Callable[[int], None] | None = None,
        log_updates: bool = True,
        updater: ProcessUpdater | None = None,
    ) -> None:
        """``log_updates``: write every update's diagnostics to ``checkpoint_dir`` (update_log.UpdateLog).

        ``on_backlog(waiting)``: called with the rollout episodes waiting for an update whenever that count
        changes hands (an episode submitted, a batch taken), on the calling thread, under the trainer's lock
        (keep it short: a publish).

        ``updater``: runs each update in a child process and mirrors the result into ``trainer``
        (``trainer_node.own_process``); None updates ``trainer`` here, on the trainer thread.
        """
        cfg = trainer.config
        self.trainer = trainer
        self.updater = updater
        self.config = cfg
        self.publisher = publisher
        self.checkpoint_dir = Path(checkpoint_dir)
        self.rollouts = RolloutBuffer(cfg.rollout_capacity, cfg.success_window)
        self.demos = DemoBuffer(cfg.demo_capacity)
        #: The policy's own successes for self-imitation (None: self_imitation_coef is 0).
        self.successes = SuccessBuffer(cfg.self_imitation_capacity) if cfg.self_imitation_coef > 0 else None
        self.status = TrainerStatus(policy_version=trainer.policy.version)
        self.policy_path = str(cfg.checkpoint_path)
        self.ingested_ids: list[str] = []
        self.extra_state = extra_state  # the caller's own state (e.g. return-and-explore) in the checkpoint
        self.on_update = on_update
        self.on_backlog = on_backlog
        self.update_log = UpdateLog(self.checkpoint_dir) if log_updates else None
        self.restored_extra: dict = {}
        self.restored_arrays: dict[str, np.ndarray] = {}
        self._rng = np.random.default_rng(cfg.seed + 1)
        self._cond = threading.Condition()
        self._save_lock = threading.Lock()
        self._new_trainable = 0
        self._since_checkpoint = 0
        self._stop = False
        self._busy = False
        self._thread: threading.Thread | None = None

    # -- collection side ----------------------------------------------------------------------

    def submit(self, episode: Episode) -> Route:
        """Route ``episode`` into the buffers (returns at once; training happens on the thread)."""
        with self._cond:
            route = route_episode(episode, self.rollouts, self.demos)
            if self.successes is not None and route is Route.ROLLOUT and episode.termination is Termination.DONE:
                self.successes.add(episode)
            self.status.episodes_received += 1
            self.status.routed[route.value] += 1
            self.ingested_ids.append(episode.episode_id)
            self._new_trainable += int(route is not Route.NOT_TRAINED)
            self._since_checkpoint += 1
            self._cond.notify_all()
            self._report_backlog()
        return route

    @property
    def backlog(self) -> int:
        """Rollout episodes waiting for an update (what an arm's ``BacklogGate`` compares with its limit)."""
        with self._cond:
            return len(self.rollouts)

    def _report_backlog(self) -> None:
        """Under the lock, so two reports can never arrive in the opposite order of the changes."""
        if self.on_backlog is not None:
            self.on_backlog(len(self.rollouts))

    def add_demo(self, episode: Episode) -> None:
        """A demonstration from outside the session (collect-demos npz, bags): demo buffer only."""
        with self._cond:
            self.demos.add(episode)
            self.status.routed[Route.DEMO.value] += 1

    def missing_episode_ids(self, recorded_ids: Iterable[str]) -> list[str]:
        """Recorded episodes the buffers do not hold (received after the last checkpoint before a crash)."""
        with self._cond:
            known = set(self.ingested_ids)
        return [i for i in recorded_ids if i not in known]

    # -- thread -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("trainer thread already started")
        self._thread = threading.Thread(target=self._run, name="ppo-trainer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None, checkpoint: bool = True) -> None:
        """Finish the update in progress, save the training state, stop the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if checkpoint:
            self.save_checkpoint()
        if self.update_log is not None:
            self.update_log.close()
        if self.updater is not None:
            self.updater.close()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Block until no update is due or running (tests, end of a session); False on time-out."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._busy or self._update_due():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def _update_due(self) -> bool:
        return self._new_trainable >= self.config.episodes_per_update

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._stop
                        or self._update_due()
                        or self._since_checkpoint >= self.config.checkpoint_every_episodes
                    )
                )
                if self._stop:
                    return
                due = self._update_due()
                if due:
                    self._new_trainable = 0
                self._busy = True
            try:
                if due:
                    self.update_once()
                self.save_checkpoint()
            except Exception as error:  # keep the arms collecting on the current version
                self.status.failed_updates += 1
                self.status.last_error = f"{type(error).__name__}: {error}"
                LOG.exception("trainer: update failed; the current policy version keeps serving")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # -- one update ---------------------------------------------------------------------------

    def update_once(self) -> UpdateStats | None:
        """Sample a batch, update, publish, return the stats (None when there is nothing to train on)."""
        cfg = self.config
        with self._cond:
            stale = self.rollouts.drop_older_than(self.trainer.policy.version - cfg.max_policy_lag)
            self.status.rollouts_dropped += stale
            batch = self.rollouts.take(cfg.episodes_per_update, self._rng)
            self._new_trainable = len(self.rollouts)  # those left count toward the next update
            self._report_backlog()  # arms held back by backpressure may collect the next batch now
            demos = self.demos.at_most(DEMO_EPISODES_PER_UPDATE, self._rng)
            successes = [] if self.successes is None else self.successes.at_most(DEMO_EPISODES_PER_UPDATE, self._rng)
        if not batch and not demos and not successes:
            return None
        started = time.monotonic()
        if self.updater is not None:
            stats = self.updater.update(self.trainer, batch, demos, successes)
        else:
            stats = self.trainer.update(batch, demos, successes)
        update_s = time.monotonic() - started
        path = self.publisher.publish(self.trainer.policy)
        with self._cond:
            self.policy_path = str(path)
            self.status.policy_version = self.trainer.policy.version
            self.status.updates = self.trainer.updates
            self.status.rollouts_trained += stats.episodes
            self.status.rollouts_dropped += stats.dropped_episodes + stats.ungrouped_episodes
            self.status.history.append(stats)
            counters = {
                "stale_dropped": stale,
                "rollouts_received": self.status.rollouts_received,
                "rollouts_trained": self.status.rollouts_trained,
                "rollouts_dropped": self.status.rollouts_dropped,
                "trained_share": self.status.trained_share,
                "successes_kept": len(self.successes) if self.successes is not None else 0,
                "update_s": round(update_s, 3),  # wall time of the update (in the child with own_process)
            }
        if self.update_log is not None:
            self.update_log.write(stats, **counters)
        LOG.info(
            "trainer: policy version %d (%s): loss %.4f, v_loss %.4f, kl %.4f, explained variance %.2f",
            stats.policy_version,
            "value warm-up" if stats.warmup else "ppo",
            stats.loss,
            stats.v_loss,
            stats.approx_kl,
            stats.explained_variance,
        )
        if stats.lessons >= 2:
            LOG.info(
                "trainer: lessons so far agree %.3f (mean pairwise cosine, %d lessons): shared/noise %.2f",
                stats.lesson_agreement,
                stats.lessons,
                stats.lesson_shared_to_noise,
            )
        if self.on_update is not None:
            self.on_update(stats)
        return stats

    # -- checkpoints --------------------------------------------------------------------------

    def _buffer_snapshot(self) -> tuple[RolloutBuffer, DemoBuffer, SuccessBuffer | None]:
        """Shallow copies of the buffers (episodes are not copied): arms keep submitting while they are written."""
        successes = None if self.successes is None else self.successes.shallow_copy()
        return self.rollouts.shallow_copy(), self.demos.shallow_copy(), successes

    def save_checkpoint(self) -> Path:
        """Snapshot under the lock, write outside it (a multi-MB write must not stall the arms)."""
        with self._cond:
            self._since_checkpoint = 0
            rollouts, demos, successes = self._buffer_snapshot()
            opt_tensors, opt_meta = optimizer_state_to_tensors(self.trainer.optimizer.state_dict(), "optimizer")
            arrays: dict[str, np.ndarray] = {}
            extra = {"optimizer": opt_meta}
            if self.extra_state is not None:
                extra["caller"] = self.extra_state(arrays)
            caller = {f"caller/{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
            tensors = {**opt_tensors, **caller}
            lessons = self.trainer.lessons
            if lessons is not None and lessons.unit_sum is not None:
                tensors[LESSONS_TENSOR] = lessons.unit_sum.detach().clone()  # a snapshot: updates add to it
            state = TrainingState(
                rollouts=rollouts,
                demos=demos,
                counters={
                    "policy_version": self.trainer.policy.version,
                    "updates": self.trainer.updates,
                    "episodes_received": self.status.episodes_received,
                    "routed": dict(self.status.routed),
                    "rollouts_trained": self.status.rollouts_trained,
                    "rollouts_dropped": self.status.rollouts_dropped,
                    "policy_path": self.policy_path,
                    "ingested_ids": list(self.ingested_ids),
                    "lessons": 0 if lessons is None else lessons.count,
                },
                tensors=tensors,
                extra=extra,
                successes=successes,
            )
        with self._save_lock:  # one writer at a time (the thread, and stop())
            return save_training_state(self.checkpoint_dir, state)

    def restore(self) -> bool:
        """Load the latest checkpoint under ``checkpoint_dir`` (False when there is none).

        The caller loads the policy from :attr:`policy_path` (the last published version) into the
        trainer before calling this, so the optimizer state matches the weights it was saved with.
        """
        state = load_training_state(self.checkpoint_dir)
        if state is None:
            return False
        counters = state.counters
        opt_tensors = {k: v for k, v in state.tensors.items() if k.startswith("optimizer/")}
        if opt_tensors or state.extra["optimizer"]["param_ids"]:
            self.trainer.optimizer.load_state_dict(optimizer_state_from_tensors(opt_tensors, state.extra["optimizer"]))
        with self._cond:
            self.rollouts, self.demos = state.rollouts, state.demos
            if self.successes is not None and state.successes is not None:  # kept at this config's capacity
                self.successes = state.successes.shallow_copy(self.successes.capacity)
            self.trainer.updates = int(counters["updates"])
            if self.trainer.lessons is not None and LESSONS_TENSOR in state.tensors:
                self.trainer.lessons.load_state(
                    {"unit_sum": state.tensors[LESSONS_TENSOR], "count": int(counters["lessons"])}
                )
            self.trainer.policy.version = int(counters["policy_version"])
            self.policy_path = counters["policy_path"]
            self.ingested_ids = list(counters["ingested_ids"])
            self.status.policy_version = self.trainer.policy.version
            self.status.updates = self.trainer.updates
            self.status.episodes_received = int(counters["episodes_received"])
            self.status.routed.update(counters["routed"])
            self.status.rollouts_trained = int(counters.get("rollouts_trained", 0))
            self.status.rollouts_dropped = int(counters.get("rollouts_dropped", 0))
            self._new_trainable = len(self.rollouts)  # untrained episodes kept in the checkpoint
            self.restored_extra = state.extra.get("caller", {})
            self.restored_arrays = {
                k.removeprefix("caller/"): v.numpy() for k, v in state.tensors.items() if k.startswith("caller/")
            }
        return True


def saved_policy_path(checkpoint_dir: str | Path) -> tuple[str, int] | None:
    """(policy path, version) recorded in the latest trainer checkpoint, to load before ``restore``."""
    state = load_training_state(checkpoint_dir)
    if state is None:
        return None
    return state.counters["policy_path"], int(state.counters["policy_version"])
