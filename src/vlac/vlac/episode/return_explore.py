"""Return-and-explore: keep the states the policy fails from, and go back to them.

After each autonomous episode its outcome is recorded. A failed episode keeps the state to return
to (or its failure count grows): where it started (``return_to: start``, the default), or its
*frontier* (``return_to: frontier``): the state after the step where its return peaked, i.e. where
it got furthest before failing, when that is past the start (``frontier_state_id``; a simulator's
snapshot, so simulated arms only). Why frontiers: a policy that carries the bowl to the plate and
never opens the gripper meets the release a few times per episode from a fresh start; from the
frontier it meets it on every step, which is where the operator of the paper would reset the scene.
A success from a kept state counts against it and ``retire_after_successes`` successes retire it.
For a reset, with probability ``revisit_prob`` a kept state is drawn with weight

    w_s = failures_s / (1 + successes_s)

(states that keep failing come back most), else None is returned (a fresh start). An episode with
teleoperated steps counts as a failure of the policy (it needed help); aborted episodes count for
nothing. When more than ``max_states`` are kept, the lowest-weight (then oldest) one goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlac_core.types import Episode, StartState, Termination

#: What a failed episode keeps to return to: its start state, or its frontier.
RETURN_TO = ("start", "frontier")


def scene_repeats_refusal(scene_repeats: int, return_explore_on: bool) -> str | None:
    """Why ``scene_repeats`` cannot run on an arm with return-and-explore on (None when it can): the config
    check and the manager built without one both say it, in these words."""
    if scene_repeats > 1 and return_explore_on:
        return (
            f"scene_repeats: {scene_repeats} runs groups from one scene; return-and-explore's revisits would break "
            "them (set episode_manager.return_explore: false)"
        )
    return None


def frontier_state_id(start_state_id: str, episode_id: str, step: int) -> str:
    """Id of the state reached after ``step`` steps of episode ``episode_id``, which began at ``start_state_id``."""
    return f"{start_state_id}/{episode_id}/step{int(step)}"


def is_frontier_state_id(state_id: str | None) -> bool:
    """Whether ``state_id`` names a mid-episode state (``frontier_state_id``'s form). An episode that
    starts there does only the rest of the task: its success is no verdict on the whole task."""
    return bool(state_id) and re.search(r"/step\d+$", state_id) is not None


@dataclass
class _Entry:
    state: StartState
    failures: int = 0
    successes: int = 0
    added: int = 0  # insertion order, for ties

    @property
    def weight(self) -> float:
        return self.failures / (1 + self.successes)


class ReturnAndExploreStore:
    def __init__(self, revisit_prob: float = 0.5, max_states: int = 100, retire_after_successes: int = 2) -> None:
        if not 0.0 <= revisit_prob <= 1.0:
            raise ValueError(f"revisit_prob={revisit_prob}: expected a probability in [0, 1]")
        if max_states < 1:
            raise ValueError(f"max_states={max_states}: expected at least 1")
        if retire_after_successes < 1:
            raise ValueError(f"retire_after_successes={retire_after_successes}: expected at least 1")
        self.revisit_prob = revisit_prob
        self.max_states = max_states
        self.retire_after_successes = retire_after_successes
        self._entries: dict[str, _Entry] = {}
        self._counter = 0

    def __len__(self) -> int:
        return len(self._entries)

    def failures(self, state_id: str) -> int:
        entry = self._entries.get(state_id)
        return entry.failures if entry else 0

    def record(self, start_state: StartState, episode: Episode, frontier: StartState | None = None) -> None:
        """Count ``episode``'s outcome: a success for the state it started from, a failure for ``frontier``
        (where it got furthest, when kept) or else for its start."""
        if episode.termination is Termination.ABORTED:
            return
        if episode.policy_succeeded:
            entry = self._entries.get(start_state.state_id)
            if entry is not None:
                entry.successes += 1
                if entry.successes >= self.retire_after_successes:
                    del self._entries[start_state.state_id]
            return
        kept = frontier or start_state
        entry = self._entries.get(kept.state_id)
        if entry is None:
            self._counter += 1
            entry = self._entries[kept.state_id] = _Entry(kept, added=self._counter)
        entry.failures += 1
        if len(self._entries) > self.max_states:
            weakest = min(self._entries.values(), key=lambda e: (e.weight, e.added))
            del self._entries[weakest.state.state_id]

    def forget(self, state_id: str) -> None:
        """Drop a kept state the robot can no longer set up (``StartStateGone``)."""
        self._entries.pop(state_id, None)

    def probabilities(self) -> dict[str, float]:
        """Draw probability of each kept state, given that a kept state is revisited."""
        weights = {sid: e.weight for sid, e in self._entries.items()}
        total = sum(weights.values())
        return {sid: w / total for sid, w in weights.items()}

    def choose_start(self, rng: np.random.Generator) -> StartState | None:
        """A kept state to return to, or None for a fresh start."""
        if not self._entries or rng.random() >= self.revisit_prob:
            return None
        probs = self.probabilities()
        ids = sorted(probs)
        pick = ids[int(rng.choice(len(ids), p=[probs[i] for i in ids]))]
        return self._entries[pick].state

    def state(self, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """JSON metadata (images of kept states go into ``arrays`` under ``prefix``), for trainer checkpoints."""
        entries = []
        for e in self._entries.values():
            image_key = None
            if e.state.image is not None:
                image_key = f"{prefix}/{e.added:06d}"
                arrays[image_key] = e.state.image
            entries.append(
                {
                    "state_id": e.state.state_id,
                    "params": e.state.params,
                    "image": image_key,
                    "failures": e.failures,
                    "successes": e.successes,
                    "added": e.added,
                }
            )
        return {
            "revisit_prob": self.revisit_prob,
            "max_states": self.max_states,
            "retire_after_successes": self.retire_after_successes,
            "counter": self._counter,
            "entries": entries,
        }

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> ReturnAndExploreStore:
        store = cls(meta["revisit_prob"], meta["max_states"], meta["retire_after_successes"])
        store._counter = meta["counter"]
        for m in meta["entries"]:
            image = None if m["image"] is None else np.asarray(arrays[m["image"]])
            state = StartState(m["state_id"], dict(m["params"]), image)
            store._entries[m["state_id"]] = _Entry(state, m["failures"], m["successes"], m["added"])
        return store
