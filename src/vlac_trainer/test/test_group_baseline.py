"""The leave-one-out group baseline, against values worked out by hand."""

from __future__ import annotations

import pytest

from vlac_trainer.online.group_baseline import leave_one_out_advantages


def test_each_return_is_compared_with_the_mean_of_the_others_in_its_group():
    # group a: returns 1, 0, 0.5 -> 1 - 0.25, 0 - 0.75, 0.5 - 0.5; group b: 0.2, 0.6 -> -0.4, +0.4
    advantages = leave_one_out_advantages(["a", "b", "a", "a", "b"], [1.0, 0.2, 0.0, 0.5, 0.6])
    assert advantages == pytest.approx([0.75, -0.4, -0.75, 0.0, 0.4])


def test_a_group_that_did_alike_teaches_nothing_and_an_episode_alone_has_no_baseline():
    assert leave_one_out_advantages(["a"] * 4, [0.8] * 4) == pytest.approx([0.0] * 4)
    assert leave_one_out_advantages(["a", "b", "a"], [1.0, 0.3, 0.0]) == [1.0, None, -1.0]


def test_keys_and_returns_must_pair_up():
    with pytest.raises(ValueError, match="2 group keys for 3 returns"):
        leave_one_out_advantages(["a", "b"], [1.0, 0.0, 0.5])
