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
from dataclasses import dataclass, replace

import numpy as np

from vlac_core.types import DeltaAction
from vlac_trainer.offline.critic_data import progress_label


@dataclass(frozen=True)
class BCSample:
    """One step: actor CONTENT, its images, the expert's action and the value target.

    ``object_mm``: where the object the task moves is at this observation, (x, y) relative to the tool centre point
    then (x, y) in the world, mm; None when the episode did not record it (``meta["object_mm"]``). The target of the
    actor's auxiliary object loss (``train_actor.object_coef``).
    """

    content: str
    images: tuple[np.ndarray, ...]
    action: DeltaAction
    value_target: float
    object_mm: tuple[float, float, float, float] | None = None


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
    objects = object_targets_mm(record)
    samples = []
    for t in range(steps):
        content, images = actor_content(record_observation(record, t, "sim_0"), limits)
        action = DeltaAction(*(int(v) for v in taught[t]))
        target = None if objects is None else tuple(float(v) for v in objects[t])
        samples.append(BCSample(content, tuple(images), action, float(returns[t]), target))
    return samples


def object_targets_mm(record) -> np.ndarray | None:
    """(T+1, 4) per observation the moved object's (x, y) relative to the tool centre point and in the world, mm,
    from ``meta["object_mm"]`` (``piper_driver.sim.rollout``); None when the episode did not record it."""
    recorded = record.meta.get("object_mm")
    if recorded is None:
        return None
    objects = np.asarray(recorded, dtype=np.float64)
    if objects.shape != (record.length + 1, 3):
        raise ValueError(
            f"episode {record.task} s{record.seed}: meta object_mm has shape {objects.shape}, "
            f"expected ({record.length + 1}, 3): one position per observation"
        )
    return relative_and_world_mm(objects, record.end_poses)


def relative_and_world_mm(objects_mm: np.ndarray, end_poses: np.ndarray) -> np.ndarray:
    """(N, 4) the object's (x, y) relative to the tool centre point of each flange pose, then in the world, mm,
    from (N, 3) object centres (mm) and (N, 6) flange poses [mm, deg]."""
    from piper_driver.sim.experts import tcp_of

    objects_mm = np.asarray(objects_mm, dtype=np.float64)
    tcp_mm = np.stack([tcp_of(pose) for pose in end_poses]) * 1000.0
    return np.concatenate([objects_mm[:, :2] - tcp_mm[:, :2], objects_mm[:, :2]], axis=1)


@dataclass(frozen=True)
class OpenSample:
    """One held-bowl step of a rollout: actor CONTENT, its images, and the step's own action with its gripper
    field set to the label (``open=1`` over the plate, ``0`` mid-carry); only that decision is supervised."""

    content: str
    images: tuple[np.ndarray, ...]
    action: DeltaAction
    over_plate: bool


def open_samples(record, limits=None) -> list[OpenSample]:
    """The open-decision samples of one rollout recorded with ground truth (``critic_rollouts collect``).

    Why only the gripper field: the probe (bench/actor_probe.py) found the actor's features tell "over the
    plate" from "mid-carry" (held-out AUC 0.78-0.90) while its open decision does not (0.48-0.59), and DAgger
    labels of every field made the prior worse (docs/models.md). The label is the simulator's phase at the step's
    observation: opening in phase "release" (bowl centre within the success radius of the plate's, its base low
    enough: pick_bowl.RELEASE_MAX_DROP_M) places the bowl, opening in "carry" (high over the plate included)
    drops it. Without the height, "open" was taught where the policy hovers, and half those opens failed. The
    other fields are the step's executed action, teacher-forced.
    """
    from piper_driver.sim.convert import record_observation
    from piper_driver.sim.tasks.pick_bowl import HELD_PHASES
    from vlac_actor.inputs import InputLimits, actor_content

    phases = record.meta.get("phase")
    if phases is None:
        raise ValueError(
            f"episode {record.task} s{record.seed} ({record.variant}): no ground-truth phases in its header "
            "(open-decision data comes from `python -m vlac_trainer.offline.critic_rollouts collect`)"
        )
    steps = record.length
    if len(phases) != steps + 1 or record.front_images.shape[0] != steps + 1:
        raise ValueError(
            f"episode {record.task} s{record.seed}: {len(phases)} phases and {record.front_images.shape[0]} "
            f"frames for {steps} steps (expected {steps + 1} of each)"
        )
    limits = limits or InputLimits()
    samples = []
    for t in range(steps):
        if phases[t] not in HELD_PHASES:
            continue
        over_plate = phases[t] == "release"
        content, images = actor_content(record_observation(record, t, "sim_0"), limits)
        executed = DeltaAction(*(int(v) for v in record.actions[t]))
        samples.append(OpenSample(content, tuple(images), replace(executed, open=int(over_plate)), over_plate))
    return samples


def open_batch_indices(
    step: int, batch_size: int, over_plate: Sequence[bool], over_share: float, seed: int
) -> list[int]:
    """Indices of the open-decision batch of optimizer step ``step``: ``round(batch_size * over_share)`` over-plate
    samples, the rest mid-carry, drawn with replacement, a pure function of (seed, step) so a resumed run repeats it.

    Why a fixed share: over-plate steps are ~5 % of a prior's held steps, so natural batches would barely show the
    "open" answer, while a 50/50 share teaches opening mid-carry at a rate that drops the bowl (a greedy decoder
    opens where p > 0.5); ``over_share`` sets where that threshold falls."""
    flags = np.asarray(over_plate, dtype=bool)
    over, carry = np.flatnonzero(flags), np.flatnonzero(~flags)
    if not len(over) or not len(carry):
        raise ValueError(
            f"open-decision data needs steps of both kinds, got {len(over)} over the plate, {len(carry)} mid-carry"
        )
    if not 0.0 < over_share < 1.0:
        raise ValueError(f"over_share must be in (0, 1), got {over_share}")
    n_over = min(batch_size - 1, max(1, round(batch_size * over_share)))
    rng = np.random.default_rng([seed, step, 1])
    picked = np.concatenate([rng.choice(over, n_over), rng.choice(carry, batch_size - n_over)])
    return [int(i) for i in picked]


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
