"""One arm's episode machinery as both runtimes build it (vlac.episode.arm_wiring): seeds, store, loop, manager."""

from __future__ import annotations

import threading

import pytest
from episode_fakes import FakeActor, FakeClock, FakeCritic, FakeRobot, RecordingSink

from vlac.episode.arm_wiring import (
    SCENES_PER_ARM,
    arm_index,
    arm_seeds,
    bag_sink,
    build_episode_manager,
    recorded_episodes,
    return_explore_store,
)
from vlac.episode.intervention import InterventionTracker
from vlac.episode.manager import EpisodeGoal
from vlac.param_file import EpisodeManagerConfig
from vlac_core.config import ConfigError, from_mapping
from vlac_core.types import Termination


def build(cfg: EpisodeManagerConfig, **kwargs):
    clock = FakeClock()
    return build_episode_manager(
        cfg,
        FakeRobot(clock),
        FakeActor(clock),
        FakeCritic(),
        RecordingSink(),
        seeds=arm_seeds(cfg.scene_seed, 0),
        clock=clock,
        **kwargs,
    )


def test_arm_ids_name_their_index_and_others_are_arm_zero():
    assert [arm_index(r) for r in ("arm_0", "arm_1", "arm_12", "left", "arm_x", "my_arm_3")] == [0, 1, 12, 0, 0, 0]


def test_arms_draw_disjoint_scenes_and_a_resumed_run_continues_after_the_episodes_done():
    seeds = [arm_seeds(7, k) for k in range(4)]
    assert [s.scene_seed for s in seeds] == [7 + SCENES_PER_ARM * k for k in range(4)]
    assert len({s.manager_seed for s in seeds}) == 4
    resumed = arm_seeds(7, 1, episodes_done=5)
    assert (resumed.scene_seed, resumed.manager_seed) == (seeds[1].scene_seed + 5, seeds[1].manager_seed + 5)
    with pytest.raises(ValueError, match="non-negative"):
        arm_seeds(0, -1)


def test_an_arms_scene_pool_stays_in_its_range_and_a_resumed_run_goes_on_in_the_cycle():
    arm1 = arm_seeds(7, 1, scene_pool=3)
    base = 7 + SCENES_PER_ARM
    assert arm1.scene_seed == base and arm1.scenes.after(base + 2) == base
    resumed = arm_seeds(7, 1, episodes_done=5, scene_pool=3)
    assert resumed.scene_seed == base + 2 and resumed.scenes == arm1.scenes  # the same pool, 5 starts on
    assert arm_seeds(7, 1, episodes_done=5).scenes.pool_size == 0  # default: no pool


def test_a_resumed_pool_of_groups_goes_on_at_the_scene_after_the_groups_behind_it():
    base = 7 + SCENES_PER_ARM
    # groups of 4 over a pool of 3: 8 episodes are two whole groups (scenes 0, 1), so scene 2 is next; 9 and 11
    # stopped inside the third group, which is not made up: the cycle goes on at scene 0
    drawn = {done: arm_seeds(7, 1, episodes_done=done, scene_pool=3, scene_repeats=4).scene_seed for done in (8, 9, 11)}
    assert drawn == {8: base + 2, 9: base, 11: base}
    # without a pool the episodes done bound the scenes drawn: a resumed arm never replays one
    assert arm_seeds(7, 1, episodes_done=9, scene_repeats=4).scene_seed == base + 9
    with pytest.raises(ValueError, match="scene_repeats >= 1"):
        arm_seeds(7, 1, scene_repeats=0)
    with pytest.raises(ValueError, match="scene_pool 100001: at most 100000"):
        arm_seeds(0, 0, scene_pool=SCENES_PER_ARM + 1)


def test_the_manager_gets_the_configured_loop_store_and_tracker():
    cfg = EpisodeManagerConfig(max_steps=2, revisit_prob=0.4, max_kept_states=7, intervention_window=9)
    manager = build(cfg)
    assert manager.loop.config == cfg.loop_config() and manager.operator is manager.loop.operator
    store = manager.return_explore
    assert (store.revisit_prob, store.max_states) == (0.4, 7) and manager.intervention._recent.maxlen == 9
    result = manager.run(EpisodeGoal())
    assert result.episode.termination in (Termination.DONE, Termination.STEP_LIMIT)
    manager.cancel()  # a cancellable loop: the operator takes the request


def test_return_and_explore_off_builds_no_store_and_shared_parts_are_shared():
    assert build(EpisodeManagerConfig(return_explore=False)).return_explore is None
    cfg = EpisodeManagerConfig()
    store, tracker, lock = return_explore_store(cfg), InterventionTracker(5), threading.Lock()
    arms = [build(cfg, return_explore=store, intervention=tracker, lock=lock) for _ in range(2)]
    assert all(m.return_explore is store and m.intervention is tracker and m._lock is lock for m in arms)


def test_an_uncancellable_loop_has_no_operator(tmp_path):
    assert build(EpisodeManagerConfig(), cancellable=False).loop.operator is None
    sink = bag_sink(EpisodeManagerConfig(record=False), tmp_path / "bags")
    assert sink.record is False


def test_a_restarted_node_counts_its_recorded_training_bags(tmp_path):
    assert recorded_episodes(tmp_path / "new") == 0
    for phase, episode_id in (("train", "arm_0-a"), ("train", "arm_0-b"), ("eval", "arm_0-c")):
        (tmp_path / phase / episode_id).mkdir(parents=True)
    assert (recorded_episodes(tmp_path), recorded_episodes(tmp_path, "eval")) == (2, 1)


class _StoppingCritic(FakeCritic):
    """A critic call cut short because the runtime is stopping (a ROS node's Ctrl-C wakes its waits)."""

    def __init__(self, stop_event: threading.Event) -> None:
        super().__init__()
        self.stop_event = stop_event

    def progress_pct(self, earlier_image, later_image, task, first_image):
        self.stop_event.set()
        raise RuntimeError("/score_progress: the node is shutting down")


def test_a_call_cut_short_by_a_stop_ends_the_episode_as_shutdown_like_ctrl_c():
    stop, clock = threading.Event(), FakeClock()
    cfg = EpisodeManagerConfig(max_steps=3)
    sink = RecordingSink()
    manager = build_episode_manager(
        cfg,
        FakeRobot(clock),
        FakeActor(clock),
        _StoppingCritic(stop),
        sink,
        seeds=arm_seeds(0, 0),
        clock=clock,
        stop_event=stop,
    )
    result = manager.run(EpisodeGoal())
    assert result.episode.termination is Termination.SHUTDOWN and result.summary.abort_reason is None
    assert sink.finished, "the shut-down episode is recorded"
    # Without a stop, a failing call is an aborted episode with its reason.
    failing = build_episode_manager(
        cfg,
        FakeRobot(clock),
        FakeActor(clock),
        FakeCritic(fail_on_progress_call=1),
        RecordingSink(),
        seeds=arm_seeds(0, 0),
        clock=clock,
    ).run(EpisodeGoal())
    assert failing.episode.termination is Termination.ABORTED and "critic server went away" in (
        failing.summary.abort_reason or ""
    )


def test_scene_repeats_run_each_fresh_scene_as_a_group_and_evaluations_stay_out_of_it():
    manager = build(EpisodeManagerConfig(max_steps=2, scene_repeats=3, return_explore=False))
    robot = manager.loop.robot
    for goal in (EpisodeGoal(), EpisodeGoal(), EpisodeGoal(evaluation=True), EpisodeGoal(), EpisodeGoal()):
        manager.run(goal)
    manager.run(EpisodeGoal(start_state_id="pos-2"))  # a start the caller names: run, not counted in the group
    manager.run(EpisodeGoal())
    scene = robot.resets[1]
    assert scene is not None and scene.state_id == "pos-0"
    ids = [None if r is None else r.state_id for r in robot.resets]
    # fresh, repeat, (evaluation: fresh), repeat -> group done; fresh, (named), repeat
    assert ids == [None, "pos-0", None, "pos-0", None, "pos-2", "pos-0"]


def test_scene_repeats_refuse_return_and_explore_which_would_break_the_groups():
    with pytest.raises(ConfigError, match=r"scene_repeats: 2 runs groups from one scene.*return_explore: false"):
        from_mapping(EpisodeManagerConfig, {"scene_repeats": 2})
    with pytest.raises(ValueError, match=r"episode_manager\.scene_repeats: 2 .*set episode_manager\.return_explore"):
        build(EpisodeManagerConfig(scene_repeats=2))  # a manager built around the check refuses too
    with pytest.raises(ConfigError, match="scene_repeats"):
        EpisodeManagerConfig(scene_repeats=0, return_explore=False)
