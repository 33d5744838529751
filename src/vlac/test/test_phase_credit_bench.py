"""bench/phase_credit.py: gg's and group_phase's advantages side by side on hand-worked groups, and the per-step
rewards and phases read back from a real bag."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from actor_episodes import recorded_episode
from bench_scripts import load_bench

from vlac_core.bag import write_episode
from vlac_core.types import DeltaAction


@pytest.fixture(scope="module")
def pc():
    yield from load_bench("phase_credit")


def _group(pc):
    success = pc.RecordedEpisode((0.2, 0.2, 0.3, 0.3), ("reach", "reach", "carry", "release"), True)
    hover = pc.RecordedEpisode((0.3, 0.1, 0.1, 0.0), ("reach", "carry", "carry", "carry"), False)
    miss = pc.RecordedEpisode((0.0,) * 4, ("reach",) * 4, False)
    return [success, hover, miss, miss]


def test_the_hover_that_gg_rewards_for_beating_two_misses_is_told_off_for_its_carry(pc):
    # returns 1.0, 0.5, 0, 0: gg gives 0.833, 0.167, -0.5, -0.5 to every step. group_phase: the success's carry step
    # 0.6 - 0.2 (the hover's carry entry) = 0.4, its release (no other got there) keeps 0.4; the hover's carry steps
    # 0.2 - 0.6 = -0.4: the sign flips on those 3 of 16 steps, and 5 of 16 change by more than 0.05.
    tied = [pc.RecordedEpisode((0.1,), ("reach",), False)] * 2  # no signal under either rule: left out
    figures = pc.credit_figures([_group(pc), tied])
    assert (figures["groups"], figures["groups_with_signal"], figures["steps"]) == (2, 1, 16)
    assert figures["sign_flipped"] == pytest.approx(3 / 16) and figures["changed"] == pytest.approx(5 / 16)
    carry = figures["by_phase"]["carry"]
    assert carry["steps"] == 4
    assert carry["mean_gg"] == pytest.approx((5 / 6 + 3 / 6) / 4) and carry["mean_phase"] == pytest.approx(-0.2)
    assert carry["mean_abs_phase"] == pytest.approx(1.6 / 4)
    success = figures["by_outcome"]["success"]
    assert success["mean_gg"] == pytest.approx(5 / 6) and success["mean_phase"] == pytest.approx((5 / 3 + 0.8) / 4)
    assert pc.credit_figures([tied]) == {"groups": 1, "groups_with_signal": 0, "steps": 0}
    assert (figures["phase_only_groups"], figures["phase_only_mean_abs"]) == (0, None)


def test_two_successes_that_entered_the_release_at_different_potentials_differ_under_group_phase_alone(pc):
    # both reach the potential 1 (gg: a tie, zero); the first came into the release at 0.7, the second at 0.9:
    # returns to go from there 0.3 and 0.1, so group_phase gives their release steps +0.2 and -0.2
    early = pc.RecordedEpisode((0.3, 0.4, 0.3), ("reach", "carry", "release"), True)
    late = pc.RecordedEpisode((0.3, 0.6, 0.1), ("reach", "carry", "release"), True)
    figures = pc.credit_figures([[early, late]])
    assert figures["groups_with_signal"] == 1 and figures["phase_only_groups"] == 1
    assert figures["phase_only_mean_abs"] == pytest.approx((0.2 + 0.2) / 6)
    assert figures["by_phase"]["release"]["mean_abs_phase"] == pytest.approx(0.2)


def test_a_run_folders_groups_are_read_from_its_bags(pc, tmp_path, capsys):
    run = tmp_path / "ggph" / "seed0"
    rows = []
    for k, (rewards, phases, success) in enumerate(
        [((0.5, 0.5), ("reach", "carry"), True), ((0.2, 0.0), ("reach", "reach"), False)]
    ):
        episode = recorded_episode([DeltaAction(1, 0, 0, 0, 0, 0, 1)] * 2, [False] * 2, episode_id=f"e{k}")
        steps = [replace(t, reward=r, gt_phase=p) for t, r, p in zip(episode.transitions, rewards, phases, strict=True)]
        write_episode(
            run / "bags" / "train" / f"e{k}", replace(episode, transitions=steps, success=success), fsync=False
        )
        rows.append(
            {
                "episode_id": f"e{k}",
                "phase": "train",
                "termination": "step_limit",
                "start_state_id": "pick_bowl-seed0",
                "success": success,
                "episode_return": sum(rewards),
            }
        )
    (run / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    figures = pc.main([str(run), "--group-size", "2"])[str(run)]
    # gg: +0.8 / -0.8 on every step; group_phase: the same on the reach steps, e0's carry keeps +0.8: nothing changes
    assert figures["steps"] == 4 and figures["sign_flipped"] == 0.0 and figures["changed"] == 0.0
    assert figures["by_outcome"]["success"]["mean_phase"] == pytest.approx(0.8)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {str(run): figures}
    bare = recorded_episode([DeltaAction(1, 0, 0, 0, 0, 0, 1)], [False], episode_id="real")  # no gt_phase: a real arm
    write_episode(run / "bags" / "train" / "real", bare, fsync=False)
    with pytest.raises(ValueError, match="episode real has steps without the simulator's phase"):
        pc.recorded(run, "real")
