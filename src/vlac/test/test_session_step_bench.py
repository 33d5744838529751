"""bench/session_step.py's pure parts: timing proxies, the loop instrumentation, the split arithmetic."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from bench_scripts import ROOT, load_bench
from episode_fakes import FakeActor, FakeClock, FakeCritic, FakeRobot, RecordingSink

from vlac.episode.loop import EpisodeLoop, LoopConfig
from vlac_core.types import Termination


@pytest.fixture(scope="module")
def ss():
    yield from load_bench("session_step")


class Ticking:
    """A clock that moves only when told (``advance``), shared by the timer and the fakes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += dt


class Target:
    def __init__(self, clock: Ticking) -> None:
        self.clock = clock
        self.label = "target"
        self.other_calls = 0

    def slow(self, x, *, y=0):
        self.clock.advance(0.5)
        return x + y

    def fails(self):
        self.clock.advance(0.25)
        raise ValueError("boom")

    def untimed(self):
        self.clock.advance(2.0)
        self.other_calls += 1
        return "plain"


def test_proxy_forwards_calls_and_sums_time_per_stage(ss):
    clock = Ticking()
    timer = ss.StageTimer(clock)
    target = Target(clock)
    proxy = ss.TimingProxy(target, timer, {"slow": "a", "fails": "a"})
    assert proxy.slow(2, y=3) == 5
    assert proxy.slow(1) == 1
    with pytest.raises(ValueError, match="boom"):
        proxy.fails()  # an error propagates and its time still counts
    assert proxy.untimed() == "plain" and target.other_calls == 1  # not named: forwarded, not timed
    assert proxy.label == "target"
    proxy.label = "changed"  # assignment reaches the target (the runtime sets sink.phase)
    assert target.label == "changed"
    seconds, calls = timer.snapshot()
    assert seconds == {"a": pytest.approx(1.25)} and calls == {"a": 3}


def test_inline_calls_and_pool_waits_are_told_apart(ss):
    clock = Ticking()
    timer = ss.StageTimer(clock)
    proxy = ss.TimingProxy(Target(clock), timer, {"slow": "actor"}, inline_suffix="_inline")
    proxy.slow(1)  # on this thread: actor and actor_inline
    with ThreadPoolExecutor(1) as executor:
        pool = ss.PoolProxy(executor, timer)
        future = pool.submit(proxy.slow, 1, y=1)  # on the worker: actor only
        assert future.result() == 2
        assert future.exception() is None
        assert future.done()  # other Future methods are forwarded
    _, calls = timer.snapshot()
    assert calls == {"actor": 2, "actor_inline": 1, "actor_wait": 2}
    assert not ss.on_pool_worker()


def test_step_split_arithmetic(ss):
    seconds = {
        "episode": 10.0,
        "actor": 4.0,  # 3 of it overlapped with the critic on the worker
        "actor_inline": 0.5,
        "actor_wait": 0.5,
        "critic": 3.0,
        "robot_execute": 2.0,
        "observe_render": 1.5,
        "record_step": 0.25,
        "record_episode": 0.25,
        "reset": 0.15,
        "truth": 0.1,
    }
    split = ss.step_split(seconds, steps=100)
    assert split == pytest.approx(
        {
            "actor": 40.0,
            "actor_blocking": 10.0,
            "critic": 30.0,
            "robot_execute": 20.0,
            "observe_render": 15.0,
            "record": 5.0,
            "reset": 1.5,
            "truth": 1.0,
            "other": 17.5,  # 10 - (1 + 3 + 2 + 1.5 + 0.5 + 0.25)
        }
    )
    assert list(split) == list(ss.SPLIT_KEYS)
    assert set(ss.step_split(seconds, 0).values()) == {0.0}
    assert ss.per_episode(seconds, 4) == pytest.approx({"episode": 2500.0, "reset": 37.5, "record_episode": 62.5})
    assert set(ss.per_episode(seconds, 0).values()) == {0.0}


def test_trainer_summary(ss):
    row = ss.trainer_summary([2.0, 4.0], [1.0, 3.0], [100, 200], episodes=8)
    assert row["updates"] == 2
    assert row["s_per_update"] == pytest.approx(3.0)
    assert row["cpu_s_per_update"] == pytest.approx(2.0)
    assert row["ms_per_trained_step"] == pytest.approx(20.0)
    assert row["updates_per_episode"] == pytest.approx(0.25)
    empty = ss.trainer_summary([], [], [], episodes=0)
    assert empty["updates"] == 0 and empty["s_per_update"] is None and empty["updates_per_episode"] is None


def _loop(overlap: bool, timer_clock=None):
    clock = FakeClock()
    robot = FakeRobot(clock, goal=3)
    actor = FakeActor(clock)
    sink = RecordingSink()
    loop = EpisodeLoop(
        robot,
        actor,
        FakeCritic(goal=3),
        sink,
        LoopConfig(max_steps=10, overlap_inference=overlap),
        clock=clock,
        sleep=clock.advance,
        ground_truth=robot,
    )
    return loop, clock, robot, sink


def test_instrumented_loop_splits_a_real_episode(ss):
    loop, clock, robot, sink = _loop(overlap=False)
    timer = ss.StageTimer(clock)  # the fakes move this clock: observe 0.05 s, act 0.25 s
    ss.instrument_loop(loop, timer)
    result = loop.run_episode()
    assert result.episode.termination is Termination.DONE and result.episode.length == 3
    assert len(sink.finished) == 1 and robot.position == 3  # the proxies reached the real objects
    seconds, calls = timer.snapshot()
    assert calls["robot_execute"] == 3 and calls["episode"] == 1
    assert calls["observe_render"] == 4  # one at reset, one per step
    assert calls["actor"] == calls["actor_inline"] == 3  # not overlapped: every call on the loop thread
    assert calls["critic"] == 6 and calls["record_step"] == 3 and calls["record_episode"] == 2  # begin, finish
    assert calls["reset"] == 1 and calls["truth"] == 1 + 3 + 1  # at start, per step, ground_truth_success
    assert seconds["observe_render"] == pytest.approx(0.2) and seconds["actor"] == pytest.approx(0.75)
    assert seconds["episode"] == pytest.approx(0.95)
    assert timer.episodes == [(pytest.approx(100.0), pytest.approx(100.95), 3)]  # (start, end, steps)
    assert ss.per_episode(seconds, 1) == pytest.approx({"episode": 950.0, "reset": 0.0, "record_episode": 0.0})
    split = ss.step_split(seconds, calls["robot_execute"])
    assert split["actor_blocking"] == pytest.approx(250.0) and split["observe_render"] == pytest.approx(200 / 3)
    assert split["other"] == pytest.approx(0.0) and split["critic"] == 0.0
    loop.close()


def test_instrumented_loop_with_overlap_counts_worker_calls_and_waits(ss):
    loop, *_ = _loop(overlap=True)
    timer = ss.StageTimer()  # real clock: the worker thread runs concurrently
    ss.instrument_loop(loop, timer)
    assert loop.run_episode().episode.length == 3
    seconds, calls = timer.snapshot()
    # first action inline; one per step on the worker (the last one dropped, waited for at the end)
    assert calls["actor"] == 4 and calls["actor_inline"] == 1
    assert calls["actor_wait"] == 3  # two results + the final exception() check
    split = ss.step_split(seconds, calls["robot_execute"])
    assert split["other"] >= 0.0 and all(math.isfinite(v) for v in split.values())
    loop.close()  # the pool proxy forwards shutdown


def test_session_files_turn_evaluations_off_and_set_the_reward(ss):
    config = Path(ROOT) / "config" / "experiment_pick_bowl.yaml"
    files = ss.session_files(config, max_steps=12, reward_source="sim_dense")
    assert files.manager.reward_source == "sim_dense" and files.manager.max_steps == 12
    s = files.session
    assert (s.eval_every_episodes, s.eval_at_start, s.eval_at_end, s.resume, s.demo_dir) == (0, False, False, False, "")
    kept = ss.session_files(config, max_steps=None, reward_source="critic")
    assert kept.manager.max_steps == 60 and kept.manager.reward_source == "critic"  # the file's values


def test_session_files_without_trainer_only_stop_the_hand_over(ss):
    config = Path(ROOT) / "config" / "experiment_pick_bowl.yaml"
    assert ss.session_files(config, None, "sim_dense").manager.send_to_trainer is True
    files = ss.session_files(config, None, "sim_dense", trainer=False)
    assert files.manager.send_to_trainer is False and files.manager.record is True  # episodes still recorded


def test_session_files_for_the_lessons_variant_only_turn_the_diagnostic_on(ss):
    config = Path(ROOT) / "config" / "experiment_pick_bowl.yaml"
    plain = ss.session_files(config, None, "sim_dense")
    files = ss.session_files(config, None, "sim_dense", lessons=True)
    assert files.trainer.lesson_agreement is True and plain.trainer.lesson_agreement is False
    assert replace(files.trainer, lesson_agreement=False) == plain.trainer


def test_null_critic_answers_constants_the_loop_accepts(ss):
    loop, *_ = _loop(overlap=False)
    loop.critic = ss.NullCritic()
    episode = loop.run_episode().episode  # sim_* rewards are not set here: the critic's done never comes
    assert episode.termination is Termination.STEP_LIMIT and episode.length == 10
    assert {t.progress_pct for t in episode.transitions} == {0.0} and {t.done_prob for t in episode.transitions} == {
        0.0
    }
    loop.close()


def test_run_one_refuses_unknown_variants_and_no_critic_with_the_critic_reward(ss, tmp_path):
    config = Path(ROOT) / "config" / "experiment_pick_bowl.yaml"
    with pytest.raises(ValueError, match="expected one of full, no_trainer, no_critic, bare"):
        ss.run_one(1, 1, config, 5, "sim_dense", tmp_path / "a", "fast")
    with pytest.raises(ValueError, match="needs a sim_\\* reward source"):
        ss.run_one(1, 1, config, 5, "critic", tmp_path / "b", "no_critic")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before anything ran


def test_child_command_round_trips_through_the_parser(ss, tmp_path):
    parser = ss.build_parser()
    args = parser.parse_args(["--arms", "2", "--episodes", "3", "--max-steps", "0", "--reward-source", "sim_sparse"])
    command = ss.child_command(args, 2, "no_trainer", tmp_path)
    child = parser.parse_args(command[2:])
    assert command[1].endswith("bench/session_step.py")
    assert (child.one, child.variant, child.episodes, child.max_steps, child.reward_source, child.work) == (
        2,
        "no_trainer",
        3,
        0,
        "sim_sparse",
        tmp_path,
    )
    assert child.config == args.config


def test_result_keys_and_table(ss):
    assert ss.result_key(4, "full") == "4" and ss.result_key(1, "bare") == "1/bare"
    ok = {
        "arms": 2,
        "variant": "no_critic",
        "wall_s": 12.0,
        "steps": 60,
        "steps_per_s": 5.0,
        "per_step_ms": dict.fromkeys(ss.SPLIT_KEYS, 1.5),
        "arm_step_ms": 400.0,
        "trainer": {"updates": 3, "s_per_update": 2.5, "updates_per_episode": 0.25},
    }
    table = ss.format_table([ok, {"arms": 4, "variant": "full", "error": "child exited with 1"}]).splitlines()
    assert table[0].split()[:4] == ["run", "wall", "s", "steps"]
    assert table[2].split() == ["2/no_critic", "12.0", "60", "5.00"] + ["1.5"] * len(ss.SPLIT_KEYS) + [
        "400.0",
        "3",
        "2.50",
        "0.25",
    ]
    assert table[3].split() == ["4", "child", "exited", "with", "1"]


def test_collection_split_by_trainer_activity(ss):
    episodes = [(0.0, 4.0, 20), (4.0, 8.0, 10), (8.0, 10.0, 10), (10.0, 12.0, 5)]
    updates = [(5.0, 9.0), (11.5, 20.0)]  # covers 3/4 of the 2nd, 1/2 of the 3rd, 1/4 of the 4th
    split = ss.step_ms_by_trainer(episodes, updates)
    assert split["busy"] == {"episodes": 2, "steps": 20, "step_ms": pytest.approx(300.0)}  # 6 s / 20 steps
    assert split["idle"] == {"episodes": 2, "steps": 25, "step_ms": pytest.approx(240.0)}  # 6 s / 25 steps
    everything_idle = ss.step_ms_by_trainer(episodes, [])
    assert everything_idle["busy"] == {"episodes": 0, "steps": 0, "step_ms": None}
    assert everything_idle["idle"]["steps"] == 45
