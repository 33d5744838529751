"""The leave-one-out group baseline, against values worked out by hand."""

from __future__ import annotations

import pytest

from vlac_trainer.online.group_baseline import leave_one_out_advantages, length_balanced


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
