"""`vlac collect-demos` writes readable npz episodes and MCAP bags with the ground truth."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from piper_driver import collect_cli
from piper_driver.sim.demo_format import DemoFormatError, iter_episodes, load_episode_npz
from vlac_core.action_text import parse_action
from vlac_core.bag import read_episode


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    collect_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_collect_demos_writes_npz_bags_and_summary(tmp_path, capsys):
    out = tmp_path / "demos"
    code = collect_cli.run(
        _args(
            "--task", "sweep", "--episodes", "1", "--out", str(out), "--failures", "--image-size", "40", "--seed", "3"
        )
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["variants"]["expert"] == {
        "episodes": 1,
        "success": 1,
        "steps": summary["variants"]["expert"]["steps"],
    }
    assert summary["variants"]["stall"]["success"] == 0
    assert json.loads((out / "summary.json").read_text()) == summary

    records = {r.variant: r for r in iter_episodes(out)}
    assert set(records) == {"expert", "stall"}
    expert = records["expert"]
    assert expert.success and expert.seed == 3 and expert.text == "Sweep the trash into the dustpan"
    assert expert.front_images.shape == (expert.length + 1, 40, 40, 3)

    episode = read_episode(out / "bags" / "sweep_expert_s3")
    assert episode.length == expert.length and episode.success is True
    assert episode.task == expert.text
    first = episode.transitions[0]
    assert parse_action(first.action.text).as_tuple() == tuple(int(v) for v in expert.actions[0])
    np.testing.assert_array_equal(first.observation.images[0], expert.front_images[0])


def test_collect_demos_refuses_bad_arguments_naming_them(tmp_path, capsys):
    assert collect_cli.run(_args("--task", "fold", "--episodes", "1", "--out", str(tmp_path))) == 2
    assert "--task" in capsys.readouterr().err
    assert collect_cli.run(_args("--task", "sweep", "--episodes", "0", "--out", str(tmp_path))) == 2
    assert "--episodes" in capsys.readouterr().err
    assert (
        collect_cli.run(_args("--task", "sweep", "--episodes", "1", "--out", str(tmp_path), "--image-size", "9")) == 2
    )
    assert "image_size_px" in capsys.readouterr().err


def test_reader_refuses_a_file_that_is_not_an_episode(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(DemoFormatError, match=r"other\.npz"):
        load_episode_npz(path)


def _collect(out, *extra: str) -> int:
    return collect_cli.run(
        _args("--task", "sweep", "--episodes", "1", "--out", str(out), "--image-size", "32", "--max-steps", "3", *extra)
    )


def test_existing_collection_is_refused_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "demos"
    assert _collect(out, "--seed", "3") == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _collect(out, "--seed", "3") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"--out {out} already holds a collection (1 npz episodes, npz, bags, summary.json)" in err
    assert "--append" in err and "--overwrite" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_append_adds_new_seeds_and_summary_counts_the_folder(tmp_path, capsys):
    out = tmp_path / "demos"
    assert _collect(out, "--seed", "3") == 0
    assert _collect(out, "--seed", "3", "--append") == 2
    assert "already holds seed(s) 3..3 of this run; choose --seed 4 or higher" in capsys.readouterr().err
    assert _collect(out, "--seed", "4", "--append") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"]["expert"]["episodes"] == 2
    assert (summary["seeds"], summary["seed_ranges"]) == ([3, 4], [[3, 3], [4, 4]])
    assert sorted(p.name for p in (out / "npz").iterdir()) == ["sweep_expert_s3.npz", "sweep_expert_s4.npz"]
    assert sorted(p.name for p in (out / "bags").iterdir()) == ["sweep_expert_s3", "sweep_expert_s4"]


def test_append_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "demos"
    assert _collect(out) == 0
    code = collect_cli.run(
        _args("--task", "sweep", "--episodes", "1", "--out", str(out), "--seed", "9", "--append", "--image-size", "40")
    )
    assert code == 2
    assert "was collected with image_size_px = 32, this run asks 40" in capsys.readouterr().err


def test_grasp_hold_steps_is_recorded_refused_without_a_grasp_and_kept_on_append(tmp_path, capsys):
    out = tmp_path / "demos"
    base = ["--task", "pick_bowl", "--episodes", "1", "--out", str(out), "--image-size", "32", "--no-bags"]
    assert collect_cli.run(_args(*base, "--grasp-hold-steps", "1")) == 0
    assert json.loads((out / "summary.json").read_text())["grasp_hold_steps"] == 1
    capsys.readouterr()
    assert collect_cli.run(_args(*base, "--seed", "5", "--append")) == 2  # the default hold is 3
    assert "was collected with grasp_hold_steps = 1, this run asks 3" in capsys.readouterr().err
    sweep = ["--task", "sweep", "--episodes", "1", "--out", str(tmp_path / "sweep"), "--grasp-hold-steps", "1"]
    assert collect_cli.run(_args(*sweep)) == 2
    assert "--grasp-hold-steps: task 'sweep' has no grasp" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()


def test_overwrite_replaces_the_collection_and_keeps_other_files(tmp_path):
    out = tmp_path / "demos"
    assert _collect(out, "--seed", "3") == 0
    (out / "notes.txt").write_text("mine")
    assert _collect(out, "--seed", "5", "--overwrite") == 0
    assert [p.name for p in (out / "npz").iterdir()] == ["sweep_expert_s5.npz"]
    assert [p.name for p in (out / "bags").iterdir()] == ["sweep_expert_s5"]
    assert (out / "notes.txt").read_text() == "mine"


def test_append_and_overwrite_exclude_each_other():
    with pytest.raises(SystemExit):
        _args("--task", "sweep", "--episodes", "1", "--out", "x", "--append", "--overwrite")


def test_empty_out_folder_is_fine(tmp_path):
    (tmp_path / "demos").mkdir()
    assert _collect(tmp_path / "demos") == 0
