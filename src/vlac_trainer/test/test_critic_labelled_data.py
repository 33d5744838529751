"""Truth-labelled critic data (issue 11): policy rollouts and near-goal failures labelled by the simulator.

A synthetic 'hold over the plate' episode and a synthetic success pin the labels: progress from the
task-phase potential, done only on true success, hard negatives near the goal, and the recipe's own
draws left exactly as they were when the new kinds have no share.
"""

from __future__ import annotations

import numpy as np
import pytest
from critic_data_testing import OTHER, TASK, frames_with_index, index_of

from vlac_trainer.offline.critic_data import (
    SAMPLE_KINDS,
    CriticDataError,
    CriticDataMix,
    CriticSampler,
    LabelledTrajectory,
    Trajectory,
    labelled_done_sample,
    labelled_mini_group,
    potential_label,
)


def hold_episode() -> LabelledTrajectory:
    """Reach, carry to the plate, then hold it over the plate for 8 steps without releasing (never done)."""
    potential = [0.05, 0.15, 0.25, 0.45, 0.65, 0.75] + [0.75] * 8
    phase = ["reach"] * 3 + ["carry"] * 2 + ["release"] * 9
    n = len(potential)
    frames = frames_with_index(n - 1, offset=7)
    return LabelledTrajectory(TASK, frames, np.array(potential), np.zeros(n, bool), tuple(phase), "hold")


def success_episode() -> LabelledTrajectory:
    """Carry, release (placed), done, then moves after completion (still done)."""
    potential = [0.25, 0.5, 0.75, 0.85, 1.0, 1.0, 1.0]
    phase = ["carry", "carry", "release", "placed", "done", "done", "done"]
    success = np.array([False, False, False, False, True, True, True])
    return LabelledTrajectory(TASK, frames_with_index(6, offset=3), np.array(potential), success, tuple(phase), "ok")


def test_potential_label_is_the_share_of_the_remaining_way_and_antisymmetric():
    assert potential_label(0.5, 0.75) == pytest.approx(0.5)
    assert potential_label(0.85, 1.0) == pytest.approx(1.0)  # the release that completes the task
    assert potential_label(0.75, 0.5) == pytest.approx(-0.5)
    for a, b in [(0.1, 0.3), (0.75, 0.85), (0.0, 1.0)]:
        assert potential_label(b, a) == pytest.approx(-potential_label(a, b))


def test_holding_and_moving_after_completion_are_labelled_no_progress():
    assert potential_label(0.75, 0.75) == 0.0
    assert potential_label(1.0, 1.0) == 0.0
    traj = hold_episode()
    group = labelled_mini_group(traj, 8, 3)  # two frames of the hold
    assert [s.answer for s in group] == ["0", "0", "0", "0"]


def test_undoing_a_success_is_labelled_full_regress():
    assert potential_label(1.0, 0.25) == -1.0
    with pytest.raises(CriticDataError, match="outside"):
        potential_label(0.5, 1.2)


def test_labelled_mini_group_pairs_and_labels():
    traj = success_episode()
    group = labelled_mini_group(traj, 2, 2)  # (2, 4): release then rest on the plate
    assert [tuple(index_of(im, 3) for im in s.images) for s in group] == [(2, 4), (2, 3), (3, 2), (4, 2)]
    assert [s.answer for s in group] == ["100", "40", "-40", "-100"]


def test_done_labels_follow_true_success_and_skip_the_placed_phase():
    traj = success_episode()
    assert labelled_done_sample(traj, 5).answer == "1"
    assert labelled_done_sample(traj, 2).answer == "0"  # over the plate, still held
    with pytest.raises(CriticDataError, match="placed"):
        labelled_done_sample(traj, 3)
    negative, near, set_down, positive = traj.done_frames()
    assert 3 not in negative and positive == [4, 5, 6] and near == [0, 1, 2] and set_down == []


def set_down_episode() -> LabelledTrajectory:
    """Reach, carry, release, then the bowl left resting off the plate (phase reach again: a near miss)."""
    potential = [0.05, 0.15, 0.4, 0.6, 0.75, 0.3, 0.3, 0.3]
    phase = ["reach", "reach", "carry", "carry", "release", "reach", "reach", "reach"]
    n = len(potential)
    frames = frames_with_index(n - 1, offset=11)
    return LabelledTrajectory(TASK, frames, np.array(potential), np.zeros(n, bool), tuple(phase), "near_miss")


def test_set_down_frames_are_the_reach_frames_after_the_arm_moved_the_object():
    frames = set_down_episode().done_frames()
    assert frames.near == [2, 3, 4] and frames.set_down == [5, 6, 7]  # not the reach frames before the grasp
    assert hold_episode().done_frames().set_down == []  # never let go


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_set_down_negatives_are_drawn_at_their_share(prob):
    expert = Trajectory(TASK, frames_with_index(20, offset=5), "expert")
    mix = rollout_mix(rollout_done_share=1.0, near_goal_negative_prob=0.0, set_down_negative_prob=prob)
    sampler = CriticSampler([expert], mix, 0, (), [set_down_episode(), success_episode()])
    negatives = [sampler.unit(k)[0].images[0] for k in range(300)]
    # the near-miss episode's negatives (values 10 i + 11), the success's carry frames (10 i + 3) aside
    drawn = [index_of(image, 11) for image in negatives if image[0, 0, 0] % 10 == 1]
    assert len(drawn) > 50
    set_down_share = np.mean([i >= 5 for i in drawn])
    assert set_down_share == 1.0 if prob == 1.0 else 0.2 < set_down_share < 0.6  # 3 of its 8 negatives, uniformly


def test_a_set_down_share_outside_0_1_is_refused():
    with pytest.raises(CriticDataError, match="set_down_negative_prob must be in"):
        rollout_mix(rollout_done_share=1.0, set_down_negative_prob=1.5)


def test_labelled_trajectory_checks_its_truth_arrays():
    with pytest.raises(CriticDataError, match="potentials must lie"):
        LabelledTrajectory(TASK, frames_with_index(3), np.array([0, 0.5, 1.5, 1]), np.zeros(4, bool), ("r",) * 4)
    with pytest.raises(CriticDataError, match="for 4 frames"):
        LabelledTrajectory(TASK, frames_with_index(3), np.zeros(3), np.zeros(4, bool), ("r",) * 4)


def rollout_mix(**shares) -> CriticDataMix:
    values = {"progress_share": 0.0, "in_context_share": 0.0, "done_share": 0.0, "task_description_share": 0.0}
    return CriticDataMix(**{**values, "mismatch_prob": 0.0, **shares})


def test_rollout_done_units_pair_a_held_frame_with_a_true_success():
    expert = Trajectory(TASK, frames_with_index(20, offset=5), "expert")
    hold, ok = hold_episode(), success_episode()
    sampler = CriticSampler(
        [expert], rollout_mix(rollout_done_share=1.0, near_goal_negative_prob=1.0), 0, (), [hold, ok]
    )
    near_goal_negatives = 0
    for k in range(200):
        negative, positive = sampler.unit(k)
        assert (negative.answer, positive.answer) == ("0", "1")
        assert index_of(positive.images[0], 3) in (4, 5, 6)  # only the labelled success has done frames
        near_goal_negatives += negative.images[0][0, 0, 0] in {10 * i + 7 for i in range(5, 14)}
    assert near_goal_negatives > 50  # the hold's release-phase frames are drawn as hard negatives


def test_without_a_labelled_success_the_positive_comes_from_an_expert():
    expert = Trajectory(TASK, frames_with_index(20, offset=5), "expert")
    sampler = CriticSampler([expert], rollout_mix(rollout_done_share=1.0), 1, (), [hold_episode()])
    for k in range(30):
        _negative, positive = sampler.unit(k)
        assert positive.answer == "1" and index_of(positive.images[0], 5) > 19 * 0.95


def test_new_kinds_with_no_share_leave_the_recipe_draws_unchanged():
    expert = Trajectory(TASK, frames_with_index(20), "expert")
    other = Trajectory(OTHER, frames_with_index(15, offset=1), "other")
    plain = CriticSampler([expert, other], CriticDataMix(), seed=3)
    with_rollouts = CriticSampler([expert, other], CriticDataMix(), seed=3, labelled=[hold_episode()])
    for k in range(100):
        assert [(s.content, s.answer) for s in plain.unit(k)] == [(s.content, s.answer) for s in with_rollouts.unit(k)]
    assert SAMPLE_KINDS[:4] == ("progress", "in_context", "done", "task_description")


def test_rollout_units_are_drawn_with_their_share_and_get_mismatched_text():
    expert = Trajectory(TASK, frames_with_index(20), "expert")
    other = Trajectory(OTHER, frames_with_index(15, offset=1), "other")
    mix = CriticDataMix(rollout_progress_share=0.7, rollout_done_share=0.2, mismatch_prob=0.3)
    sampler = CriticSampler([expert, other], mix, seed=4, labelled=[hold_episode(), success_episode()])
    units = [sampler.unit(k) for k in range(400)]
    # the labelled episodes' frames end in 7 (hold) or 3 (success); the experts' in 0 or 1
    labelled = [u for u in units if all(int(s.images[0][0, 0, 0]) % 10 in (3, 7) for s in u)]
    assert 0.40 < len(labelled) / len(units) < 0.55  # weight 0.9 against the recipe's 1.0: 0.47

    mismatched = [s for u in units for s in u if s.kind == "progress" and OTHER in s.content and s.answer == "0"]
    assert mismatched  # another task's text: no progress, whatever the truth said


def test_rollout_shares_without_labelled_episodes_are_refused():
    expert = Trajectory(TASK, frames_with_index(20), "expert")
    with pytest.raises(CriticDataError, match="no labelled trajectories"):
        CriticSampler([expert], CriticDataMix(rollout_progress_share=0.5))
