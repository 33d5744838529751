"""bench/layout_split.py: held-out success per scene layout (the goal on the arm's left or right), and a policy's
difference from the first one's."""

from __future__ import annotations

import json
import math

import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def ls():
    yield from load_bench("layout_split")


def _evaluation(outcomes: list[tuple[int, bool]]) -> dict:
    rows = [{"task": "pick_bowl", "seed": seed, "success": won, "steps": 30, "error": ""} for seed, won in outcomes]
    return {"checkpoint": "c", "tasks": [{"task": "pick_bowl", "outcomes": rows}]}


def test_each_result_is_split_by_the_side_its_scenes_goal_lies_on(ls, tmp_path, capsys):
    sides = ls.scene_sides([f"pick_bowl-seed{k}" for k in range(8)])
    left = [int(s.split("seed")[1]) for s, v in sorted(sides.items()) if v == "left"][:2]
    right = [int(s.split("seed")[1]) for s, v in sorted(sides.items()) if v == "right"][:2]
    base = _evaluation([(left[0], True), (left[1], False), (right[0], False), (right[1], False)])
    other = _evaluation([(left[0], True), (left[1], True), (right[0], False), (right[1], True)])
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "results.json").write_text(json.dumps(base))
    (tmp_path / "other.json").write_text(json.dumps(other))
    figures = ls.main([str(tmp_path / "base"), str(tmp_path / "other.json")])
    first, second = figures["rows"]
    assert first["left"] == {"successes": 1, "episodes": 2} and first["right"] == {"successes": 0, "episodes": 2}
    assert second["all"] == {"successes": 3, "episodes": 4} and "against_first" not in first
    right_diff = second["against_first"]["right"]
    assert right_diff["difference"] == 1.0
    assert right_diff["null_sd"] == pytest.approx(round(math.sqrt(0.25 * 0.75 * (1 / 2 + 1 / 2)) * 2, 2))
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == figures


def test_a_path_without_results_is_named(ls, tmp_path):
    with pytest.raises(SystemExit, match=r"missing: not a readable vlac actor eval results.json"):
        ls.main([str(tmp_path / "missing")])
