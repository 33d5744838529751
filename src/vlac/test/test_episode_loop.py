"""The episode loop against in-test fakes: reward wiring, terminations, aborts, human takeover, evaluation."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
from episode_fakes import TASK, FakeActor, FakeClock, FakeCritic, FakeRobot, RecordingSink, ScriptedOperator

from vlac.episode.evaluation import evaluation_result, run_in_parallel, trial_result
from vlac.episode.interfaces import Actor, Critic, EpisodeSink, Operator, Robot
from vlac.episode.intervention import InterventionTracker
from vlac.episode.loop import EpisodeLoop, LoopConfig
from vlac.session.demos import as_demo, score_demo
from vlac_core.action_text import format_action
from vlac_core.config import ConfigError
from vlac_core.types import DeltaAction, StartState, Termination
from vlac_trainer.online.buffers import DemoBuffer, RolloutBuffer, Route, is_trainable_rollout, route_episode
from vlac_trainer.online.gae import bootstraps


@dataclass
class Rig:
    loop: EpisodeLoop
    robot: FakeRobot
    actor: FakeActor
    critic: FakeCritic
    sink: RecordingSink


def _rig(
    goal=3,
    max_steps=10,
    overlap=True,
    actor_fails=(),
    critic=None,
    operator=None,
    ground_truth=True,
    truth_goal=None,
    **cfg,
) -> Rig:
    clock = FakeClock()
    robot = FakeRobot(clock, goal=truth_goal or goal, ground_truth=ground_truth)
    actor = FakeActor(clock, fail_on_calls=actor_fails)
    critic = critic or FakeCritic(goal=goal)
    sink = RecordingSink()
    ids = iter(f"ep{i}" for i in range(100))
    loop = EpisodeLoop(
        robot,
        actor,
        critic,
        sink,
        LoopConfig(max_steps=max_steps, overlap_inference=overlap, **cfg),
        operator,
        clock=clock,
        sleep=clock.advance,
        episode_id_factory=lambda robot_id: next(ids),
        ground_truth=robot if ground_truth else None,
    )
    return Rig(loop, robot, actor, critic, sink)


def test_fakes_satisfy_the_protocols():
    rig = _rig()
    assert isinstance(rig.robot, Robot) and isinstance(rig.actor, Actor) and isinstance(rig.critic, Critic)
    assert isinstance(rig.sink, EpisodeSink) and isinstance(ScriptedOperator(), Operator)


@pytest.mark.parametrize("overlap", [True, False])
def test_reward_is_critic_progress_and_done_ends_the_episode(overlap):
    rig = _rig(goal=3, overlap=overlap)
    result = rig.loop.run_episode()
    ep, summary = result.episode, result.summary
    # +1 per step, 10 % per unit, reward = 10 * 0.01; the critic says done at position 3
    assert [t.progress_pct for t in ep.transitions] == [10.0, 10.0, 10.0]
    assert [t.reward for t in ep.transitions] == pytest.approx([0.1, 0.1, 0.1])
    assert [t.done for t in ep.transitions] == [False, False, True]
    assert [t.done_prob for t in ep.transitions] == [0.1, 0.1, 0.95]
    assert ep.termination is Termination.DONE and not bootstraps(ep.termination)
    assert ep.success is True and summary.succeeded
    assert summary.progress_pct == (10.0, 10.0, 10.0)
    # transition t holds o_t; the final observation is o_T
    assert [int(t.observation.images[0][0, 0, 0]) for t in ep.transitions] == [0, 1, 2]
    assert int(ep.final_observation.images[0][0, 0, 0]) == 3
    # the first frame goes to every critic call
    assert all(np.array_equal(f, ep.transitions[0].observation.images[0]) for f in rig.critic.first_images)
    assert len(rig.critic.first_images) == 3
    # no action after done is executed
    assert len(rig.robot.executed) == 3
    assert ep.policy_version == 3 and ep.start_state_id == "pos-0" and ep.task == TASK
    # recorded step by step, acknowledged at the end
    assert rig.sink.events == [
        ("begin", "ep0"),
        *[("step", "ep0", i) for i in range(3)],
        ("finish", "ep0", Termination.DONE),
    ]
    assert rig.sink.steps["ep0"] == ep.transitions


def test_done_needs_the_probability_to_exceed_the_threshold():
    rig = _rig(goal=3, max_steps=5, done_threshold=0.95)  # the fake critic says exactly 0.95 at the goal
    ep = rig.loop.run_episode().episode
    assert ep.termination is Termination.STEP_LIMIT and not any(t.done for t in ep.transitions)


class ScriptedDoneCritic(FakeCritic):
    """The fake critic's progress, with the done probabilities given step by step (None: unparsable)."""

    def __init__(self, done_probs) -> None:
        super().__init__(goal=100)
        self.done_probs = list(done_probs)

    def done_prob(self, image, task):
        self.done_calls += 1
        return self.done_probs[self.done_calls - 1]


DONE_RULE_CASES = [
    (1, [0.1, 0.95, 0.1, 0.95, 0.95, 0.95, 0.1], 2),  # the release's rule: the first spike ends it
    (3, [0.1, 0.95, 0.1, 0.95, 0.95, 0.95, 0.1], 6),  # a spike alone does not; three in a row do
    (3, [0.95, 0.95, None, 0.95, 0.95, 0.1, 0.1], None),  # an unparsable answer breaks the streak
]


@pytest.mark.parametrize(("confirm", "done_probs", "done_at"), DONE_RULE_CASES)
def test_done_can_require_consecutive_steps_over_the_threshold(confirm, done_probs, done_at):
    rig = _rig(max_steps=7, critic=ScriptedDoneCritic(done_probs), done_confirm_steps=confirm)
    ep = rig.loop.run_episode().episode
    assert [t.done for t in ep.transitions][-1] is (done_at is not None)
    assert ep.length == (done_at or 7)
    assert ep.termination is (Termination.DONE if done_at else Termination.STEP_LIMIT)


@pytest.mark.parametrize(("confirm", "done_probs", "done_at"), DONE_RULE_CASES)
def test_a_demo_is_scored_and_ended_exactly_as_the_live_episode(confirm, done_probs, done_at):
    """score_demo uses the loop's scorer: same rewards, done probabilities, done rule and end."""
    demo = as_demo(_rig(max_steps=7, done_threshold=1.0).loop.run_episode().episode)  # 7 steps, never done
    assert demo.length == 7
    config = LoopConfig(max_steps=7, done_confirm_steps=confirm)
    scored = score_demo(demo, ScriptedDoneCritic(done_probs), config)
    live = _rig(max_steps=7, critic=ScriptedDoneCritic(done_probs), done_confirm_steps=confirm).loop.run_episode()

    def verdicts(episode):
        return [(t.progress_pct, t.reward, round(t.done_prob, 6), t.done, t.critic_done) for t in episode.transitions]

    assert str(verdicts(scored)) == str(verdicts(live.episode))  # str: NaN == NaN
    assert (scored.length, scored.termination) == (done_at or 7, live.episode.termination)
    assert all(t.human for t in scored.transitions)
    final = demo.transitions[done_at].observation if done_at else demo.final_observation
    assert scored.final_observation is final  # the frame the done was scored on


def test_step_limit_truncates_and_bootstraps():
    rig = _rig(goal=100, max_steps=4)
    ep = rig.loop.run_episode().episode
    assert ep.termination is Termination.STEP_LIMIT and bootstraps(ep.termination)
    assert ep.length == 4 and not any(t.done for t in ep.transitions)
    assert int(ep.final_observation.images[0][0, 0, 0]) == 4  # the state to bootstrap V from
    assert is_trainable_rollout(ep) is None
    assert len(rig.actor.calls) == 4  # no action is computed past the limit
    assert ep.success is False


@pytest.mark.parametrize("overlap", [True, False])
def test_actor_error_aborts_keeps_recorded_steps_and_the_loop_survives(overlap):
    rig = _rig(goal=100, overlap=overlap, actor_fails=(3,))
    result = rig.loop.run_episode()
    ep = result.episode
    assert ep.termination is Termination.ABORTED
    assert result.summary.abort_reason == "actor: RuntimeError: actor replica lost"
    assert ep.length == 2 and rig.sink.steps["ep0"] == ep.transitions
    assert rig.sink.events[-1] == ("finish", "ep0", Termination.ABORTED)
    assert ep.success is None and not result.summary.succeeded
    assert route_episode(ep, RolloutBuffer(), DemoBuffer()) is Route.NOT_TRAINED
    # the next episode runs normally
    again = rig.loop.run_episode(StartState("pos-98", {"pos": 98}))
    assert again.episode.termination is Termination.DONE and again.episode.length == 2


def test_critic_error_aborts_with_the_critic_named():
    rig = _rig(goal=100, critic=FakeCritic(goal=100, fail_on_progress_call=2))
    result = rig.loop.run_episode()
    assert result.episode.termination is Termination.ABORTED
    assert result.summary.abort_reason.startswith("critic: RuntimeError")
    assert result.episode.length == 1 and len(rig.sink.steps["ep0"]) == 1


def test_unparsable_critic_answers_give_zero_reward_and_are_counted():
    critic = FakeCritic(goal=3, unparsable_progress_calls=(2,), unparsable_done_calls=(1,))
    rig = _rig(goal=3, critic=critic)
    result = rig.loop.run_episode()
    ep = result.episode
    assert [t.progress_pct for t in ep.transitions] == [10.0, None, 10.0]
    assert [t.reward for t in ep.transitions] == pytest.approx([0.1, 0.0, 0.1])
    assert math.isnan(ep.transitions[0].done_prob) and not ep.transitions[0].done
    assert result.summary.unparsable_progress == 1 and result.summary.unparsable_done == 1
    assert ep.termination is Termination.DONE


def test_human_takeover_flags_steps_and_routes_to_demos_and_the_prefix_to_rollouts():
    teleop = DeltaAction(2, 0, 0, 0, 0, 5, 0)
    operator = ScriptedOperator(teleop_steps={1: teleop, 2: teleop})
    rig = _rig(goal=100, max_steps=4, operator=operator)
    ep = rig.loop.run_episode().episode
    assert [t.human for t in ep.transitions] == [False, True, True, False]
    human = ep.transitions[1].action
    assert human.delta == teleop and human.text == format_action(teleop)
    assert human.token_logprobs == () and math.isnan(human.value) and human.policy_version == rig.actor.policy_version
    assert rig.robot.executed == [DeltaAction(1, 0, 0, 0, 0, 0, 1), teleop, teleop, DeltaAction(1, 0, 0, 0, 0, 0, 1)]
    assert len(rig.actor.calls) == 2  # the actor is not asked while the operator drives
    # rewards keep coming from the critic during teleoperation: 2 units = 20 %
    assert [t.progress_pct for t in ep.transitions] == [10.0, 20.0, 20.0, 10.0]
    rollouts, demos = RolloutBuffer(), DemoBuffer()
    # the whole episode to the demo buffer; the policy's step before the takeover is a 1-step rollout
    assert route_episode(ep, rollouts, demos) is Route.GUIDED and [e.length for e in rollouts.episodes()] == [1]
    tracker = InterventionTracker(window=10)
    tracker.record(ep)
    tracker.record(rig.loop.run_episode().episode)  # the operator script is used up: autonomous
    assert tracker.step_rate == pytest.approx(2 / 8) and tracker.episode_rate == pytest.approx(0.5)


def test_operator_can_end_an_episode():
    rig = _rig(goal=100, operator=ScriptedOperator(end_at_step=2))
    ep = rig.loop.run_episode().episode
    assert ep.termination is Termination.OPERATOR and ep.length == 2 and bootstraps(ep.termination)


def test_stop_request_ends_with_shutdown_and_records():
    rig = _rig(goal=100)
    rig.loop.stop_event.set()
    ep = rig.loop.run_episode().episode
    assert ep.termination is Termination.SHUTDOWN and ep.length == 0
    assert rig.sink.events == [("begin", "ep0"), ("finish", "ep0", Termination.SHUTDOWN)]


def test_ctrl_c_records_the_episode_then_propagates():
    critic = FakeCritic(goal=100, fail_on_progress_call=3, error=KeyboardInterrupt)
    rig = _rig(goal=100, critic=critic)
    with pytest.raises(KeyboardInterrupt):
        rig.loop.run_episode()
    episode, _ = rig.sink.finished[0]
    assert episode.termination is Termination.SHUTDOWN and episode.length == 2


def test_action_age_is_tracked_from_the_observation_stamp():
    rig = _rig(goal=100, max_steps=3, overlap=False, max_action_age_s=0.2)
    summary = rig.loop.run_episode().summary
    # observation stamped, then the actor takes 0.25 s before the action is sent
    assert summary.action_ages_s == pytest.approx((0.25, 0.25, 0.25))
    assert summary.stale_actions == 3


def test_overlap_does_not_change_the_episode():
    a = _rig(goal=100, max_steps=5, overlap=True).loop.run_episode().episode
    b = _rig(goal=100, max_steps=5, overlap=False).loop.run_episode().episode
    assert [(t.action.delta, t.reward, t.done) for t in a.transitions] == [
        (t.action.delta, t.reward, t.done) for t in b.transitions
    ]


def _evaluate(loop, starts):
    return evaluation_result([trial_result(r) for r in run_in_parallel([loop], starts)])


def test_evaluation_success_rate_from_ground_truth():
    rig = _rig(goal=3, max_steps=2)
    starts = [StartState(f"s{p}", {"pos": p}) for p in (1, 0, 1, 0)]  # from 1 the goal is 2 steps away
    result = _evaluate(rig.loop, starts)
    assert result.success_rate == pytest.approx(0.5) and result.successes == 2
    assert [t.succeeded for t in result.trials] == [True, False, True, False]
    assert all(t.success_source == "ground_truth" for t in result.trials)
    assert all(greedy for _, greedy in rig.actor.calls)


def test_evaluation_without_ground_truth_uses_the_critic_and_skips_aborted_trials():
    rig = _rig(goal=3, max_steps=2, ground_truth=False, actor_fails=(1,))
    starts = [StartState(f"s{p}", {"pos": p}) for p in (0, 1, 0)]
    result = _evaluate(rig.loop, starts)
    assert result.aborted == 1 and result.counted == 2
    assert [t.success_source for t in result.trials] == ["critic_done"] * 3
    assert result.success_rate == pytest.approx(0.5)  # trial 2 reached done, trial 3 hit the step limit


def test_parallel_evaluation_runs_each_start_once_across_the_arms_and_returns_them_in_order():
    rigs = [_rig(goal=3, max_steps=2) for _ in range(2)]
    # Each arm's first reset waits for the other's: both arms hold a start before either can take them all.
    both_started = threading.Barrier(2, timeout=60)
    for rig in rigs:

        def reset_after_both(start, robot=rig.robot, reset=rig.robot.reset):
            if not robot.resets:  # this arm's first episode
                both_started.wait()
            return reset(start)

        rig.robot.reset = reset_after_both
    starts = [StartState(f"s{i}", {"pos": p}) for i, p in enumerate((1, 0, 1, 0, 1))]
    heard, done = [], []
    results = run_in_parallel(
        [r.loop for r in rigs], starts, on_result=lambda s, r: heard.append(s.state_id), on_arm_done=done.append
    )
    assert [r.start_state.state_id for r in results] == [f"pos-{p}" for p in (1, 0, 1, 0, 1)]
    assert [r.summary.succeeded for r in results] == [True, False, True, False, True]
    assert all(r.summary.evaluation and r.summary.greedy for r in results)
    assert sorted(heard) == [f"s{i}" for i in range(5)]
    assert sum(len(r.robot.resets) for r in rigs) == 5 and all(r.robot.resets for r in rigs)  # both arms worked
    assert sorted(map(id, done)) == sorted(id(r.loop) for r in rigs)  # each arm said when it had nothing left


def test_parallel_evaluation_raises_an_error_outside_the_episode():
    rig = _rig()
    with pytest.raises(KeyError):  # the fake robot's reset needs "pos": no episode to record, the caller hears
        run_in_parallel([rig.loop], [StartState("bad")])
    with pytest.raises(ValueError, match="starts"):
        run_in_parallel([rig.loop], [])


def test_parallel_evaluation_on_executors_keeps_each_arm_on_its_executors_thread():
    from concurrent.futures import ThreadPoolExecutor

    rigs = [_rig(goal=3, max_steps=2) for _ in range(2)]
    threads: dict[int, set[str]] = {0: set(), 1: set()}
    for k, rig in enumerate(rigs):

        def reset_on(start, k=k, reset=rig.robot.reset):
            threads[k].add(threading.current_thread().name)
            return reset(start)

        rig.robot.reset = reset_on
    executors = [ThreadPoolExecutor(1, thread_name_prefix=f"arm{k}") for k in range(2)]
    try:
        for _ in range(2):  # two evaluations: each arm's episodes stay on its one thread across them
            starts = [StartState(f"s{i}", {"pos": p}) for i, p in enumerate((1, 0, 1, 0))]
            results = run_in_parallel([r.loop for r in rigs], starts, executors=executors)
            assert [r.summary.succeeded for r in results] == [True, False, True, False]
    finally:
        for executor in executors:
            executor.shutdown()
    ran = [names for names in threads.values() if names]
    assert ran and all(
        len(names) == 1 and next(iter(names)).startswith(f"arm{k}") for k, names in threads.items() if names
    )
    with pytest.raises(ValueError, match="executors: 1 given for 2 loops"):
        run_in_parallel([r.loop for r in rigs], starts, executors=executors[:1])


def test_parallel_evaluation_starts_no_episode_once_stopped():
    rig = _rig(goal=3, max_steps=2)
    stop = threading.Event()
    stop.set()
    results = run_in_parallel([rig.loop], [StartState("s0", {"pos": 1})], stop=stop)
    assert results == [None] and not rig.robot.resets


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="max_steps: 0 is below the minimum 1"):
        LoopConfig(max_steps=0)
    with pytest.raises(ConfigError, match=r"done_threshold: 1\.5 is above the maximum 1\.0"):
        LoopConfig(done_threshold=1.5)
    with pytest.raises(ConfigError, match="done_confirm_steps: 0 is below the minimum 1"):
        LoopConfig(done_confirm_steps=0)


class _SlowActor(FakeActor):
    """Takes real time, and counts calls still running (the loop must not leave one behind)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.in_flight = 0

    def act(self, observation, greedy):
        self.in_flight += 1
        time.sleep(0.05)
        try:
            return super().act(observation, greedy)
        finally:
            self.in_flight -= 1


def test_an_overlapped_actor_call_is_finished_before_the_episode_is_returned():
    rig = _rig(goal=3, overlap=True)
    rig.loop.actor = actor = _SlowActor(rig.robot.clock)
    ep = rig.loop.run_episode().episode
    assert ep.termination is Termination.DONE
    assert len(actor.calls) == 4  # the 4th (for after done) was dropped, not executed ...
    assert actor.in_flight == 0  # ... and not left running into the next episode
    assert len(rig.robot.executed) == 3


# --- reward source: the critic or the simulator's ground truth ----------------------------------------


def test_ground_truth_is_recorded_beside_the_critic_when_the_critic_drives():
    rig = _rig(goal=3, truth_goal=4)  # the critic calls done one unit early
    episode = rig.loop.run_episode().episode
    assert episode.termination is Termination.DONE and episode.length == 3
    assert [t.reward for t in episode.transitions] == pytest.approx([0.1, 0.1, 0.1])  # the critic's
    assert [t.gt_progress for t in episode.transitions] == pytest.approx([0.25, 0.25, 0.25])
    assert [t.gt_done for t in episode.transitions] == [False, False, False]
    assert [t.gt_phase for t in episode.transitions] == ["far", "far", "far"]  # phase at the step's start
    assert [t.critic_done for t in episode.transitions] == [False, False, True] == [t.done for t in episode.transitions]


def test_sim_dense_pays_the_potential_change_and_ends_on_true_success_not_the_critics_done():
    rig = _rig(goal=3, truth_goal=5, reward_source="sim_dense")
    episode = rig.loop.run_episode().episode
    assert episode.termination is Termination.DONE and episode.length == 5 and episode.success
    assert [t.reward for t in episode.transitions] == pytest.approx([0.2] * 5)
    assert [t.done for t in episode.transitions] == [False] * 4 + [True]
    assert [t.critic_done for t in episode.transitions] == [False, False, True, True, True]  # recorded, not obeyed
    assert [t.progress_pct for t in episode.transitions] == pytest.approx([10.0] * 5)
    assert [t.gt_phase for t in episode.transitions] == ["far", "far", "far", "far", "near"]


def test_sim_sparse_pays_one_on_the_step_that_succeeds():
    rig = _rig(goal=3, truth_goal=4, reward_source="sim_sparse")
    episode = rig.loop.run_episode().episode
    assert [t.reward for t in episode.transitions] == [0.0, 0.0, 0.0, 1.0]
    assert episode.termination is Termination.DONE


def test_a_ground_truth_reward_source_is_refused_without_ground_truth_naming_the_key():
    with pytest.raises(ValueError, match=r"episode_manager\.reward_source='sim_dense'.*no ground truth"):
        _rig(ground_truth=False, reward_source="sim_dense")
    with pytest.raises(ConfigError, match="reward_source: 'oracle' is not one of"):
        LoopConfig(reward_source="oracle")


def test_without_ground_truth_steps_carry_none():
    episode = _rig(ground_truth=False).loop.run_episode().episode
    assert all(t.gt_progress is None and t.gt_done is None and t.gt_phase == "" for t in episode.transitions)
    assert not any(t.has_ground_truth for t in episode.transitions)
