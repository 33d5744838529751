"""PPO updates in a child process, mirrored back into the caller's trainer: the trainer on a core of its own.

Why: an embedded session runs its arms, the actor and the trainer as threads of one interpreter. On
CPU the tiny sim models are bound by Python, not by matrix work, so an update (seconds of forward and
backward passes) holds the GIL the arms need between their calls: their steps slow while one runs
(bench/session_step.py, ``collection_while``), and with more arms the trainer gets fewer turns. Here
each update runs in a spawned child (``vlac_core.worker_process``) with its own interpreter.

The caller's :class:`~vlac_trainer.online.ppo_trainer.PPOTrainer` stays the one the session reads
(policy version, publishing, checkpoints, resume): each update sends its state (model, value head,
optimizer, counters, the minibatch generator, the lessons' running sum) with the batch, the child runs the very same
``PPOTrainer.update`` from that state and sends back the stats and the new state, which is loaded into
the caller's trainer. So an update gives what it gives in process, and the child holds nothing the
caller's checkpoint lacks (a few MB cross the pipe each way per update for the tiny sim policy).
A failed update raises :class:`UpdateProcessError` and leaves the caller's trainer as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vlac_core.types import Episode
from vlac_core.worker_process import WorkerProcess, WorkerProcessError, serve

from .ppo_trainer import PPOTrainer, UpdateStats
from .trainer_config import TrainerConfig


class UpdateProcessError(WorkerProcessError):
    """The update child failed to start, died, or failed an update; the message says which and why."""


def trainer_state(trainer: PPOTrainer) -> dict[str, Any]:
    """Everything an update reads and changes: weights, optimizer, counters, the minibatch generator, lessons."""
    return {
        "model": trainer.policy.loaded.model.state_dict(),
        "value_head": trainer.policy.value_head.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "updates": trainer.updates,
        "policy_version": trainer.policy.version,
        "rng": trainer.rng.bit_generator.state,
        "lessons": None if trainer.lessons is None else trainer.lessons.state(),
    }


def load_trainer_state(trainer: PPOTrainer, state: dict[str, Any]) -> None:
    """Put ``state`` (from :func:`trainer_state`) into ``trainer``."""
    trainer.policy.loaded.model.load_state_dict(state["model"])
    trainer.policy.value_head.load_state_dict(state["value_head"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.updates = int(state["updates"])
    trainer.policy.version = int(state["policy_version"])
    trainer.rng.bit_generator.state = state["rng"]
    if trainer.lessons is not None and state["lessons"] is not None:
        trainer.lessons.load_state(state["lessons"])


class ProcessUpdater:
    """Runs ``PPOTrainer.update`` in a child built from the same config (``build_ppo``); one update at a time."""

    def __init__(self, cfg: TrainerConfig, policy_path: str, policy_version: int, torch_threads: int = 1) -> None:
        if torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {torch_threads}")
        self._worker = WorkerProcess(
            "trainer update process",
            _serve,
            (cfg, str(policy_path), int(policy_version), torch_threads),
            error=UpdateProcessError,
        )

    @property
    def pid(self) -> int | None:
        return self._worker.pid

    def update(
        self,
        trainer: PPOTrainer,
        rollouts: Sequence[Episode],
        demos: Sequence[Episode] = (),
        successes: Sequence[Episode] = (),
    ) -> UpdateStats:
        """``trainer.update(rollouts, demos, successes)``, computed in the child; ``trainer`` holds the result."""
        message = ("update", trainer_state(trainer), list(rollouts), list(demos), list(successes))
        stats, state = self._worker.request(message, "updating")
        load_trainer_state(trainer, state)
        return stats

    def close(self) -> None:
        self._worker.close()


def _serve(conn, cfg: TrainerConfig, policy_path: str, policy_version: int, torch_threads: int) -> None:
    def build():
        import torch

        from .wiring import build_ppo

        torch.set_num_threads(torch_threads)
        return build_ppo(cfg, policy_path, policy_version), None

    def handle(trainer: PPOTrainer, message: tuple):
        _, state, rollouts, demos, successes = message
        load_trainer_state(trainer, state)
        stats = trainer.update(rollouts, demos, successes)
        return stats, trainer_state(trainer)

    serve(conn, build, handle)
