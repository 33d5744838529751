"""bench/scene_outcomes.py: each evaluated scene's object start read from the simulator, one policy's successes
binned by where the object is, and the refusals of results it cannot use."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bench_scripts import load_bench

from piper_driver.sim.arm import SimArm
from piper_driver.sim.backend import SimConfig
from piper_driver.sim.tasks import make_task

SEEDS = (20000, 20001, 20002, 20003)


@pytest.fixture(scope="module")
def bench():
    yield from load_bench("scene_outcomes")


@pytest.fixture(scope="module")
def trash_x_mm():
    arm = SimArm("t", "sweep", SimConfig(image_size_px=32), None, first_seed=SEEDS[0])
    xs = {}
    for seed in SEEDS:
        arm.reset_to_seed(seed, image=False)
        xs[seed] = float(arm.backend.describe()["trash_m"][0]) * 1000.0
    arm.close()
    return xs


def _results(path, outcomes: dict[int, bool], task: str = "sweep"):
    entry = {"task": task, "outcomes": [{"task": task, "seed": s, "success": ok} for s, ok in outcomes.items()]}
    path.write_text(json.dumps({"tasks": [entry]}))
    return path


def test_successes_are_counted_in_the_bin_of_their_scenes_object(bench, trash_x_mm, tmp_path):
    near, far = sorted(SEEDS, key=trash_x_mm.get)[:2], sorted(SEEDS, key=trash_x_mm.get)[2:]
    edge_mm = (trash_x_mm[near[-1]] + trash_x_mm[far[0]]) / 2.0
    solves_near = _results(tmp_path / "a.json", {s: s in near for s in SEEDS})
    solves_one_far = _results(tmp_path / "b.json", {s: s == far[0] for s in SEEDS})
    report = bench.scene_outcomes({"near": solves_near, "far": solves_one_far}, "sweep", [edge_mm])
    assert report["scenes_per_bin"] == [2, 2]
    assert report["policies"]["near"]["successes_per_bin"] == [2, 0]
    assert report["policies"]["far"]["successes_per_bin"] == [0, 1]
    assert report["policies"]["far"]["successes"] == 1 and report["policies"]["far"]["scenes"] == 4
    assert report["policies"]["near"]["solved_mean_xy_mm"][0] == pytest.approx(
        np.mean([trash_x_mm[s] for s in near]), abs=0.05
    )
    assert report["policies"]["near"]["failed_mean_xy_mm"][0] > edge_mm
    nothing = bench.scene_outcomes({"none": _results(tmp_path / "c.json", dict.fromkeys(SEEDS, False))}, "sweep")
    assert nothing["policies"]["none"]["solved_mean_xy_mm"] is None  # no solved scene: no mean
    assert len(nothing["x_edges_mm"]) == 2 and sum(nothing["scenes_per_bin"]) == 4  # default: terciles


def test_results_without_the_task_or_a_task_without_an_object_are_refused(bench, tmp_path, monkeypatch):
    pick = _results(tmp_path / "pick.json", {1: True}, task="pick_bowl")
    with pytest.raises(ValueError, match=r"no outcomes of task 'sweep' \(it holds \['pick_bowl'\]\)"):
        bench.load_outcomes(pick, "sweep")
    monkeypatch.setattr(type(make_task("sweep")), "object_key", "")
    with pytest.raises(ValueError, match="task 'sweep' names no object it moves"):
        bench.object_start_mm("sweep", [1])


def test_the_command_prints_one_json_last_and_refuses_a_pair_without_a_name_or_a_name_twice(bench, tmp_path, capsys):
    path = _results(tmp_path / "a.json", {SEEDS[0]: True, SEEDS[1]: False})
    assert bench.main([f"prior={path}", "--x-edges-mm", "280"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scene_outcomes"]
    assert last["x_edges_mm"] == [280.0] and last["policies"]["prior"]["successes"] == 1
    with pytest.raises(SystemExit):
        bench.main([str(path)])
    assert "results takes NAME=PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main([f"prior={path}", f"prior={path}"])
    assert "the name 'prior' is given twice" in capsys.readouterr().err
