"""The pieces of the episode manager and the session without models: teleop mapping and operator,
observation assembly from topic values, the manager core, demo loading (the simulated arm: test_sim_arm.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from episode_fakes import FakeActor, FakeClock, FakeCritic, FakeRobot, RecordingSink

from piper_driver.ros_units import quaternion_from_rpy_deg
from piper_driver.sim.demo_format import save_episode_npz
from piper_driver.sim.rollout import EpisodeRecord
from vlac.episode.loop import EpisodeLoop, LoopConfig
from vlac.episode.manager import CancellableOperator, EpisodeGoal, EpisodeManager, FeedbackSink
from vlac.episode.observation_assembly import ObservationAssembler, ObservationUnavailable, rpy_deg_from_quaternion
from vlac.episode.return_explore import ReturnAndExploreStore
from vlac.episode.teleop import TeleopMapping, TeleopOperator
from vlac.session.demos import DemoLoadError, load_demos
from vlac_core.types import DeltaAction, Termination

# -- teleop --------------------------------------------------------------------------------------


def test_joy_axes_map_to_a_scaled_clipped_move_with_a_deadzone():
    m = TeleopMapping(max_mm=20, max_deg=10, deadzone=0.1)
    axes = [0.5, 1.0, 0.0, -1.0, -0.05, 0.0]  # axis 1 -> dx, 0 -> dy, 4 -> dz, 3 -> dyaw
    assert m.joy_delta(axes, open_=1) == DeltaAction(20, 10, 0, 0, 0, -10, 1)
    assert m.joy_delta([], open_=0) == DeltaAction(0, 0, 0, 0, 0, 0, 0)  # missing axes count as 0


def test_twist_maps_metres_and_radians_per_second_to_a_bounded_step():
    m = TeleopMapping(max_mm=20, max_deg=10)
    assert m.twist_delta((0.5, -3.0, 0.0), (0.0, 0.0, 0.25), open_=1) == DeltaAction(10, -20, 0, 0, 0, 2, 1)
    with pytest.raises(ValueError, match="3 linear and 3 angular"):
        m.twist_delta((0.1,), (0.0, 0.0, 0.0), 1)


def test_operator_takes_over_on_a_button_press_and_holds_still_on_stale_input():
    clock = FakeClock()
    op = TeleopOperator(TeleopMapping(takeover_button=4, gripper_button=0, end_button=1), timeout_s=0.5, clock=clock)
    obs = None
    assert op.teleop_action("arm_0", obs) is None  # no takeover: the policy acts
    op.on_joy("arm_0", [0.0, 1.0], [0, 0, 0, 0, 1])  # press takeover, left stick forward
    assert op.teleop_action("arm_0", obs) == DeltaAction(20, 0, 0, 0, 0, 0, 1)
    op.on_joy("arm_0", [0.0, 1.0], [1, 0, 0, 0, 1])  # takeover still held (no new edge); gripper pressed
    assert op.taken_over("arm_0") and op.teleop_action("arm_0", obs).open == 0
    clock.advance(1.0)
    assert op.teleop_action("arm_0", obs) == DeltaAction(0, 0, 0, 0, 0, 0, 0)  # stale: hold
    op.on_joy("arm_0", [], [0, 1, 0, 0, 0])  # end pressed
    assert op.end_requested("arm_0") and not op.end_requested("arm_0")  # once


# -- observation assembly ------------------------------------------------------------------------


@pytest.mark.parametrize("rpy", [(170.0, 5.0, -90.0), (-30.0, 45.0, 120.0), (0.0, 0.0, 0.0)])
def test_rpy_from_quaternion_inverts_the_drivers_quaternion(rpy):
    assert rpy_deg_from_quaternion(*quaternion_from_rpy_deg(*rpy)) == pytest.approx(rpy, abs=1e-6)


def test_assembler_builds_an_observation_and_refuses_missing_or_old_images():
    a = ObservationAssembler("arm_0", "pick up the bowl", max_image_age_s=0.5)
    with pytest.raises(ObservationUnavailable, match="front image, end pose, joint state"):
        a.observation(now_s=10.0)
    a.on_image(np.zeros((8, 8, 3), np.uint8), stamp_s=9.8)
    a.on_pose((0.25, -0.02, 0.18), quaternion_from_rpy_deg(170.0, 5.0, -90.0))
    a.on_joints([f"joint{i}" for i in range(1, 7)] + ["gripper"], [0.1] * 6 + [0.06])
    obs = a.observation(now_s=10.0)
    assert obs.end_pose.x_mm == pytest.approx(250.0) and obs.gripper_mm == pytest.approx(60.0) and obs.gripper_open
    assert obs.stamp_s == 9.8 and obs.seq == 1
    with pytest.raises(ObservationUnavailable, match=r"0\.70 s old"):
        a.observation(now_s=10.5)
    a.on_status_value("ground_truth_success", "true")
    assert a.ground_truth_success is True


# -- the manager core ----------------------------------------------------------------------------


def manager(sink, send=None, revisit_prob=0.0):
    clock = FakeClock()
    operator = CancellableOperator()
    config = LoopConfig(max_steps=5)
    loop = EpisodeLoop(FakeRobot(clock), FakeActor(clock), FakeCritic(), sink, config, operator, clock=clock)
    return EpisodeManager(loop, operator, return_explore=ReturnAndExploreStore(revisit_prob), send=send)


def test_manager_reports_each_recorded_step_and_sends_training_episodes():
    steps, sent = [], []
    m = manager(FeedbackSink(RecordingSink(), steps.append), send=sent.append)
    result = m.run(EpisodeGoal())
    assert result.episode.termination is Termination.DONE and [s.step for s in steps] == [1, 2, 3]
    assert steps[0].value_pct == pytest.approx(10.0) and steps[1].value_pct == pytest.approx(19.0)  # release curve
    assert sent == [result.episode] and m.success_rate() == 1.0


def test_evaluation_goals_are_not_sent_and_max_steps_overrides_the_limit():
    sent = []
    m = manager(FeedbackSink(RecordingSink(), lambda _s: None), send=sent.append)
    result = m.run(EpisodeGoal(max_steps=2, evaluation=True))
    assert result.episode.termination is Termination.STEP_LIMIT and result.episode.length == 2
    assert sent == [] and m.success_rate() is None
    assert m.run(EpisodeGoal()).episode.length == 3  # the configured limit is back


def test_cancel_ends_the_running_episode_at_its_next_step_as_operator():
    m = manager(None)
    m.loop.sink = FeedbackSink(RecordingSink(), lambda s: m.cancel() if s.step == 1 else None)
    result = m.run(EpisodeGoal())
    # The loop chooses step 2 before step 1 is scored and reported, so step 2 still runs; step 3 does not.
    assert result.episode.termination is Termination.OPERATOR and result.episode.length == 2


def test_a_failed_start_state_comes_back_through_the_store():
    m = manager(FeedbackSink(RecordingSink(), lambda _s: None), revisit_prob=1.0)
    m.loop.config = m._base_config = LoopConfig(max_steps=1)  # too short to succeed: a failure
    first = m.run(EpisodeGoal())
    assert not first.episode.success
    assert m.start_state(EpisodeGoal()).state_id == first.start_state.state_id


# -- demos ---------------------------------------------------------------------------------------


def record(success: bool, steps: int = 3) -> EpisodeRecord:
    rng = np.random.default_rng(0)
    return EpisodeRecord(
        task="pick_bowl",
        text="Pick up the bowl and put it on the plate",
        seed=0,
        variant="expert",
        front_images=rng.integers(0, 256, (steps + 1, 16, 16, 3), dtype=np.uint8),
        wrist_images=None,
        end_poses=np.tile([250.0, 0.0, 200.0, 180.0, 0.0, 0.0], (steps + 1, 1)),
        gripper_mm=np.full(steps + 1, 70.0),
        joints_rad=np.zeros((steps + 1, 6)),
        stamps_s=np.arange(steps + 1) * 0.2,
        actions=np.tile([5, 0, -5, 0, 0, 0, 1], (steps, 1)).astype(np.int32),
        success=success,
        success_steps=np.array([False] * steps + [success]),
    )


def test_demos_load_from_npz_as_human_steps_and_failures_are_left_out(tmp_path):
    save_episode_npz(tmp_path / "npz" / "ok.npz", record(True))
    save_episode_npz(tmp_path / "npz" / "failed.npz", record(False))
    (demo,) = load_demos(tmp_path, max_episodes=10)
    assert demo.episode_id == "ok" and demo.length == 3 and demo.human_steps == 3
    assert all(t.human and not t.action.token_logprobs for t in demo.transitions)
    assert not math.isnan(demo.transitions[0].observation.end_pose.x_mm)


def test_a_demo_folder_without_demos_is_a_clear_error(tmp_path):
    with pytest.raises(DemoLoadError, match="no successful demonstration"):
        load_demos(tmp_path, max_episodes=10)


# -- reports -------------------------------------------------------------------------------------


def _row(phase: str, termination: str, succeeded: bool, robot: str = "arm_0") -> dict:
    return {
        "phase": phase,
        "termination": termination,
        "succeeded": succeeded,
        "robot_id": robot,
        "human_steps": 0,
        "length": 3,
        "unparsable_progress": 0,
        "unparsable_done": 0,
    }


def test_reports_count_ctrl_c_episodes_as_recorded_but_not_as_training_episodes():
    from vlac.session.report import rolling_success, summarize

    rows = [
        _row("train", "step_limit", False),
        _row("train", "shutdown", False),  # cut short by Ctrl-C; run again after resume
        _row("eval", "done", True),
        _row("train", "done", True),
        _row("train", "aborted", False),
    ]
    summary = summarize(rows, [])
    assert summary["training_episodes"] == 3
    assert summary["terminations"] == {"step_limit": 1, "shutdown": 1, "done": 1, "aborted": 1}
    assert summary["training_success_rate"] == 0.5  # 1 of the 2 that ran to their end without an error
    assert summary["per_arm"]["arm_0"]["episodes"] == 3
    assert rolling_success(rows, window=10) == [(1, 0.0), (2, 0.5)]


def test_reports_judge_the_whole_task_only_on_episodes_that_started_at_a_scene_start():
    from vlac.session.report import rolling_success, summarize

    from_frontier = {**_row("train", "done", True), "start_state_id": "pick_bowl-seed3/arm_0-1a2b/step17"}
    helped = {**_row("train", "done", True), "human_steps": 12}  # the operator finished it: the policy failed
    rows = [_row("train", "step_limit", False), from_frontier, _row("train", "done", True), helped]
    summary = summarize(rows, [])
    assert summary["training_episodes"] == 4 and summary["training_success_rate"] == pytest.approx(1 / 3)
    assert summary["per_arm"]["arm_0"] == {"episodes": 4, "successes": 1, "human_episodes": 1}
    assert rolling_success(rows, window=10) == [(1, 0.0), (3, 0.5), (4, pytest.approx(1 / 3))]


def test_episode_manager_config_names_the_reward_source_key_and_passes_it_to_the_loop():
    from vlac.param_file import EpisodeManagerConfig
    from vlac_core.config import ConfigError

    allowed = r"\['critic', 'sim_dense', 'sim_sparse'\]"
    with pytest.raises(ConfigError, match=rf"reward_source: 'oracle' is not one of {allowed}"):
        EpisodeManagerConfig(reward_source="oracle")
    assert EpisodeManagerConfig(reward_source="sim_dense").loop_config().reward_source == "sim_dense"


def test_the_loop_settings_are_declared_once_and_the_section_hands_them_to_the_loop():
    from vlac.param_file import EpisodeManagerConfig

    assert EpisodeManagerConfig().loop_config() == LoopConfig()  # the same declarations, the same defaults
    section = EpisodeManagerConfig(max_steps=7, done_threshold=0.8, done_confirm_steps=3, observe_delay_s=0.2)
    assert section.loop_config() == LoopConfig(
        max_steps=7, done_threshold=0.8, done_confirm_steps=3, observe_delay_s=0.2
    )
    assert section.loop_config(max_steps=2).max_steps == 2  # the evaluation arm's shorter episodes


def test_a_pinned_service_actor_asks_its_pinned_copy_while_other_actors_follow_new_versions():
    """The evaluation arm's actor pins one version; the training arms' actor on the same service is not held."""
    import contextlib
    from types import SimpleNamespace

    from vlac.session.adapters import ServiceActor

    def answer(version):
        return lambda observation, greedy: SimpleNamespace(ok=True, action=SimpleNamespace(policy_version=version))

    pinned = SimpleNamespace(version=1, act=answer(1))
    service = SimpleNamespace(pool=SimpleNamespace(versions=(1,)), act=answer(1))
    service.pinned_policy = lambda max_batch=None: contextlib.nullcontext(pinned)
    training, evaluation = ServiceActor(service), ServiceActor(service)
    with evaluation.pinned() as version:
        assert version == 1
        service.pool.versions, service.act = (2,), answer(2)  # a version announced mid-evaluation
        assert training.policy_version == 2 and training.act(None, greedy=False).policy_version == 2
        assert evaluation.policy_version == 1 and evaluation.act(None, greedy=True).policy_version == 1
    assert evaluation.policy_version == 2 and evaluation.act(None, greedy=True).policy_version == 2
