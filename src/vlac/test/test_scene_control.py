"""A run's training successes per block against the prior's expected ones on its scenes: the figures
(bench/rl_report.py's ``scene_control_figures``) and bench/scene_control.py, the command over any run."""

from __future__ import annotations

import json
import sys

import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def sc():
    yield from load_bench("scene_control")


@pytest.fixture(scope="module")
def rr(sc):
    """bench/rl_report.py, the figures' module, as scene_control imported it."""
    return sys.modules["rl_report"]


def _episode(seed: int, success: bool, **extra) -> dict:
    return {
        "phase": "train",
        "termination": "done" if success else "step_limit",
        "start_state_id": f"pick_bowl-seed{seed}",
        "success": success,
        **extra,
    }


def _evaluation(outcomes: list[tuple[int, bool]]) -> dict:
    rows = [{"task": "pick_bowl", "seed": seed, "success": won, "steps": 30, "error": ""} for seed, won in outcomes]
    return {"tasks": [{"task": "pick_bowl", "outcomes": rows}]}


def test_a_blocks_expectation_is_the_priors_rate_on_each_episodes_scene(rr):
    # scene 0: the prior wins 3 of 4 draws, scene 1: 1 of 4 (split over two evaluations), scene 2: never
    first = _evaluation([(0, True), (0, True), (0, True), (0, False), (1, True), (1, False)])
    prior = rr.prior_outcomes([first, _evaluation([(1, False)] * 2), _evaluation([(2, False)])])
    assert prior[("pick_bowl", 1)] == [True, False, False, False]
    train = [_episode(0, True), _episode(0, True), _episode(1, True), _episode(1, False), _episode(2, True)]
    figures = rr.scene_control_figures(train, prior, block=4)
    assert figures["blocks"][0] == {
        "episodes": 4,
        "scenes": [0, 1],
        "run_successes": 3,
        "prior_expected": 2.0,  # 0.75 + 0.75 + 0.25 + 0.25
        "difference": 1.0,
        "null_sd": 1.22,  # per scene (2 + 2^2 / 4) x 0.75 x 0.25 x 4/3 = 0.75, two scenes: sqrt(1.5)
    }
    assert figures["blocks"][1] == {
        "episodes": 1, "scenes": [2, 2], "run_successes": 1, "prior_expected": 0.0, "difference": 1.0, "null_sd": 0.0
    }  # fmt: skip
    assert (figures["run_successes"], figures["prior_expected"], figures["difference"]) == (4, 2.0, 2.0)
    assert figures["repeats"] == 1  # scene 2 has one draw


def test_the_priors_rolling_curve_stands_on_the_runs_episode_numbers(rr):
    # an aborted episode counts in the numbering but has no verdict; a window of 2 verdicts
    prior = {("pick_bowl", 0): [True, False], ("pick_bowl", 1): [True, True]}
    rows = [_episode(0, True), {**_episode(1, True), "termination": "aborted"}, _episode(1, False), _episode(0, True)]
    assert rr.training_outcomes(rows) == [(1, True), (3, False), (4, True)]
    rolling = rr.rolling_train_success([(1, 0.5), (3, 1.0), (4, 0.5)], window=2)
    assert rolling == [(3, 0.75), (4, 0.75)]
    assert rr.scene_control_figures(rows, prior)["prior_rolling"] == []  # fewer verdicts than a window of 20
    many = [_episode(1, True)] + [_episode(0, True)] * 20
    curve = rr.scene_control_figures(many, prior)["prior_rolling"]
    assert curve == [[20, 0.525], [21, 0.5]]  # (1 + 19 x 0.5) / 20, then 20 scene-0 episodes


def test_an_episode_a_person_helped_is_a_failure_of_the_policy(rr):
    figures = rr.scene_control_figures([_episode(0, True, human_steps=3)], {("pick_bowl", 0): [True, False]})
    assert figures["blocks"][0]["run_successes"] == 0 and figures["difference"] == -0.5


def test_the_null_spread_counts_the_runs_draws_and_the_controls(rr):
    # scene 0: 2 of 4 control draws (unbiased p(1-p) = 0.25 x 4/3), 4 run episodes: 4 x 1/3 + 16/4 x 1/3 = 8/3;
    # scene 1: always won, no spread; scene 2: one draw, nothing to estimate a spread from
    prior = {("pick_bowl", 0): [True, False, True, False], ("pick_bowl", 1): [True] * 4, ("pick_bowl", 2): [True]}
    scenes = [("pick_bowl", 0)] * 4 + [("pick_bowl", 1)] * 4 + [("pick_bowl", 2)]
    assert rr.null_sd(scenes, prior) == pytest.approx((8 / 3) ** 0.5)


def test_a_training_scene_the_evaluations_missed_is_named(rr):
    with pytest.raises(ValueError, match=r"1 training scene\(s\) not in the prior's evaluations: pick_bowl-seed7"):
        rr.scene_control_figures([_episode(0, True), _episode(7, False)], {("pick_bowl", 0): [True]})
    with pytest.raises(ValueError, match="no training episode with a verdict"):
        rr.scene_control_figures([{**_episode(0, True), "phase": "eval"}], {("pick_bowl", 0): [True]})
    with pytest.raises(ValueError, match="not a fresh scene start"):
        rr.scene_of({"start_state_id": "frontier-3"})


def test_main_reads_a_run_folder_and_prints_one_json_line(sc, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    rows = [_episode(0, True), _episode(0, False), {**_episode(1, True), "phase": "eval"}, _episode(1, True)]
    (run / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "prior").mkdir()
    (tmp_path / "prior" / "results.json").write_text(json.dumps(_evaluation([(0, True), (0, False), (1, True)])))
    sc.main([str(run), "--prior-eval", str(tmp_path / "prior"), "--block", "2"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "scenes 0-0: run 1/2, prior 1.0, difference +0.0 (null sd 1.4)"  # (2 + 2^2 / 2) x 0.5
    figures = json.loads(out[-1])
    assert (figures["run_successes"], figures["prior_expected"], figures["difference"]) == (2, 2.0, 0.0)
    assert "whole run: 2 successes, prior 2.0, difference +0.0" in out
    assert [b["episodes"] for b in figures["blocks"]] == [2, 1]  # the evaluation episode is not a training one


def test_a_prior_eval_path_without_results_is_named(sc, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "episodes.jsonl").write_text(json.dumps(_episode(0, True)) + "\n")
    with pytest.raises(SystemExit, match=r"--prior-eval \S*missing: not a readable"):
        sc.main([str(tmp_path / "run"), "--prior-eval", str(tmp_path / "missing")])


def _one_scene_per_side(rr) -> dict[str, int]:
    """A pick_bowl scene seed with the goal on the left and one with it on the right (the simulator says which)."""
    sides = rr.scene_sides([f"pick_bowl-seed{k}" for k in range(8)])
    return {
        side: next(int(s.split("seed")[1]) for s, v in sorted(sides.items()) if v == side) for side in ("left", "right")
    }


def test_by_layout_sets_each_sides_scenes_against_the_prior_on_them(sc, rr, tmp_path, capsys):
    seed = _one_scene_per_side(rr)
    run = tmp_path / "run"
    run.mkdir()
    rows = [_episode(seed["left"], True), _episode(seed["left"], False), _episode(seed["right"], True)]
    rows.append(_episode(seed["right"], True))
    (run / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    prior = [
        (seed["left"], True),
        (seed["left"], False),
        *[(seed["right"], won) for won in (False, False, False, True)],
    ]
    (tmp_path / "prior.json").write_text(json.dumps(_evaluation(prior)))
    sc.main([str(run), "--prior-eval", str(tmp_path / "prior.json"), "--by-layout"])
    out = capsys.readouterr().out.splitlines()
    figures = json.loads(out[-1])["by_layout"]
    assert figures["left"] | {"null_sd": None} == {
        "episodes": 2, "run_successes": 1, "prior_expected": 1.0, "difference": 0.0, "null_sd": None,
    }  # fmt: skip
    assert (figures["right"]["run_successes"], figures["right"]["prior_expected"]) == (2, 0.5)  # 2 x 1/4
    assert "goal right: run 2/2, prior 0.5, difference +1.5 (null sd 0.9)" in out  # sqrt((2 + 4 / 4) x 1/4 x 3/4 x 4/3)


def test_a_layout_without_training_episodes_is_left_out_and_a_missed_scene_still_named(sc, rr):
    seed = _one_scene_per_side(rr)
    prior = rr.prior_outcomes([_evaluation([(seed["left"], True), (seed["left"], False)])])
    assert set(sc.layout_figures([_episode(seed["left"], True)], prior)) == {"left"}
    with pytest.raises(ValueError, match=f"pick_bowl-seed{seed['right']}"):  # not silently dropped as "no episodes"
        sc.layout_figures([_episode(seed["left"], True), _episode(seed["right"], True)], prior)
