"""The leave-one-out group baseline and its per-phase form, against values worked out by hand."""

from __future__ import annotations

import pytest

from vlac_trainer.online.group_baseline import (
    leave_one_out_advantages,
    length_balanced,
    phase_matched_advantages,
    phase_visits,
)


def test_each_return_is_compared_with_the_mean_of_the_others_in_its_group():
    # group a: returns 1, 0, 0.5 -> 1 - 0.25, 0 - 0.75, 0.5 - 0.5; group b: 0.2, 0.6 -> -0.4, +0.4
    advantages = leave_one_out_advantages(["a", "b", "a", "a", "b"], [1.0, 0.2, 0.0, 0.5, 0.6])
    assert advantages == pytest.approx([0.75, -0.4, -0.75, 0.0, 0.4])


def test_a_group_that_did_alike_teaches_nothing_and_an_episode_alone_has_no_baseline():
    # Exactly zero, not float noise: summed, four returns of 0.7 leave 1.1e-16, a gradient Adam would follow.
    assert leave_one_out_advantages(["a"] * 4, [0.7] * 4) == [0.0] * 4
    # Two successes reach the same potential by different steps: their summed returns differ in the last bit.
    tied = [sum([0.1] * 10), 1.0, sum([0.25, 0.5, 0.25]), sum([0.3, 0.3, 0.4])]
    assert len(set(tied)) > 1 and leave_one_out_advantages(["a"] * 4, tied) == [0.0] * 4
    near = leave_one_out_advantages(["a"] * 2, [1.0, 1.0 - 1e-6])  # a difference far above float noise: not a tie
    assert near == pytest.approx([1e-6, -1e-6], abs=1e-12)
    assert leave_one_out_advantages(["a", "b", "a"], [1.0, 0.3, 0.0]) == [1.0, None, -1.0]


def test_keys_and_returns_must_pair_up():
    with pytest.raises(ValueError, match="2 group keys for 3 returns"):
        leave_one_out_advantages(["a", "b"], [1.0, 0.0, 0.5])


def test_length_balancing_makes_every_episode_push_alike_and_a_groups_push_sum_to_zero():
    # a 30-step success (+0.75) and two 60-step failures (-0.375 each), LOO within one group; mean length 50
    per_step = length_balanced([0.75, -0.375, -0.375], [30, 60, 60])
    assert per_step == pytest.approx([0.75 * 50 / 30, -0.375 * 50 / 60, -0.375 * 50 / 60])
    pushes = [a * n for a, n in zip(per_step, [30, 60, 60], strict=True)]  # the sum over an episode's steps
    assert pushes == pytest.approx([0.75 * 50, -0.375 * 50, -0.375 * 50]) and sum(pushes) == pytest.approx(0.0)
    # unweighted, the same group leans negative: 0.75 x 30 - 2 x 0.375 x 60 = -22.5
    assert length_balanced([], []) == []


def test_length_balancing_refuses_lengths_it_cannot_weigh_by():
    with pytest.raises(ValueError, match="2 advantages for 1 episode lengths"):
        length_balanced([1.0, -1.0], [3])
    with pytest.raises(ValueError, match=r"lengths must be >= 1 step, got \[3, 0\]"):
        length_balanced([1.0, -1.0], [3, 0])


def test_phase_visits_are_the_runs_of_one_phase():
    assert phase_visits(["reach", "reach", "carry", "reach", "carry"]) == [
        ("reach", 0),
        ("carry", 2),
        ("reach", 3),
        ("carry", 4),
    ]


def test_each_phase_visit_is_judged_against_the_others_from_where_they_reached_that_phase():
    # One group: a success, a grasp that hovered, a miss. Returns to go (suffix sums of the rewards):
    #   success [1.0, 0.8, 0.6, 0.3]   phases reach reach carry release
    #   hover   [0.5, 0.2, 0.1, 0.0]   phases reach carry carry carry
    #   miss    [0.1, 0.0, 0.0, 0.0]   phases reach x 4
    # First entries: success {reach 1.0, carry 0.6, release 0.3}, hover {reach 0.5, carry 0.2}, miss {reach 0.1}.
    rewards = [[0.2, 0.2, 0.3, 0.3], [0.3, 0.1, 0.1, 0.0], [0.1, 0.0, 0.0, 0.0]]
    phases = [["reach", "reach", "carry", "release"], ["reach", "carry", "carry", "carry"], ["reach"] * 4]
    success, hover, miss = phase_matched_advantages(["a"] * 3, rewards, phases)
    # success: reach 1.0 - (0.5 + 0.1)/2; carry 0.6 - 0.2 (the hover alone got there); release reached by no other:
    # it keeps the carry visit's advantage
    assert success == pytest.approx([0.7, 0.7, 0.4, 0.4])
    # hover: its reach steps as gg would judge them (0.5 - 0.55), its carry steps against the success's carry (-0.4)
    assert hover == pytest.approx([-0.05, -0.4, -0.4, -0.4])
    assert miss == pytest.approx([-0.65] * 4)
    # the first visit (the shared start's phase) is gg's leave-one-out advantage of the whole return
    assert [success[0], hover[0], miss[0]] == pytest.approx(leave_one_out_advantages(["a"] * 3, [1.0, 0.5, 0.1]))


def test_a_revisited_phase_is_judged_from_its_latest_entry_and_an_episode_alone_has_no_baseline():
    # back: reach, carry (dropped), reach again, carry; returns to go [0.5, 0.2, 0.4, 0.1]; stay: [0.2, 0.2]
    rewards = [[0.3, -0.2, 0.3, 0.1], [0.0, 0.2], [0.5]]
    phases = [["reach", "carry", "reach", "carry"], ["reach", "reach"], ["reach"]]
    back, stay, alone = phase_matched_advantages(["b", "b", "c"], rewards, phases)
    # back: reach 0.5 - 0.2; carry (no other got there) keeps 0.3; reach again 0.4 - 0.2; carry again keeps 0.2
    assert back == pytest.approx([0.3, 0.3, 0.2, 0.2])
    assert stay == pytest.approx([-0.3, -0.3]) and alone is None


def test_a_phase_matched_tie_is_exactly_zero():
    tied = [[0.1] * 10, [1.0] + [0.0] * 9]  # both reach 1.0, by different sums (1.0 - 1e-16 and 1.0)
    assert sum(tied[0]) != sum(tied[1])
    assert phase_matched_advantages(["a", "a"], tied, [["reach"] * 10] * 2) == [[0.0] * 10, [0.0] * 10]


def test_phase_matched_advantages_refuse_what_they_cannot_compare():
    with pytest.raises(ValueError, match="2 group keys, 1 reward lists, 2 phase lists"):
        phase_matched_advantages(["a", "a"], [[0.1]], [["reach"], ["reach"]])
    with pytest.raises(ValueError, match="episode 1 has 2 rewards and 1 phases"):
        phase_matched_advantages(["a", "a"], [[0.1], [0.1, 0.2]], [["reach"], ["reach"]])
    with pytest.raises(ValueError, match="episode 0 step 1 has no phase"):
        phase_matched_advantages(["a", "a"], [[0.1, 0.2], [0.1]], [["reach", ""], ["reach"]])
    with pytest.raises(ValueError, match="group 'a': episode 0 starts in phase 'carry', which no other episode"):
        phase_matched_advantages(["a", "a"], [[0.1], [0.1]], [["carry"], ["reach"]])
