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
