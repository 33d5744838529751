"""bench/object_probe.py: the recorded object positions, the replay that recovers them for an episode that did not
record them (and refuses an episode that does not replay), the observations it probes, and that its ridge probe
finds a linear signal that is there and only then.
The probe of the real folders takes minutes and the actor; not run here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from bench_scripts import load_bench

from piper_driver.sim.arm import SimArm
from piper_driver.sim.backend import SimConfig
from piper_driver.sim.demo_format import save_episode_npz
from piper_driver.sim.experts import tcp_of
from piper_driver.sim.rollout import rollout
from piper_driver.sim.tasks import make_expert

SIZE_PX = 32


@pytest.fixture(scope="module")
def probe():
    yield from load_bench("object_probe")


def _arm(task: str = "sweep") -> SimArm:
    return SimArm("sim_0", task, SimConfig(image_size_px=SIZE_PX), None, first_seed=0)


def _expert_episode(seed: int, task: str = "sweep", max_steps: int = 150):
    expert = make_expert(task, "expert", np.random.default_rng([seed, 7]), noise_mm=1.0, noise_deg=0.5)
    return rollout(_arm(task), expert, seed=seed, max_steps=max_steps)


def test_the_replay_follows_the_pushed_trash_and_starts_where_the_scene_puts_it(probe):
    record = _expert_episode(4)
    assert record.success
    arm = _arm()
    positions = probe.replay_object_mm(record, arm)
    assert positions.shape == (record.length + 1, 3)
    arm.reset_to_seed(4, image=False)
    assert positions[0] == pytest.approx(arm.backend.describe()["trash_m"] * 1000.0, abs=0.01)
    np.testing.assert_array_equal(positions, record.meta["object_mm"])  # what the recorder wrote, to the 0.01 mm
    assert np.linalg.norm(positions[-1, :2] - positions[0, :2]) > 50.0  # the expert pushed it into the dustpan


def test_an_episode_that_does_not_replay_is_refused_naming_it(probe):
    record = _expert_episode(4, max_steps=8)
    tampered = record.actions.copy()
    tampered[3, 0] += 20  # observation 4 is no longer where this action would have left the arm
    with pytest.raises(probe.ReplayMismatch, match=r"sweep seed 4: .* observation 4 "):
        probe.replay_object_mm(replace(record, actions=tampered), _arm())


def test_probe_steps_gather_every_observation_with_its_targets_and_scene(probe, tmp_path):
    records = [_expert_episode(seed, max_steps=5) for seed in (1, 2)]
    for record in records:
        save_episode_npz(tmp_path / "demos" / "npz" / f"sweep_s{record.seed}.npz", record)
    steps = probe.probe_steps([tmp_path / "demos"])
    assert steps.task == "sweep"
    assert len(steps.contents) == len(steps.images) == 12 and steps.targets_mm.shape == (12, 4)
    assert steps.scenes == ["sweep:1"] * 6 + ["sweep:2"] * 6
    assert steps.first.tolist() == ([True] + [False] * 5) * 2
    tcp_mm = np.stack([tcp_of(p) for r in records for p in r.end_poses]) * 1000.0
    assert steps.targets_mm[:, :2] == pytest.approx(steps.targets_mm[:, 2:] - tcp_mm[:, :2])  # rel = abs - tcp
    assert steps.pose_mm == pytest.approx(np.concatenate([r.end_poses[:, :3] for r in records]))
    assert "Sweep the trash" in steps.contents[0] and steps.images[0][0].shape == (SIZE_PX, SIZE_PX, 3)


def test_recorded_positions_are_read_and_an_episode_without_them_is_replayed_to_the_same(probe, tmp_path):
    record = _expert_episode(3, max_steps=6)
    unrecorded = replace(record, meta={k: v for k, v in record.meta.items() if k != "object_mm"})
    shifted_mm = [[x + 10.0, y, z] for x, y, z in record.meta["object_mm"]]
    moved = replace(record, meta={**record.meta, "object_mm": shifted_mm})
    targets = {}
    for name, episode in (("recorded", record), ("unrecorded", unrecorded), ("moved", moved)):
        save_episode_npz(tmp_path / name / "npz" / "sweep_s3.npz", episode)
        targets[name] = probe.probe_steps([tmp_path / name]).targets_mm
    assert targets["unrecorded"] == pytest.approx(targets["recorded"], abs=0.01)
    assert targets["moved"] - targets["recorded"] == pytest.approx(np.tile([10.0, 0.0, 10.0, 0.0], (7, 1)))


@pytest.mark.parametrize(("task", "goal_key"), [("pick_bowl", "plate_m"), ("sweep", "bin_m")])
def test_the_goal_target_is_where_the_scene_puts_the_goal_relative_to_each_frames_tcp(probe, tmp_path, task, goal_key):
    record = _expert_episode(5, task=task, max_steps=4)
    save_episode_npz(tmp_path / "demos" / "npz" / "a.npz", record)
    steps = probe.probe_steps([tmp_path / "demos"], target="goal")
    arm = _arm(task)
    arm.reset_to_seed(5, image=False)
    goal_mm = arm.backend.describe()[goal_key][:2] * 1000.0
    assert steps.targets_mm[:, 2:] == pytest.approx(np.tile(goal_mm, (record.length + 1, 1)))
    tcp_mm = np.stack([tcp_of(p) for p in record.end_poses]) * 1000.0
    assert steps.targets_mm[:, :2] == pytest.approx(goal_mm - tcp_mm[:, :2])
    assert not np.allclose(goal_mm, probe.probe_steps([tmp_path / "demos"]).targets_mm[0, 2:])  # not the object


def test_a_folder_of_another_task_or_none_at_all_is_refused(probe, tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no episode"):
        probe.probe_steps([tmp_path / "empty"])
    save_episode_npz(tmp_path / "mixed" / "npz" / "a.npz", _expert_episode(1, max_steps=2))
    save_episode_npz(tmp_path / "mixed" / "npz" / "b.npz", _expert_episode(1, task="pick_bowl", max_steps=2))
    with pytest.raises(ValueError, match="one task per probe"):
        probe.probe_steps([tmp_path / "mixed"])


def test_the_ridge_probe_finds_a_linear_signal_and_not_noise(probe):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 6))
    y = np.stack([3.0 * x[:, 1] - x[:, 4], x[:, 0], np.zeros(800), x[:, 2] * 10.0], axis=1) + 0.1 * rng.normal(
        size=(800, 4)
    )
    scenes = [f"s{k // 4}" for k in range(800)]
    fit = ~probe.held_out_mask(scenes)
    predicted, penalty = probe.ridge_readout(x, y, scenes, fit)
    assert penalty in probe.RIDGE_PENALTIES
    result = probe.scores(predicted, y, fit, {"all": np.ones(800, bool)})["all"]
    assert result["rel_x_mm"]["r2"] > 0.99 and result["abs_y_mm"]["rmse_mm"] < 0.2
    noise = rng.normal(size=(800, 6))
    predicted, _ = probe.ridge_readout(noise, y, scenes, fit)
    assert probe.scores(predicted, y, fit, {"all": np.ones(800, bool)})["all"]["rel_x_mm"]["r2"] < 0.05


def test_scores_are_per_subset_against_the_subsets_own_mean(probe):
    y = np.array([[0.0] * 4, [2.0] * 4, [10.0] * 4, [14.0] * 4])
    fit = np.array([True, False, True, False])
    first = np.array([True, True, False, False])
    perfect = probe.scores(y.copy(), y, fit, {"start": first})["start"]["abs_x_mm"]
    assert perfect == {"rmse_mm": 0.0, "r2": 1.0}
    off = probe.scores(y + 3.0, y, fit, {"start": first, "rest": ~first})
    assert off["start"]["rel_y_mm"] == {"rmse_mm": 3.0, "r2": round(1 - 9 / 4, 3)}  # spread: 2 - fit mean 0
    assert off["rest"]["rel_y_mm"] == {"rmse_mm": 3.0, "r2": round(1 - 9 / 16, 3)}  # spread: 14 - fit mean 10
