"""The embedded session's schedule, on its own: claims, counts, and when evaluations are due."""

from __future__ import annotations

import pytest

from vlac.session.schedule import EpisodeSchedule


def test_arms_claim_exactly_the_sessions_total_and_a_resume_only_what_is_missing():
    fresh = EpisodeSchedule(3, 0)
    assert [fresh.claim() for _ in range(4)] == [True, True, True, False]
    resumed = EpisodeSchedule(5, 0, finished=3)
    assert [resumed.claim() for _ in range(3)] == [True, True, False]


def test_an_episode_stopped_by_ctrl_c_is_not_counted():
    schedule = EpisodeSchedule(5, 2)
    assert schedule.claim() and schedule.claim()
    assert schedule.finish(counted=True) == 1
    assert schedule.finish(counted=False) == 1
    assert not schedule.eval_due()  # the mark at 2 is not reached by an episode that does not count


def test_periodic_evaluations_fall_due_once_per_mark_and_passed_marks_fold_into_one():
    schedule = EpisodeSchedule(20, 5)
    due = []
    for _ in range(6):
        schedule.finish(counted=True)
        due.append(schedule.eval_due())
    assert due == [False, False, False, False, True, False]
    for _ in range(6):  # 12 counted: the marks at 10 passed meanwhile, one evaluation
        schedule.finish(counted=True)
    assert schedule.eval_due() and not schedule.eval_due()
    assert schedule.next_eval_at == 15
    assert not any(EpisodeSchedule(9, 0, finished=n).eval_due() for n in range(9))  # 0: none scheduled


@pytest.mark.parametrize(
    ("finished", "evaluated", "due"),
    [
        (0, [], 5),  # fresh: the first mark
        (7, [0, 5], 10),  # the evaluation at 5 is on record
        (7, [0], 5),  # the one at 5 was lost to a Ctrl-C: due at once
        (10, [0, 5, 10], 15),
        (4, [0], 5),
    ],
)
def test_periodic_evaluations_resume_on_schedule_and_a_lost_one_runs_at_once(finished, evaluated, due):
    schedule = EpisodeSchedule(20, 5, finished=finished, evaluated_after=evaluated)
    assert schedule.next_eval_at == due
    assert schedule.eval_due() is (finished >= due)


def test_the_final_evaluation_is_skipped_only_when_the_last_one_scored_the_same_point():
    schedule = EpisodeSchedule(10, 5, finished=10)
    assert schedule.final_eval_due(None, 3)
    assert not schedule.final_eval_due({"after_episodes": 10, "policy_version": 3}, 3)
    assert schedule.final_eval_due({"after_episodes": 10, "policy_version": 2}, 3)  # the trainer moved on
    assert schedule.final_eval_due({"after_episodes": 5, "policy_version": 3}, 3)


def test_negative_counts_are_refused_with_their_names():
    with pytest.raises(ValueError, match="episodes=-1"):
        EpisodeSchedule(-1, 0)
    with pytest.raises(ValueError, match="eval_every=-2"):
        EpisodeSchedule(3, -2)
