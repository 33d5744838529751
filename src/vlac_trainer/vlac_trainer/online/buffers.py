"""Rollout and demonstration buffers, with per-robot dynamic sampling.

Per-robot dynamic sampling (the paper: "under-learned robots' data is sampled more often"): each
robot's recent success rate s_r is taken over its last ``success_window`` finished autonomous
episodes, and a robot is drawn with probability

    p_r = w_r / sum_k w_k,    w_r = (1 - s_r) + epsilon

among the robots that have untrained episodes; then that robot's oldest one is taken out of the
buffer. Sampling is without replacement: every collected episode is trained on once (or dropped as
too old), never twice in a batch and never left out while younger ones are used (issue 11: with
replacement, 102 of 200 episodes were never trained on).
``epsilon`` keeps a robot that always succeeds in the batch (its data still anchors the policy);
a robot with no finished episode yet counts as s_r = 0 (nothing learned yet). Success is
``Episode.succeeded`` (vlac_core.types: ground truth where known, else the critic's done).

Both buffers serialise to (arrays, JSON metadata) for ``checkpoint_store``: nothing stored is lost
across a crash and resume.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace
from enum import Enum
from typing import Any, Self

import numpy as np

from vlac_core.types import Episode, Termination
from vlac_trainer.online.episode_codec import decode_episode, encode_episode


def is_trainable_rollout(episode: Episode) -> str | None:
    """None if PPO may train on ``episode``; otherwise the reason it may not."""
    if episode.termination is None:
        return "it has no termination reason (not finished)"
    if episode.termination is Termination.ABORTED:
        return "it was aborted (kept on disk, not trained on)"
    if episode.length == 0:
        return "it has no steps"
    if episode.human_steps:
        return f"{episode.human_steps} of its steps were teleoperated (it belongs in the demo buffer)"
    if episode.termination is not Termination.DONE and episode.final_observation is None:
        return "it was truncated but has no final observation to bootstrap from"
    return None


class RobotSuccessTracker:
    """Sliding-window success rate per robot, and the sampling weights derived from it."""

    def __init__(self, window: int = 20, epsilon: float = 0.05) -> None:
        if window < 1:
            raise ValueError(f"success_window={window}: expected at least 1 episode")
        if not epsilon > 0:
            raise ValueError(f"epsilon={epsilon}: expected > 0 so every robot keeps a chance to be sampled")
        self.window = window
        self.epsilon = epsilon
        self._outcomes: dict[str, deque[bool]] = {}

    def record(self, robot_id: str, success: bool) -> None:
        self._outcomes.setdefault(robot_id, deque(maxlen=self.window)).append(bool(success))

    def success_rate(self, robot_id: str) -> float | None:
        """Share of successes in the robot's window, or None before its first finished episode."""
        outcomes = self._outcomes.get(robot_id)
        return sum(outcomes) / len(outcomes) if outcomes else None

    def weight(self, robot_id: str) -> float:
        """Unnormalised w_r = (1 - s_r) + epsilon, with s_r = 0 for a robot without history."""
        rate = self.success_rate(robot_id)
        return (1.0 - (rate or 0.0)) + self.epsilon

    def probabilities(self, robot_ids: Iterable[str]) -> dict[str, float]:
        """p_r over ``robot_ids`` (sorted, so draws do not depend on insertion order)."""
        ids = sorted(set(robot_ids))
        if not ids:
            raise ValueError("robot_ids: no robot to sample from")
        weights = np.array([self.weight(r) for r in ids])
        return dict(zip(ids, (weights / weights.sum()).tolist(), strict=True))

    def state(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "epsilon": self.epsilon,
            "outcomes": {r: list(o) for r, o in self._outcomes.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RobotSuccessTracker:
        tracker = cls(window=state["window"], epsilon=state["epsilon"])
        for robot_id, outcomes in state["outcomes"].items():
            for success in outcomes:
                tracker.record(robot_id, success)
        return tracker


class RolloutBuffer:
    """The policy's own finished episodes, per robot, oldest dropped first beyond ``max_episodes_per_robot``."""

    def __init__(self, max_episodes_per_robot: int = 64, success_window: int = 20, epsilon: float = 0.05) -> None:
        if max_episodes_per_robot < 1:
            raise ValueError(f"max_episodes_per_robot={max_episodes_per_robot}: expected at least 1")
        self.max_episodes_per_robot = max_episodes_per_robot
        self.success = RobotSuccessTracker(success_window, epsilon)
        self._episodes: dict[str, deque[Episode]] = {}

    def add(self, episode: Episode) -> None:
        """Store an autonomous, finished, not aborted episode and count its success for its robot."""
        reason = is_trainable_rollout(episode)
        if reason is not None:
            raise ValueError(f"episode {episode.episode_id!r} cannot enter the rollout buffer: {reason}")
        self._episodes.setdefault(episode.robot_id, deque(maxlen=self.max_episodes_per_robot)).append(episode)
        self.success.record(episode.robot_id, episode.succeeded)

    def __len__(self) -> int:
        return sum(len(q) for q in self._episodes.values())

    def episodes(self, robot_id: str | None = None) -> list[Episode]:
        """Stored episodes, oldest first (of one robot, or of all robots in robot order)."""
        if robot_id is not None:
            return list(self._episodes.get(robot_id, ()))
        return [ep for r in sorted(self._episodes) for ep in self._episodes[r]]

    def robot_probabilities(self) -> dict[str, float]:
        """The per-robot draw probabilities p_r over robots that have stored episodes."""
        return self.success.probabilities(r for r, q in self._episodes.items() if q)

    def take(self, num_episodes: int, rng: np.random.Generator) -> list[Episode]:
        """Up to ``num_episodes`` episodes out of the buffer, without replacement: per draw a robot by p_r
        (over robots with episodes left), then its oldest episode."""
        out = []
        while len(out) < num_episodes and len(self):
            probs = self.robot_probabilities()
            robots = list(probs)
            robot = robots[int(rng.choice(len(robots), p=list(probs.values())))]
            out.append(self._episodes[robot].popleft())
        return out

    def drop_older_than(self, min_policy_version: int) -> int:
        """Forget episodes with a step sampled by a policy older than ``min_policy_version``; returns the count."""
        dropped = 0
        for robot_id, queue in self._episodes.items():
            kept = [ep for ep in queue if oldest_policy_version(ep) >= min_policy_version]
            dropped += len(queue) - len(kept)
            self._episodes[robot_id] = deque(kept, maxlen=self.max_episodes_per_robot)
        return dropped

    def shallow_copy(self) -> Self:
        """The same episodes per robot (not copied; robots whose queue is empty left out) with a copy of the success
        windows: a checkpoint snapshot that arms may keep adding to the original of while it is written."""
        copy_ = type(self)(self.max_episodes_per_robot)
        copy_.success = RobotSuccessTracker.from_state(self.success.state())
        for robot_id, queue in self._episodes.items():
            if queue:
                copy_._episodes[robot_id] = deque(queue, maxlen=self.max_episodes_per_robot)
        return copy_

    def state(self, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Images into ``arrays`` under ``prefix``; returns the JSON metadata (settings, episodes, success windows)."""
        return {
            "max_episodes_per_robot": self.max_episodes_per_robot,
            "success": self.success.state(),
            "episodes": {
                robot_id: [encode_episode(ep, f"{prefix}/{robot_id}/{i:06d}", arrays) for i, ep in enumerate(queue)]
                for robot_id, queue in self._episodes.items()
            },
        }

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> RolloutBuffer:
        buffer = cls(max_episodes_per_robot=meta["max_episodes_per_robot"])
        buffer.success = RobotSuccessTracker.from_state(meta["success"])
        for robot_id, encoded in meta["episodes"].items():
            buffer._episodes[robot_id] = deque(
                (decode_episode(m, arrays) for m in encoded), maxlen=buffer.max_episodes_per_robot
            )
        return buffer


def oldest_policy_version(episode: Episode) -> int:
    """The oldest policy version that chose one of the episode's actions: replicas reload mid-episode, so
    the version at the episode's start is not the version of all its steps."""
    return min((t.action.policy_version for t in episode.transitions), default=episode.policy_version)


class DemoBuffer:
    """Human data for offline demonstration replay: tele-operated demos and human-guided episodes.

    An episode enters with at least one step flagged ``human``; the NLL loss trains on those steps.
    Oldest dropped first beyond ``capacity`` episodes.
    """

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: expected at least 1 episode")
        self.capacity = capacity
        self._episodes: deque[Episode] = deque(maxlen=capacity)

    def add(self, episode: Episode) -> None:
        if episode.human_steps == 0:
            raise ValueError(f"episode {episode.episode_id!r} cannot enter the demo buffer: no step is flagged human")
        self._episodes.append(episode)

    def __len__(self) -> int:
        return len(self._episodes)

    def episodes(self) -> list[Episode]:
        return list(self._episodes)

    def human_steps(self) -> int:
        return sum(ep.human_steps for ep in self._episodes)

    def sample(self, num_episodes: int, rng: np.random.Generator) -> list[Episode]:
        """Uniform draws with replacement."""
        if not self._episodes:
            raise ValueError("demo buffer is empty: nothing to sample")
        return [self._episodes[int(i)] for i in rng.integers(len(self._episodes), size=num_episodes)]

    def at_most(self, num_episodes: int, rng: np.random.Generator) -> list[Episode]:
        """Every episode when there are at most ``num_episodes``, else ``num_episodes`` uniform draws (what
        one update replays)."""
        return self.episodes() if len(self._episodes) <= num_episodes else self.sample(num_episodes, rng)

    def shallow_copy(self, capacity: int | None = None) -> Self:
        """A buffer of the same kind holding the same episodes (not copied; the newest when ``capacity``, default
        this one's, is smaller): a checkpoint snapshot, or a restored buffer at the configured capacity."""
        copy_ = type(self)(self.capacity if capacity is None else capacity)
        copy_._episodes.extend(self._episodes)
        return copy_

    def state(self, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "episodes": [encode_episode(ep, f"{prefix}/{i:06d}", arrays) for i, ep in enumerate(self._episodes)],
        }

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> DemoBuffer:
        buffer = cls(capacity=meta["capacity"])
        buffer._episodes.extend(decode_episode(m, arrays) for m in meta["episodes"])
        return buffer


class SuccessBuffer(DemoBuffer):
    """The policy's own episodes that ended on the reward source's done, for self-imitation (Oh et al. 2018,
    "Self-Imitation Learning"): PPO sees a success once, in one update; the imitation term replays the
    recent ones, so an action that finished the task is raised again in later updates.

    "Done" is the session's reward source's (``Termination.DONE``): true success under the simulator's
    ground truth, the critic's done rule otherwise; the ground truth recorded beside a critic-driven
    episode is never read here, so a critic session imitates what its critic calls success. Each episode is
    a deep copy (the rollout buffer holds the same episode until it is trained on, and a checkpoint refuses
    arrays that share memory). Oldest dropped first beyond ``capacity``.
    """

    def add(self, episode: Episode) -> None:
        if episode.termination is not Termination.DONE:
            ended = episode.termination.value if episode.termination else "nothing (unfinished)"
            why = f"it ended on {ended}, not on done"
            raise ValueError(f"episode {episode.episode_id!r} cannot enter the success buffer: {why}")
        if episode.human_steps:
            raise ValueError(f"episode {episode.episode_id!r} cannot enter the success buffer: a person acted in it")
        if episode.length == 0:
            raise ValueError(f"episode {episode.episode_id!r} cannot enter the success buffer: it has no steps")
        self._episodes.append(copy.deepcopy(episode))

    def steps(self) -> int:
        return sum(ep.length for ep in self._episodes)


class Route(str, Enum):
    """Where a finished episode went."""

    ROLLOUT = "rollout"
    DEMO = "demo"
    GUIDED = "guided"  # the policy's steps before a takeover -> rollouts, the whole episode -> demos
    NOT_TRAINED = "not_trained"  # aborted, empty or unfinished: on disk only


def autonomous_prefix(episode: Episode) -> Episode | None:
    """The policy's steps before the first human one, as a rollout the operator cut off: it bootstraps
    from the observation the operator took over at, and did not succeed by itself. None when a person
    acted first, or when the prefix could not be trained on (an aborted episode).

    A deep copy: the demo buffer keeps the whole episode, and a checkpoint holding both buffers refuses
    arrays that share memory (safetensors)."""
    first_human = next((i for i, t in enumerate(episode.transitions) if t.human), None)
    if not first_human:  # None (no human step) or 0 (a person acted first)
        return None
    prefix = replace(
        episode,
        transitions=copy.deepcopy(episode.transitions[:first_human]),
        final_observation=copy.deepcopy(episode.transitions[first_human].observation),
        termination=Termination.OPERATOR,
        success=False,
    )
    return prefix if episode.termination is not Termination.ABORTED and is_trainable_rollout(prefix) is None else None


def route_episode(episode: Episode, rollouts: RolloutBuffer, demos: DemoBuffer) -> Route:
    """Send an episode to the buffer it belongs in: any human step -> demos, else a trainable one -> rollouts.

    A human-guided episode goes to the demo buffer, where demo replay learns from the human's actions
    (its teleoperated steps have no policy log-probs, so no PPO ratio). The policy's own steps before
    the takeover are also a rollout (``autonomous_prefix``): a takeover in mid-episode (an operator who
    steps in when the policy stalls) keeps what the policy explored up to there for PPO.
    """
    if episode.human_steps > 0:
        demos.add(episode)
        prefix = autonomous_prefix(episode)
        if prefix is None:
            return Route.DEMO
        rollouts.add(prefix)
        return Route.GUIDED
    if is_trainable_rollout(episode) is None:
        rollouts.add(episode)
        return Route.ROLLOUT
    return Route.NOT_TRAINED
