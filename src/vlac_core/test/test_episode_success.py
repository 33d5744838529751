"""``Episode.succeeded``: the one success rule (ground truth where a simulator gave it, else the critic's done)."""

from __future__ import annotations

import pytest

from vlac_core.types import Episode, Termination


def _episode(termination: Termination | None, success: bool | None = None) -> Episode:
    return Episode("ep", "arm_0", "sweep", termination=termination, success=success)


def test_ground_truth_wins_over_the_termination():
    assert _episode(Termination.STEP_LIMIT, success=True).succeeded
    assert not _episode(Termination.DONE, success=False).succeeded


@pytest.mark.parametrize("termination", [*Termination, None])
def test_without_ground_truth_only_the_critics_done_is_success(termination):
    assert _episode(termination).succeeded is (termination is Termination.DONE)


@pytest.mark.parametrize("success", [True, False])
def test_a_helped_episode_is_never_the_policys_success(success):
    from dataclasses import replace

    from sample_episodes import transition

    alone = Episode("ep", "arm_0", "sweep", transitions=[transition(2), transition(3)], success=success)
    assert alone.human_steps == 0 and alone.policy_succeeded is success
    helped = replace(alone, transitions=[transition(0), *alone.transitions])  # step 0 is a person's
    assert helped.human_steps == 1 and helped.succeeded is success and helped.policy_succeeded is False
