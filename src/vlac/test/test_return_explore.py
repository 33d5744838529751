"""Return-and-explore store: failure counts, weights, retirement, draws, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
from episode_fakes import FakeActor, FakeClock, FakeRobot

from vlac.episode.return_explore import ReturnAndExploreStore
from vlac_core.types import Episode, StartState, Termination, Transition


def _episode(termination=Termination.STEP_LIMIT, success=None, human=False) -> Episode:
    ep = Episode(episode_id="e", robot_id="arm_0", task="t", termination=termination, success=success)
    if human:
        clock = FakeClock()
        obs = FakeRobot(clock).observe()
        action = FakeActor(clock).act(obs, greedy=False)
        ep.transitions.append(Transition(obs, action, 1.0, 0.01, 0.1, False, human=True))
    return ep


A = StartState("a", {"seed": 1}, np.full((2, 3, 3), 7, dtype=np.uint8))
B = StartState("b", {"seed": 2})


def test_failures_are_kept_and_weighted():
    store = ReturnAndExploreStore(revisit_prob=1.0)
    for _ in range(3):
        store.record(A, _episode(success=False))
    store.record(B, _episode(success=False))
    store.record(StartState("c"), _episode(termination=Termination.DONE))  # success from a new state: not kept
    assert store.failures("a") == 3 and store.failures("b") == 1 and len(store) == 2
    assert store.probabilities() == pytest.approx({"a": 0.75, "b": 0.25})
    # one success from a: w_a = 3 / 2 = 1.5 against w_b = 1
    store.record(A, _episode(success=True))
    assert store.probabilities() == pytest.approx({"a": 0.6, "b": 0.4})


def test_retired_after_enough_successes():
    store = ReturnAndExploreStore(retire_after_successes=2)
    store.record(A, _episode(success=False))
    store.record(A, _episode(success=True))
    assert len(store) == 1
    store.record(A, _episode(success=True))
    assert len(store) == 0


def test_aborted_ignored_and_human_help_counts_as_failure():
    store = ReturnAndExploreStore()
    store.record(A, _episode(termination=Termination.ABORTED))
    assert len(store) == 0
    store.record(A, _episode(termination=Termination.DONE, success=True, human=True))
    assert store.failures("a") == 1


def test_draws_follow_revisit_probability_and_weights():
    store = ReturnAndExploreStore(revisit_prob=0.5)
    assert store.choose_start(np.random.default_rng(0)) is None  # nothing kept yet
    for _ in range(3):
        store.record(A, _episode(success=False))
    store.record(B, _episode(success=False))
    rng = np.random.default_rng(3)
    picks = [store.choose_start(rng) for _ in range(4000)]
    ids = [p.state_id if p else None for p in picks]
    assert ids.count(None) / 4000 == pytest.approx(0.5, abs=0.03)
    assert ids.count("a") / (4000 - ids.count(None)) == pytest.approx(0.75, abs=0.03)


def test_full_store_drops_the_weakest():
    store = ReturnAndExploreStore(max_states=2)
    store.record(A, _episode(success=False))
    store.record(A, _episode(success=False))
    store.record(B, _episode(success=False))
    store.record(StartState("c"), _episode(success=False))  # b and c tie at weight 1: the older (b) goes
    assert sorted(store.probabilities()) == ["a", "c"]


def test_state_round_trip():
    store = ReturnAndExploreStore(revisit_prob=1.0, max_states=5, retire_after_successes=3)
    store.record(A, _episode(success=False))
    store.record(B, _episode(success=False))
    store.record(A, _episode(success=True))
    arrays: dict[str, np.ndarray] = {}
    meta = store.state("rae", arrays)
    again = ReturnAndExploreStore.from_state(meta, arrays)
    assert again.probabilities() == store.probabilities()
    assert again.state("rae", {}) == meta
    for seed in range(5):
        x, y = store.choose_start(np.random.default_rng(seed)), again.choose_start(np.random.default_rng(seed))
        assert (x.state_id, x.params) == (y.state_id, y.params)
        assert (x.image is None and y.image is None) or np.array_equal(x.image, y.image)


def test_settings_validated():
    with pytest.raises(ValueError, match="revisit_prob=2"):
        ReturnAndExploreStore(revisit_prob=2)
