"""Rollout/demo buffers: routing, capacity, per-robot dynamic sampling weights and draws without replacement."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from trainer_fixtures import make_episode

from vlac_core.types import Termination
from vlac_trainer.online.buffers import (
    DemoBuffer,
    RobotSuccessTracker,
    RolloutBuffer,
    Route,
    SuccessBuffer,
    autonomous_prefix,
    oldest_policy_version,
    route_episode,
)


def test_weights_follow_recent_success_over_a_sliding_window():
    tracker = RobotSuccessTracker(window=4, epsilon=0.05)
    for success in (False, True, True, True):
        tracker.record("arm_0", success)
    for success in (True, False, False, False, True, False, False):  # only the last 4 count: 1 of 4
        tracker.record("arm_1", success)
    assert tracker.success_rate("arm_0") == pytest.approx(0.75)
    assert tracker.success_rate("arm_1") == pytest.approx(0.25)
    assert tracker.success_rate("arm_2") is None
    # w = (1 - s) + eps: 0.30, 0.80, and 1.05 for a robot with no history
    assert tracker.weight("arm_0") == pytest.approx(0.30)
    assert tracker.weight("arm_1") == pytest.approx(0.80)
    assert tracker.weight("arm_2") == pytest.approx(1.05)
    probs = tracker.probabilities(["arm_1", "arm_0"])
    assert probs == pytest.approx({"arm_0": 0.30 / 1.10, "arm_1": 0.80 / 1.10})


def test_take_is_without_replacement_oldest_first_and_follows_the_weights():
    def filled():
        buffer = RolloutBuffer(max_episodes_per_robot=8, success_window=4, epsilon=0.05)
        for i, success in enumerate((True, True, True, False)):
            buffer.add(make_episode(f"a{i}", robot_id="arm_0", success=success))
        for i, success in enumerate((False, False, False, True)):
            buffer.add(make_episode(f"b{i}", robot_id="arm_1", success=success))
        return buffer

    buffer = filled()
    assert buffer.robot_probabilities() == pytest.approx({"arm_0": 0.30 / 1.10, "arm_1": 0.80 / 1.10})
    taken = buffer.take(8, np.random.default_rng(7))
    ids = [ep.episode_id for ep in taken]
    assert sorted(ids) == ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]  # each once
    assert [i for i in ids if i[0] == "b"] == ["b0", "b1", "b2", "b3"]  # oldest first within a robot
    assert len(buffer) == 0 and buffer.take(3, np.random.default_rng(0)) == []
    # the first draw picks the under-learned robot with p = 0.8 / 1.1
    first_is_arm_1 = [filled().take(1, np.random.default_rng(seed))[0].robot_id == "arm_1" for seed in range(600)]
    assert np.mean(first_is_arm_1) == pytest.approx(0.80 / 1.10, abs=0.05)
    # same seed, same order
    assert [ep.episode_id for ep in filled().take(8, np.random.default_rng(7))] == ids


def test_capacity_drops_the_oldest_of_that_robot_only():
    buffer = RolloutBuffer(max_episodes_per_robot=2)
    for i in range(3):
        buffer.add(make_episode(f"a{i}", robot_id="arm_0"))
    buffer.add(make_episode("b0", robot_id="arm_1"))
    assert [ep.episode_id for ep in buffer.episodes("arm_0")] == ["a1", "a2"]
    assert len(buffer) == 3
    # the success window still counts all three of arm_0's episodes
    assert len(buffer.success.state()["outcomes"]["arm_0"]) == 3


def test_a_rollout_snapshot_shares_the_episodes_and_copies_the_success_windows():
    buffer = RolloutBuffer(max_episodes_per_robot=2, success_window=3, epsilon=0.1)
    for i, success in enumerate((True, False, True)):
        buffer.add(make_episode(f"a{i}", robot_id="arm_0", success=success, policy_version=2))
    buffer.add(make_episode("b0", robot_id="arm_1", policy_version=1))
    assert buffer.drop_older_than(2) == 1  # arm_1's queue is now empty
    snapshot = buffer.shallow_copy()
    assert type(snapshot) is RolloutBuffer and snapshot.max_episodes_per_robot == 2
    assert [id(ep) for ep in snapshot.episodes()] == [id(ep) for ep in buffer.episodes()]  # not copied again
    assert snapshot.state("x", {})["episodes"].keys() == {"arm_0"}  # an emptied robot's queue is left out
    assert snapshot.success.state() == buffer.success.state() and snapshot.success is not buffer.success
    buffer.add(make_episode("a3", robot_id="arm_0"))  # the arms go on adding to the original
    assert [ep.episode_id for ep in snapshot.episodes()] == ["a1", "a2"]
    assert len(snapshot.success.state()["outcomes"]["arm_0"]) == 3


def test_drop_older_policy_versions_by_the_oldest_step():
    buffer = RolloutBuffer()
    buffer.add(make_episode("old", policy_version=1))
    buffer.add(make_episode("new", policy_version=2))
    # started under version 2, but its first step was chosen by a replica still at version 1
    mixed = make_episode("mixed", policy_version=2)
    first = mixed.transitions[0]
    mixed.transitions[0] = replace(first, action=replace(first.action, policy_version=1))
    buffer.add(mixed)
    assert oldest_policy_version(mixed) == 1
    assert buffer.drop_older_than(2) == 2
    assert [ep.episode_id for ep in buffer.episodes()] == ["new"]


def test_routing():
    rollouts, demos = RolloutBuffer(), DemoBuffer()
    assert route_episode(make_episode("r"), rollouts, demos) is Route.ROLLOUT
    assert route_episode(make_episode("h", human_steps=3), rollouts, demos) is Route.DEMO  # a person from the start
    assert route_episode(make_episode("g", human_steps=2), rollouts, demos) is Route.GUIDED  # taken over at step 1
    assert route_episode(make_episode("x", termination=Termination.ABORTED), rollouts, demos) is Route.NOT_TRAINED
    assert route_episode(make_episode("e", steps=0), rollouts, demos) is Route.NOT_TRAINED
    assert [e.episode_id for e in rollouts.episodes()] == ["r", "g"]
    assert [e.episode_id for e in demos.episodes()] == ["h", "g"]
    assert demos.human_steps() == 5


def test_the_policys_steps_before_a_takeover_are_a_rollout_cut_off_by_the_operator():
    guided = make_episode("g", steps=5, human_steps=2, termination=Termination.DONE, success=True)
    prefix = autonomous_prefix(guided)
    assert prefix.episode_id == "g" and prefix.length == 3 and prefix.human_steps == 0
    assert prefix.termination is Termination.OPERATOR and prefix.success is False  # the policy did not finish it
    takeover = guided.transitions[3].observation
    assert prefix.final_observation.seq == takeover.seq  # GAE bootstraps from V(the state it was taken over at)
    assert np.array_equal(prefix.final_observation.images[0], takeover.images[0])
    assert not np.shares_memory(prefix.final_observation.images[0], takeover.images[0])
    assert not np.shares_memory(
        prefix.transitions[0].observation.images[0], guided.transitions[0].observation.images[0]
    )
    assert guided.length == 5 and guided.termination is Termination.DONE  # the demo keeps the whole episode
    assert autonomous_prefix(make_episode("r")) is None  # no takeover
    assert autonomous_prefix(make_episode("h", human_steps=3)) is None  # a person acted first
    aborted = make_episode("a", steps=4, human_steps=1, termination=Termination.ABORTED)
    assert autonomous_prefix(aborted) is None


def test_the_success_buffer_keeps_copies_of_the_latest_done_episodes():
    successes = SuccessBuffer(capacity=2)
    first = make_episode("s0", termination=Termination.DONE, seed=1)
    successes.add(first)
    first.transitions[0].observation.images[0][:] = 0  # the rollout buffer's episode may change: the copy does not
    kept = successes.episodes()[0]
    assert kept.episode_id == "s0" and kept.transitions[0].observation.images[0].any()
    assert not np.shares_memory(kept.transitions[0].observation.images[0], first.transitions[0].observation.images[0])
    for name in ("s1", "s2"):
        successes.add(make_episode(name, termination=Termination.DONE, steps=3))
    assert [ep.episode_id for ep in successes.episodes()] == ["s1", "s2"] and successes.steps() == 6


def test_a_shallow_copy_shares_the_episodes_and_keeps_the_newest_at_a_smaller_capacity():
    successes = SuccessBuffer(capacity=3)
    for name in ("s0", "s1", "s2"):
        successes.add(make_episode(name, termination=Termination.DONE, steps=2))
    same = successes.shallow_copy()
    assert type(same) is SuccessBuffer and same.capacity == 3
    assert [id(ep) for ep in same.episodes()] == [id(ep) for ep in successes.episodes()]  # not copied again
    smaller = successes.shallow_copy(capacity=2)
    assert smaller.capacity == 2 and [ep.episode_id for ep in smaller.episodes()] == ["s1", "s2"]
    smaller.add(make_episode("s3", termination=Termination.DONE, steps=2))  # its own deque
    assert len(successes) == 3


def test_at_most_replays_every_episode_or_a_uniform_draw_of_that_many():
    demos = DemoBuffer()
    for name in ("h0", "h1", "h2"):
        demos.add(make_episode(name, human_steps=1))
    rng = np.random.default_rng(0)
    assert [ep.episode_id for ep in demos.at_most(3, rng)] == ["h0", "h1", "h2"]
    drawn = demos.at_most(2, rng)
    assert len(drawn) == 2 and {ep.episode_id for ep in drawn} <= {"h0", "h1", "h2"}


def test_buffers_refuse_what_does_not_belong_with_a_reason():
    with pytest.raises(ValueError, match="ended on step_limit, not on done"):
        SuccessBuffer().add(make_episode("t", termination=Termination.STEP_LIMIT))
    with pytest.raises(ValueError, match="a person acted in it"):
        SuccessBuffer().add(make_episode("g", human_steps=1, termination=Termination.DONE))
    with pytest.raises(ValueError, match="no steps"):
        SuccessBuffer().add(make_episode("e", steps=0, termination=Termination.DONE))
    with pytest.raises(ValueError, match="aborted"):
        RolloutBuffer().add(make_episode("x", termination=Termination.ABORTED))
    with pytest.raises(ValueError, match="2 of its steps were teleoperated"):
        RolloutBuffer().add(make_episode("h", human_steps=2))
    with pytest.raises(ValueError, match="no step is flagged human"):
        DemoBuffer().add(make_episode("r"))
    with pytest.raises(ValueError, match="success_window=0"):
        RolloutBuffer(success_window=0)
