"""bench/prior_phases.py: per-phase counts of what a policy did with the bowl, from recorded ground truth."""

from __future__ import annotations

from types import SimpleNamespace as Ns

import numpy as np
import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def phases():
    yield from load_bench("prior_phases")


def _record(phase, opens, success_at=None):
    """An episode of len(phase) - 1 steps: step t acts in phase[t] and opens when opens[t]."""
    steps = len(phase) - 1
    actions = np.zeros((steps, 7), np.int32)
    actions[:, 6] = opens
    success = np.zeros(steps + 1, bool)
    if success_at is not None:
        success[success_at:] = True
    return Ns(task="pick_bowl", seed=0, variant="policy", meta={"phase": phase}, length=steps, actions=actions,
              success_steps=success)  # fmt: skip


def test_phase_stats_count_releases_drops_and_reached_phases(phases):
    placed = _record(["reach", "carry", "carry", "release", "release", "done"], [1, 0, 1, 0, 1], success_at=5)
    hovering = _record(["reach", "carry", "release", "release", "release"], [0, 0, 0, 0])
    never = _record(["reach", "reach", "reach"], [1, 1])
    stats = phases.phase_stats([placed, hovering, never])
    assert stats == {
        "episodes": 3,
        "success": 1,
        "grasped": 2,
        "over_plate": 2,
        "carry_steps": 3,
        "release_steps": 4,
        "open_over_plate": 0.25,  # 1 of 4 (a last frame is not a step); the reach's opens are not counted
        "open_mid_carry": round(1 / 3, 4),
        "drop_episodes": 1,
    }


def test_a_folder_without_ground_truth_is_refused(phases, tmp_path, capsys):
    with pytest.raises(ValueError, match="no ground-truth phases"):
        phases.phase_stats([Ns(task="pick_bowl", seed=3, variant="expert", meta={})])
    assert phases.main([str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
