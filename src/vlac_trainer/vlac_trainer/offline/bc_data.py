"""Behaviour-cloning samples from expert episodes: the actor's prompt, the expert's action, a value target.

Each step t of a successful expert episode gives one sample: the observation the expert acted on,
turned into the actor's prompt exactly as at run time (``vlac_actor.inputs.actor_content``), and the
action it took. The value target is the discounted return of the critic's training labels for the
steps (``critic_data.progress_label(t, t + 1, T)`` as ``r_t = progress_pct * 0.01``), ending without a
bootstrap (the expert finished). It is an auxiliary target of behaviour cloning, not a start for
PPO: on expert episodes it sums to ~3 while the policy's real returns are 0.1-0.5 (issue 11), so the
RL trainer starts its value head from zero by default (``trainer_node.value_head_init``) and warms it
up on the rollouts' own returns.

The batch of step ``s`` is a pure function of (seed, s): epoch ``e`` visits the samples in the order
of a permutation seeded by (seed, e), so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlac_core.types import DeltaAction
from vlac_trainer.offline.critic_data import progress_label


@dataclass(frozen=True)
class BCSample:
    """One step: actor CONTENT, its images, the expert's action and the value target."""

    content: str
    images: tuple[np.ndarray, ...]
    action: DeltaAction
    value_target: float


def discounted_returns(rewards: Sequence[float], gamma: float) -> np.ndarray:
    """G_t = r_t + gamma * G_{t+1}, G after the last step = 0 (a terminated episode)."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


def bc_samples(record, gamma: float = 0.99, limits=None) -> list[BCSample]:
    """Samples of every step of one ``EpisodeRecord`` (rendered, with actions).

    A DAgger episode (``critic_rollouts`` variant ``dagger``) teaches the expert's label of each
    state, ``meta["expert_labels"]``, not the action that moved the arm there (mostly the policy's).
    """
    from piper_driver.sim.convert import record_observation
    from vlac_actor.inputs import InputLimits, actor_content

    limits = limits or InputLimits()
    steps = record.length
    if record.front_images.shape[0] != steps + 1:
        raise ValueError(
            f"episode {record.task} s{record.seed}: {record.front_images.shape[0]} frames for {steps} steps"
        )
    taught = record.meta.get("expert_labels", record.actions)
    if len(taught) != steps:
        raise ValueError(f"episode {record.task} s{record.seed}: {len(taught)} expert labels for {steps} steps")
    rewards = [progress_label(t, t + 1, steps) for t in range(steps)]
    returns = discounted_returns(rewards, gamma)
    samples = []
    for t in range(steps):
        content, images = actor_content(record_observation(record, t, "sim_0"), limits)
        action = DeltaAction(*(int(v) for v in taught[t]))
        samples.append(BCSample(content, tuple(images), action, float(returns[t])))
    return samples


def batch_indices(step: int, batch_size: int, n_samples: int, seed: int) -> list[int]:
    """Sample indices of optimizer step ``step``: consecutive slices of per-epoch permutations."""
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"need n_samples >= 1 and batch_size >= 1, got {n_samples}, {batch_size}")
    out = []
    position = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(position, n_samples)
        order = np.random.default_rng([seed, epoch]).permutation(n_samples)
        take = min(batch_size - len(out), n_samples - offset)
        out.extend(int(i) for i in order[offset : offset + take])
        position += take
    return out
