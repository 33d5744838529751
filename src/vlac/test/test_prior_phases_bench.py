"""bench/prior_phases.py: per-phase counts of what a policy did with the bowl, from recorded ground truth."""

from __future__ import annotations

from types import SimpleNamespace as Ns

import numpy as np
import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def phases():
    yield from load_bench("prior_phases")


def _record(phase, opens, success_at=None, potential=None):
    """An episode of len(phase) - 1 steps: step t acts in phase[t] and opens when opens[t]."""
    steps = len(phase) - 1
    actions = np.zeros((steps, 7), np.int32)
    actions[:, 6] = opens
    success = np.zeros(steps + 1, bool)
    if success_at is not None:
        success[success_at:] = True
    meta = {"phase": phase, "potential": potential if potential is not None else [0.0] * len(phase)}
    return Ns(task="pick_bowl", seed=0, variant="policy", meta=meta, length=steps, actions=actions,
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
        "still_carry": 1.0,  # these actions move nothing
        "frozen_episodes": 0,  # under FROZEN_STEPS steps each
    }


def test_an_episode_that_ends_holding_still_in_carry_is_frozen_and_one_that_moves_is_not(phases):
    steps = phases.FROZEN_STEPS + 2
    frozen = _record(["reach"] + ["carry"] * steps, [0] * steps)
    frozen.actions[0, 2] = -25  # the approach moved; every carry step after it holds still
    moving = _record(["reach"] + ["carry"] * steps, [0] * steps)
    moving.actions[-1, 2] = 25  # lifts at its last step
    stats = phases.phase_stats([frozen, moving])
    assert stats["frozen_episodes"] == 1
    assert stats["carry_steps"] == 2 * (steps - 1)  # step 0 of each is the reach
    assert stats["still_carry"] == round((2 * steps - 3) / (2 * (steps - 1)), 4)  # all but the lift


def test_a_folder_without_ground_truth_is_refused(phases, tmp_path, capsys):
    with pytest.raises(ValueError, match="no ground-truth phases"):
        phases.phase_stats([Ns(task="pick_bowl", seed=3, variant="expert", meta={})])
    assert phases.main([str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_the_carry_potential_reads_back_as_the_bowls_distance_to_the_plate(phases):
    from piper_driver.sim.tasks.base import closeness
    from piper_driver.sim.tasks.pick_bowl import CARRY_BAND, CARRY_SCALE_M

    for distance_m in (0.04, 0.06, 0.2, 0.35):
        potential = CARRY_BAND[0] + (CARRY_BAND[1] - CARRY_BAND[0]) * closeness(distance_m, CARRY_SCALE_M)
        assert phases.carry_distance_mm(potential) == pytest.approx(1000 * distance_m)
    assert phases.carry_distance_mm(0.73) is None  # within the 35 mm success radius: height is paid there too


def test_first_opens_are_binned_by_distance_with_their_episodes_success(phases):
    at_mm = {40: 0.25 + 0.5 * (1 - 0.04 / 0.35), 60: 0.25 + 0.5 * (1 - 0.06 / 0.35), 100: 0.25 + 0.5 * (1 - 0.1 / 0.35)}
    centred = _record(["reach", "carry", "carry", "done"], [1, 0, 1], success_at=3, potential=[0.1, 0.6, 0.74, 1.0])
    beside = _record(["reach", "carry", "reach"], [0, 1], potential=[0.1, at_mm[40], 0.1])
    beside_lucky = _record(["carry", "carry", "done"], [1, 0], success_at=2, potential=[at_mm[60], at_mm[40], 1.0])
    far = _record(["carry", "release", "reach"], [0, 1], potential=[at_mm[100], 0.75, 0.1])  # release: centred
    wide = _record(["carry", "carry", "reach"], [0, 1], potential=[0.6, at_mm[100], 0.1])
    holds = _record(["reach", "carry", "carry"], [1, 0], potential=[0.1, 0.5, 0.5])  # the reach's open: not held
    untouched = _record(["reach", "reach"], [1], potential=[0.1, 0.1])
    first = phases.first_open_bins([centred, beside, beside_lucky, far, wide, holds, untouched])
    assert first == {
        "bins": {
            "<= 35 mm": {"opens": 2, "succeeded": 1},
            "35-50 mm": {"opens": 1, "succeeded": 0},
            "50-70 mm": {"opens": 1, "succeeded": 1},
            "> 70 mm": {"opens": 1, "succeeded": 0},
        },
        "never_opened": 1,
    }


def _sweep_record(potential, tcp_z_mm, success_at=None):
    """A sweep episode of len(potential) - 1 steps, its TCP at ``tcp_z_mm`` per frame (top-down flange poses)."""
    from piper_driver.sim.model import TCP_OFFSET_M

    record = _record(["push"] * len(potential), [0] * (len(potential) - 1), success_at, potential)
    record.task = "sweep"
    record.end_poses = np.array([[300.0, 0.0, z + 1000 * TCP_OFFSET_M, 180.0, 0.0, 0.0] for z in tcp_z_mm])
    return record


def test_sweep_stats_say_how_the_failures_failed(phases):
    done = _sweep_record([0.3, 0.5, 1.0], [60, 12, 12], success_at=2)
    pushed_then_lost = _sweep_record([0.3, 0.4, 0.2], [60, 12, 80])  # rose 0.1, ended below its start
    hovered = _sweep_record([0.3, 0.32, 0.31], [60, 40, 40])  # never down to pushing height
    stats = phases.sweep_stats([done, pushed_then_lost, hovered])
    assert stats == {
        "episodes": 3,
        "success": 1,
        "first_success_step_median": 2.0,
        "failures": 2,
        "failures_pushed_on": 1,
        "failures_ended_below_start": 1,
        "failures_never_low": 1,
        "push_phase_share": 1.0,
    }
    with pytest.raises(ValueError, match="no ground-truth phases"):
        phases.sweep_stats([Ns(task="sweep", seed=3, variant="expert", meta={}, length=0)])
