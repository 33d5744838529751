"""Each rule of the critic's training data, pinned on a synthetic episode whose frames carry their index."""

from __future__ import annotations

import numpy as np
import pytest
from critic_data_testing import OTHER, TASK, frames_with_index, index_of

from vlac_core import prompts
from vlac_critic.parsing import parse_progress_pct
from vlac_trainer.offline.critic_data import (
    CriticDataError,
    CriticDataMix,
    CriticSampler,
    Trajectory,
    done_indices,
    done_pair,
    done_sample,
    format_progress_answer,
    in_context_sample,
    mini_group,
    pixel_difference_share,
    progress_label,
    progress_sample,
    task_description_sample,
)


@pytest.fixture
def traj() -> Trajectory:
    return Trajectory(TASK, frames_with_index(20), "synthetic")


def test_forward_label_is_dt_over_remaining_steps():
    assert progress_label(2, 5, 10) == pytest.approx(3 / 8)
    assert progress_label(0, 10, 10) == 1.0
    assert progress_label(9, 10, 10) == 1.0  # the last step finishes the task


def test_backward_pair_label_is_the_forward_label_negated():
    for a, b in [(2, 5), (0, 10), (4, 5), (0, 1)]:
        assert progress_label(b, a, 10) == -progress_label(a, b, 10)
    assert progress_label(7, 3, 10) == pytest.approx(-4 / 7)


def test_label_rejects_frames_outside_the_trajectory():
    with pytest.raises(CriticDataError, match=r"outside 0\.\.10"):
        progress_label(3, 11, 10)


def test_answer_is_whole_percent_and_parses_with_the_critic_parser():
    assert format_progress_answer(3 / 8) == "38"
    assert format_progress_answer(-4 / 7) == "-57"
    assert format_progress_answer(-0.001) == "0"  # never "-0"
    assert format_progress_answer(1.0) == "100"
    for label in np.linspace(-1, 1, 41):
        assert parse_progress_pct(format_progress_answer(float(label))) == round(label * 100)
    with pytest.raises(CriticDataError, match="outside"):
        format_progress_answer(1.2)


def test_mini_group_holds_the_pair_its_one_step_pairs_and_the_reverse(traj):
    group = mini_group(traj, 4, 6)
    pairs = [(index_of(s.images[0]), index_of(s.images[1])) for s in group]
    assert pairs == [(4, 10), (4, 5), (5, 4), (10, 4)]
    assert [s.answer for s in group] == ["38", "6", "-6", "-38"]  # 6/16, 1/16 of the remaining 16 steps
    assert all(s.content == prompts.pair_progress_prompt(TASK) for s in group)


def test_mini_group_of_a_backward_pair(traj):
    group = mini_group(traj, 10, -6)
    pairs = [(index_of(s.images[0]), index_of(s.images[1])) for s in group]
    assert pairs == [(10, 4), (10, 11), (11, 10), (4, 10)]
    assert [s.answer for s in group] == ["-38", "10", "-10", "38"]


def test_mini_group_needs_a_next_frame(traj):
    with pytest.raises(CriticDataError, match="mini-group"):
        mini_group(traj, 20, -3)
    with pytest.raises(CriticDataError, match="mini-group"):
        mini_group(traj, 3, 0)


def test_pixel_filter_sets_pairs_with_under_1_percent_changed_pixels_to_zero():
    frames = np.repeat(frames_with_index(10)[:, :1, :1], 20, axis=1).repeat(20, axis=2)  # 400 px frames
    frames[6] = frames[5]
    frames[6, 0, :3] += 100  # 3 of 400 pixels changed: 0.75 %
    frames[6, 1:] += 5  # every other pixel moved by 5 levels: noise, not change
    nearly = Trajectory(TASK, frames)
    assert pixel_difference_share(frames[5], frames[6]) == pytest.approx(0.0075)
    assert progress_sample(nearly, 5, 6).answer == "0"
    assert progress_sample(nearly, 6, 5).answer == "0"
    frames[6, 0, 3] += 100  # 4 of 400: 1 %, labelled
    assert progress_sample(Trajectory(TASK, frames), 5, 6).answer == "20"
    assert progress_sample(Trajectory(TASK, frames), 6, 5).answer == "-20"


def test_done_labels_are_0_before_80_percent_and_1_after_95_percent():
    negative, positive = done_indices(100)
    assert list(negative) == list(range(0, 80))
    assert list(positive) == list(range(96, 101))
    negative, positive = done_indices(20)
    assert max(negative) == 15 and list(positive) == [20]


def test_frames_between_80_and_95_percent_have_no_done_label(traj):
    assert done_sample(traj, 15).answer == "0"
    assert done_sample(traj, 20).answer == "1"
    for index in (16, 17, 18, 19):
        with pytest.raises(CriticDataError, match="no done label"):
            done_sample(traj, index)


def test_done_samples_come_in_balanced_pairs_from_one_trajectory(traj):
    rng = np.random.default_rng(0)
    for _ in range(50):
        incomplete, complete = done_pair(traj, rng)
        assert (incomplete.answer, complete.answer) == ("0", "1")
        assert index_of(incomplete.images[0]) < 16 and index_of(complete.images[0]) == 20
        assert incomplete.content == complete.content == prompts.done_prompt(TASK)


def test_task_description_uses_an_early_start_and_a_late_end_frame(traj):
    rng = np.random.default_rng(1)
    starts, ends = set(), set()
    for _ in range(200):
        sample = task_description_sample(traj, rng)
        assert sample.answer == TASK and sample.content == prompts.TASK_DESCRIPTION_PROMPT
        starts.add(index_of(sample.images[0]))
        ends.add(index_of(sample.images[1]))
    assert starts == set(range(0, 7))  # [0, 0.3 T]
    assert ends == set(range(16, 21))  # [0.8 T, T]


def test_in_context_sample_has_reference_frames_then_first_frame_then_the_pair(traj):
    reference = Trajectory(TASK, frames_with_index(10, offset=1), "reference")
    sample = in_context_sample(traj, reference, 3, 8, n_reference=6)
    assert sample.content == prompts.in_context_progress_prompt(TASK, 6)
    assert sample.content.count(prompts.IMAGE_PLACEHOLDER) == len(sample.images) == 9
    assert [index_of(im, 1) for im in sample.images[:6]] == prompts.select_reference_frames(11, 6)
    assert [index_of(im) for im in sample.images[6:]] == [0, 3, 8]
    assert sample.answer == format_progress_answer(progress_label(3, 8, 20))


def test_in_context_reference_must_be_the_same_task(traj):
    other = Trajectory(OTHER, frames_with_index(10), "other")
    with pytest.raises(CriticDataError, match="reference task"):
        in_context_sample(traj, other, 3, 8, n_reference=6)


def _progress_only(mismatch_prob: float) -> CriticDataMix:
    return CriticDataMix(
        progress_share=1.0,
        in_context_share=0.0,
        done_share=0.0,
        task_description_share=0.0,
        mismatch_prob=mismatch_prob,
    )


def test_mismatched_task_text_gets_label_zero():
    trajs = [Trajectory(TASK, frames_with_index(20)), Trajectory(OTHER, frames_with_index(20, offset=2))]
    sampler = CriticSampler(trajs, _progress_only(1.0), seed=3)
    for k in range(20):
        for sample in sampler.unit(k):
            own = TASK if int(sample.images[0][0, 0, 0]) % 10 == 0 else OTHER
            assert f"<task> {own} </task>" not in sample.content
            assert sample.answer == "0"


def test_mismatch_happens_about_five_percent_of_the_time():
    trajs = [Trajectory(TASK, frames_with_index(20)), Trajectory(OTHER, frames_with_index(20, offset=2))]
    sampler = CriticSampler(trajs, _progress_only(0.05), seed=4)
    samples = [s for k in range(1000) for s in sampler.unit(k)]
    swapped = sum(
        f"<task> {TASK if int(s.images[0][0, 0, 0]) % 10 == 0 else OTHER} </task>" not in s.content for s in samples
    )
    assert 0.035 < swapped / len(samples) < 0.065  # 4000 draws: +-3.5 sigma


def test_sampler_draws_all_distances_in_both_directions(traj):
    sampler = CriticSampler([traj], _progress_only(0.0), seed=5)
    distances = set()
    for k in range(3000):
        a, b = (index_of(im) for im in sampler.unit(k)[0].images)
        distances.add(b - a)
    assert distances == set(range(-19, 21)) - {0}


def test_sampler_mixes_all_kinds_and_is_a_pure_function_of_seed_and_unit(traj):
    reference = Trajectory(TASK, frames_with_index(12, offset=1), "reference")
    sampler = CriticSampler([traj, reference], seed=6)
    kinds = {s.kind for k in range(300) for s in sampler.unit(k)}
    assert kinds == {"progress", "in_context", "done", "task_description"}
    again = CriticSampler([traj, reference], seed=6)
    for k in (0, 17, 299):
        first, second = sampler.unit(k), again.unit(k)
        assert [(s.content, s.answer) for s in first] == [(s.content, s.answer) for s in second]
        assert all(
            np.array_equal(x, y)
            for s, t in zip(first, second, strict=True)
            for x, y in zip(s.images, t.images, strict=True)
        )
    other_seed = CriticSampler([traj, reference], seed=7)
    assert any(sampler.unit(k)[0].answer != other_seed.unit(k)[0].answer for k in range(20))


def test_bad_trajectories_are_refused_with_the_reason():
    with pytest.raises(CriticDataError, match="empty task"):
        Trajectory(" ", frames_with_index(5))
    with pytest.raises(CriticDataError, match="uint8"):
        Trajectory(TASK, frames_with_index(5).astype(np.float32))
    with pytest.raises(CriticDataError, match="at least 3 frames"):
        Trajectory(TASK, frames_with_index(1))
    with pytest.raises(CriticDataError, match="no trajectories"):
        CriticSampler([])
