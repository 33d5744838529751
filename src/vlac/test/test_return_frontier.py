"""Return-and-explore to the frontier: a failed episode keeps the state where its return peaked, the next
revisit starts there, and a frontier the robot lost is dropped, not silently replaced."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
from episode_fakes import FakeActor, FakeClock, FakeCritic, FakeRobot, RecordingSink

from vlac.episode.loop import EpisodeLoop, LoopConfig
from vlac.episode.manager import RETURN_TO_KEY, CancellableOperator, EpisodeGoal, EpisodeManager
from vlac.episode.return_explore import ReturnAndExploreStore, frontier_state_id, is_frontier_state_id
from vlac.param_file import EpisodeManagerConfig
from vlac_core.config import ConfigError
from vlac_core.types import DeltaAction, StartState, StartStateGone, Termination


class SnapshotRobot(FakeRobot):
    """A FakeRobot that sets up states it passed through (a ``FrontierRobot``); its whole state is its position."""

    def __init__(self, clock: FakeClock, goal: int = 5) -> None:
        super().__init__(clock, goal=goal)
        self.kept: dict[str, int] = {}
        self.snapshots_taken = 0

    def snapshot(self) -> int:
        self.snapshots_taken += 1
        return self.position

    def keep_snapshot(self, snapshot: int, state_id: str, image=None) -> StartState:
        self.kept[state_id] = snapshot
        return StartState(state_id, {"frontier_of": 0}, image)

    def reset(self, start_state: StartState | None) -> StartState:
        if start_state is not None and "/step" in start_state.state_id:  # frontier_state_id's form
            if start_state.state_id not in self.kept:
                raise StartStateGone(f"{start_state.state_id!r}: not kept")
            self.resets.append(start_state)
            self.position = self.kept[start_state.state_id]
            return start_state
        return super().reset(start_state)


class ScriptedMoves(FakeActor):
    """Moves by the next of ``moves`` (mm along x) each call, then holds still."""

    def __init__(self, clock: FakeClock, moves: list[int]) -> None:
        super().__init__(clock)
        self.moves = list(moves)

    def act(self, observation, greedy):
        action = super().act(observation, greedy)
        dx = self.moves.pop(0) if self.moves else 0
        return replace(action, delta=DeltaAction(dx, 0, 0, 0, 0, 0, 1))


def loop_of(robot, moves: list[int], max_steps: int) -> EpisodeLoop:
    clock = robot.clock
    config = LoopConfig(max_steps=max_steps, reward_source="sim_dense")
    return EpisodeLoop(robot, ScriptedMoves(clock, moves), FakeCritic(), RecordingSink(), config, ground_truth=robot)


def test_a_failed_episode_keeps_the_state_after_its_best_step():
    robot = SnapshotRobot(FakeClock())
    result = loop_of(robot, [1, 1, -1, 1, -2], max_steps=5).run_episode(keep_frontier=True)
    episode = result.episode
    assert episode.termination is Termination.STEP_LIMIT and not episode.succeeded
    # returns 0.2, 0.4, 0.2, 0.4 (a tie, not a new high), 0.0: the peak is after step 2, at position 2
    assert result.frontier.state_id == frontier_state_id("pos-0", episode.episode_id, 2)
    assert robot.kept == {result.frontier.state_id: 2}
    assert int(result.frontier.image[0, 0, 0]) == 2  # the frame the state shows, for an operator or the store
    shown = episode.transitions[2].observation.images[0]
    assert np.array_equal(result.frontier.image, shown) and not np.shares_memory(result.frontier.image, shown)
    assert robot.snapshots_taken == 2  # one per new high, nothing else


def test_no_frontier_from_a_success_a_return_never_above_the_start_or_when_not_asked():
    robot = SnapshotRobot(FakeClock(), goal=2)
    assert loop_of(robot, [1, 1], max_steps=5).run_episode(keep_frontier=True).frontier is None  # succeeded
    assert robot.kept == {}
    robot = SnapshotRobot(FakeClock())
    assert loop_of(robot, [-1, 1, -1], max_steps=3).run_episode(keep_frontier=True).frontier is None
    robot = SnapshotRobot(FakeClock())
    assert loop_of(robot, [1, 1, -1], max_steps=3).run_episode().frontier is None
    assert robot.snapshots_taken == 0


def test_keep_frontier_needs_a_robot_that_snapshots():
    robot = FakeRobot(FakeClock())
    loop = EpisodeLoop(robot, FakeActor(robot.clock), FakeCritic(), RecordingSink(), LoopConfig(max_steps=2))
    with pytest.raises(TypeError, match=r"arm_0.*cannot snapshot"):
        loop.run_episode(keep_frontier=True)


def frontier_manager(robot, moves: list[int], max_steps: int = 4, revisit_prob: float = 1.0) -> EpisodeManager:
    loop = loop_of(robot, moves, max_steps)
    loop.operator = operator = CancellableOperator()
    store = ReturnAndExploreStore(revisit_prob, retire_after_successes=1)
    return EpisodeManager(loop, operator, return_explore=store, return_to="frontier")


def test_the_next_revisit_starts_at_the_frontier_and_a_success_from_it_retires_it():
    robot = SnapshotRobot(FakeClock())
    m = frontier_manager(robot, [1, 1, 1, -2, 1, 1])  # a failure peaking at 3, then 3 -> 5
    first = m.run(EpisodeGoal())
    assert not first.episode.succeeded and first.frontier is not None
    assert m.return_explore.failures(first.frontier.state_id) == 1
    assert m.return_explore.failures("pos-0") == 0  # the start is not kept: its frontier is
    second = m.run(EpisodeGoal())
    assert second.start_state is first.frontier and robot.resets[-1] is first.frontier
    assert second.episode.start_state_id == first.frontier.state_id
    assert second.episode.succeeded and second.episode.length == 2  # 3 -> 5 from the frontier
    assert len(m.return_explore) == 0  # retired after one success (retire_after_successes=1)
    assert m.success_rate() == 0.0  # a success from mid-task is no success at the whole task


def test_frontier_ids_are_told_from_scene_starts():
    state_id = frontier_state_id("pick_bowl-seed7", "arm_0-1a2b", 12)
    assert state_id == "pick_bowl-seed7/arm_0-1a2b/step12" and is_frontier_state_id(state_id)
    assert not any(map(is_frontier_state_id, ("pick_bowl-seed7", "", None, "step3", "a/step")))


def test_evaluations_keep_no_frontier():
    robot = SnapshotRobot(FakeClock())
    m = frontier_manager(robot, [1, -1])
    assert m.run(EpisodeGoal(evaluation=True)).frontier is None and robot.snapshots_taken == 0


def test_a_frontier_the_robot_lost_is_dropped_with_a_warning_and_the_episode_starts_fresh(caplog):
    robot = SnapshotRobot(FakeClock())
    m = frontier_manager(robot, [1, 1, -1, -1])
    first = m.run(EpisodeGoal())
    robot.kept.clear()  # a restart: snapshots lived in memory
    with caplog.at_level(logging.WARNING, logger="vlac.episode.manager"):
        second = m.run(EpisodeGoal())
    assert second.start_state.state_id == "pos-0" and robot.resets[-1] is None
    assert first.frontier.state_id in caplog.text and "dropped" in caplog.text
    assert m.return_explore.failures(first.frontier.state_id) == 0


def test_a_start_state_the_goal_names_that_is_gone_is_the_callers_error():
    robot = SnapshotRobot(FakeClock())
    m = frontier_manager(robot, [1, 1, -1, -1])
    kept = m.run(EpisodeGoal()).frontier
    with pytest.raises(StartStateGone):
        m.run(EpisodeGoal(start_state_id="pos-0/e/step1"))
    assert m.return_explore.failures(kept.state_id) == 1  # the store's own states are untouched


def test_frontier_is_refused_for_a_robot_that_cannot_snapshot_naming_the_key():
    robot = FakeRobot(FakeClock())
    loop = EpisodeLoop(robot, FakeActor(robot.clock), FakeCritic(), RecordingSink(), LoopConfig(max_steps=2))
    store = ReturnAndExploreStore()
    with pytest.raises(ValueError, match=f"{RETURN_TO_KEY}=frontier.*arm_0.*return_to: start"):
        EpisodeManager(loop, CancellableOperator(), return_explore=store, return_to="frontier")
    EpisodeManager(loop, CancellableOperator(), return_explore=store, return_to="start")  # the default works
    EpisodeManager(loop, CancellableOperator(), return_explore=None, return_to="frontier")  # no store: nothing kept


def test_the_section_key_is_validated():
    assert EpisodeManagerConfig().return_to == "start"
    assert EpisodeManagerConfig(return_to="frontier").return_to == "frontier"
    with pytest.raises(ConfigError, match="return_to"):
        EpisodeManagerConfig(return_to="peak")
