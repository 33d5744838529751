"""`vlac collect-demos` writes readable npz episodes and MCAP bags with the ground truth."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="collect-demos runs the MuJoCo simulation")

from piper_driver import collect_cli
from piper_driver.sim.demo_format import DemoFormatError, iter_episodes, load_episode_npz
from vlac_core.action_text import parse_action


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

    bag_module = pytest.importorskip("vlac_core.bag", reason="episode bags are written by vlac_core.bag")
    episode = bag_module.read_episode(out / "bags" / "sweep_expert_s3")
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
