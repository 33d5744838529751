"""Which signal trains the policy: the VLAC critic (the real use) or a simulator's ground truth (the control).

``critic``      reward = critic progress * reward_scale, done = the critic's done rule (the paper's loop)
``sim_dense``   reward = change of the task's ground-truth potential over the step, done = true success
``sim_sparse``  reward = 1 on the step that reaches true success, else 0, done = true success

Why the ground-truth sources exist: they separate "PPO cannot climb" from "the critic's reward is not
worth climbing". With a perfect reward a learning failure is the learner's; with the critic's, the
audit (``vlac critic audit``) says how far its reward is from the truth. Whatever the source, the loop
records the critic's answers and, where a simulator knows it, the ground truth on every step, so any
run can be audited afterwards. A real arm has no ground truth: a ``sim_*`` source there is refused
when the loop is built, naming the key.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from vlac_core.types import TaskTruth

REWARD_SOURCES = ("critic", "sim_dense", "sim_sparse")
#: The parameter that selects the source (section ``episode_manager``), named in every refusal.
REWARD_SOURCE_KEY = "episode_manager.reward_source"


@runtime_checkable
class GroundTruth(Protocol):
    """A robot side that knows the task's ground truth (a simulator)."""

    def truth(self) -> TaskTruth:
        """Potential, success and phase of the current state."""


def needs_ground_truth(source: str) -> bool:
    return source != "critic"


def check_reward_source(source: str, ground_truth: GroundTruth | None) -> None:
    """Refuse an unknown source, or a ground-truth source where the robot has no ground truth."""
    if source not in REWARD_SOURCES:
        raise ValueError(f"{REWARD_SOURCE_KEY}={source!r}: unknown reward source; allowed: {', '.join(REWARD_SOURCES)}")
    if needs_ground_truth(source) and ground_truth is None:
        raise ValueError(
            f"{REWARD_SOURCE_KEY}={source!r}: this robot has no ground truth (only a simulator does); "
            "use reward_source: critic on a real arm"
        )


def step_reward(
    source: str, critic_reward: float, critic_done: bool, before: TaskTruth | None, after: TaskTruth | None
) -> tuple[float, bool]:
    """(reward, done) of one step under ``source``; ``before``/``after`` are the truths of o_t and o_{t+1}."""
    if source == "critic":
        return critic_reward, critic_done
    if before is None or after is None:
        raise ValueError(f"{REWARD_SOURCE_KEY}={source!r}: a step without ground truth")
    if source == "sim_dense":
        return after.potential - before.potential, after.success
    if source == "sim_sparse":
        return float(after.success), after.success
    raise ValueError(f"{REWARD_SOURCE_KEY}={source!r}: unknown reward source; allowed: {', '.join(REWARD_SOURCES)}")
