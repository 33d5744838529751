"""bench/group_stats.py: the groups' outcomes, the unweighted push of a mixed group, and the update figures."""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def gs():
    yield from load_bench("group_stats")


def _episode(start: str, success: bool, ret: float, length: int, phase: str = "train") -> dict:
    termination = "done" if success else "step_limit"
    return {
        "phase": phase,
        "termination": termination,
        "start_state_id": start,
        "success": success,
        "episode_return": ret,
        "length": length,
    }


def test_groups_are_runs_of_one_start_and_a_mixed_groups_unweighted_push_leans_to_the_long_failures(gs):
    rows = [
        *[_episode("s1", True, 1.0, 30) for _ in range(3)],
        _episode("s1", False, 0.0, 60),  # LOO: +1/3 x 30 three times, -1 x 60 -> push -30
        *[_episode("s2", True, 0.9, 20) for _ in range(2)],
        *[_episode("s3", False, 0.1, 60) for _ in range(2)],
        _episode("s4", True, 1.0, 25),  # alone
    ]
    figures = gs.group_figures(rows)
    assert {k: figures[k] for k in ("mixed", "all_succeeded", "all_failed", "alone")} == {
        "mixed": 1,
        "all_succeeded": 1,
        "all_failed": 1,
        "alone": 1,
    }
    assert figures["median_unweighted_push_mixed"] == pytest.approx(-30.0)


def test_updates_with_only_float_noise_in_their_advantages_count_as_silent(gs):
    updates = [
        {"warmup": True, "approx_kl": 9.0, "clipfrac": 0.0, "adv_std": 1.0, "adv_mean": 5.0},  # not PPO: left out
        {"warmup": False, "approx_kl": 0.04, "clipfrac": 0.3, "adv_std": 0.5, "adv_mean": -0.2},
        {"warmup": False, "approx_kl": 0.02, "clipfrac": 0.1, "adv_std": 0.4, "adv_mean": 0.0},
        {"warmup": False, "approx_kl": 0.001, "clipfrac": 0.2, "adv_std": 3e-9, "adv_mean": 1e-9},
    ]
    figures = gs.update_figures(updates)
    assert (figures["updates"], figures["updates_with_signal"], figures["updates_all_zero"]) == (3, 2, 1)
    assert figures["median_adv_mean_with_signal"] == pytest.approx(-0.1)
    assert (figures["max_kl"], figures["median_kl_all_zero"]) == (0.04, 0.001)
    assert figures["kl_vs_adv_std_spearman_with_signal"] is None  # two updates with signal: too few to rank
    assert figures["median_grad_norm"] is None  # updates logged before the clip's stats


def test_the_gradient_figures_are_medians_over_the_ppo_updates(gs):
    updates = [
        {"warmup": False, "approx_kl": 0.04, "adv_std": 0.1, "adv_mean": 0.0, "grad_norm": 20.0},
        {"warmup": False, "approx_kl": 0.02, "adv_std": 0.3, "adv_mean": 0.0, "grad_norm": 4.0},
        {"warmup": False, "approx_kl": 0.01, "adv_std": 0.5, "adv_mean": 0.0, "grad_norm": 2.0},
        {"warmup": False, "approx_kl": 0.0, "adv_std": 0.0, "adv_mean": 0.0, "grad_norm": 1.0},  # silent: not ranked
    ]
    for u, share in zip(updates, (1.0, 0.5, 0.0, 0.0), strict=True):
        u["grad_clipped_share"] = share
    figures = gs.update_figures(updates)
    assert (figures["median_grad_norm"], figures["median_grad_clipped_share"]) == (3.0, 0.25)
    assert figures["kl_vs_adv_std_spearman_with_signal"] == pytest.approx(-1.0)  # KL falls as the spread grows


def test_a_run_folder_is_read_and_evaluations_do_not_count(gs, tmp_path, capsys):
    rows = [_episode("e", True, 1.0, 30, phase="eval"), _episode("s1", True, 1.0, 30), _episode("s1", False, 0.0, 60)]
    (tmp_path / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "trainer").mkdir()
    update = {"warmup": False, "approx_kl": 0.03, "clipfrac": 0.2, "adv_std": 1.0, "adv_mean": -0.3}
    (tmp_path / "trainer" / "updates.jsonl").write_text(json.dumps(update) + "\n")
    gs.main([str(tmp_path)])
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])[str(tmp_path)]
    assert figures["training_episodes"] == 2 and figures["successes_per_40"] == [1]
    assert (figures["median_length_success"], figures["median_length_failure"]) == (30, 60)
    assert figures["mixed"] == 1 and figures["updates_with_signal"] == 1


def test_a_run_without_verdicts_is_refused_by_name(gs, tmp_path):
    (tmp_path / "episodes.jsonl").write_text(json.dumps(_episode("e", True, 1.0, 30, phase="eval")) + "\n")
    with pytest.raises(SystemExit, match="has no training episode with a ground-truth verdict"):
        gs.run_figures(tmp_path)
