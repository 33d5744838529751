"""`vlac bag info|recover|export`: what a bag holds, crash repair, and annotated video / contact sheet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vlac.cli import main
from vlac.episode_render import EpisodeRenderer, episode_views, sheet_indices
from vlac_core.bag import EpisodeRecorder, read_episode, write_episode
from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition

TASK = "put the bowl on the plate"


def _observation(step: int) -> Observation:
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, : 4 * (step + 1)] = (200, 40 * step % 256, 90)  # a bar that grows: every step looks different
    return Observation(
        robot_id="sim_0",
        task=TASK,
        images=(frame,),
        end_pose=EndPose(x_mm=200.0 + step, y_mm=0.0, z_mm=150.0, roll_deg=180.0, pitch_deg=0.0, yaw_deg=0.0),
        gripper_open=True,
        gripper_mm=60.0,
        joints_rad=(0.0,) * 6,
        stamp_s=100.0 + step,
        seq=step,
    )


def _transition(step: int, *, version: int) -> Transition:
    delta = DeltaAction(dx_mm=5, dy_mm=0, dz_mm=-2, droll_deg=0, dpitch_deg=0, dyaw_deg=0, open=1)
    action = PolicyAction(
        delta=delta,
        text="{x: 5mm, y: 0mm, z: -2mm, roll: 0°, pitch: 0°, yaw: 0°, open: 1}",
        token_logprobs=(-0.5,),
        value=0.25 * step,
        policy_version=version,
        obs_stamp_s=100.0 + step,
        inference_latency_s=0.01,
        robot_id="sim_0",
        obs_seq=step,
    )
    return Transition(
        observation=_observation(step),
        action=action,
        progress_pct=None if step == 1 else 10.0 - step,
        reward=0.1 * step,
        done_prob=0.2 * step,
        done=False,
        human=step == 2,
    )


def _episode(steps: int = 4) -> Episode:
    return Episode(
        episode_id="ep-1",
        robot_id="sim_0",
        task=TASK,
        transitions=[_transition(i, version=3 + i // 2) for i in range(steps)],
        final_observation=_observation(steps),
        termination=Termination.DONE,
        success=True,
        policy_version=3,
    )


@pytest.fixture()
def bags(tmp_path):
    """A finished bag, a bag whose writer crashed after two steps, and a folder that is no bag."""
    finished = write_episode(tmp_path / "finished", _episode(), fsync=False)
    recorder = EpisodeRecorder(tmp_path / "crashed", episode_id="ep-2", robot_id="sim_0", task=TASK, fsync=False)
    for step in range(2):
        recorder.write_step(_transition(step, version=3))
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"not a bag")
    return finished, tmp_path / "crashed", foreign


def test_info_prints_a_line_per_bag_and_names_a_foreign_folder(bags, capsys):
    finished, crashed, foreign = bags
    assert main(["bag", "info", str(finished), str(foreign), str(crashed)]) == 1
    out, err = capsys.readouterr()
    first, second = out.splitlines()
    assert first.startswith(f"{finished}: 4 steps, ")
    for part in (f"task '{TASK}'", "done, success", "policy v3-v4 (2 versions)", "1 human steps", "complete"):
        assert part in first
    assert second.startswith(f"{crashed}: 2 steps") and "aborted, success unknown" in second
    assert "INCOMPLETE (no metadata.yaml" in second
    assert err.splitlines() == [
        f"vlac bag info: {foreign}: not an episode bag: expected one .mcap file in the folder, found 0"
    ]


def test_info_json_is_strict_json_per_bag(bags, capsys):
    finished, crashed, _ = bags
    assert main(["bag", "info", "--json", str(finished), str(crashed)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["steps"], r["complete"], r["policy_versions"], r["success"]) for r in rows] == [
        (4, True, [3, 4], True),
        (2, False, [3], None),
    ]


def test_recover_makes_a_crashed_bag_readable_and_leaves_a_finished_one(bags, capsys):
    finished, crashed, foreign = bags
    assert main(["bag", "recover", str(crashed), str(finished), str(foreign)]) == 1
    out, err = capsys.readouterr()
    assert f"{crashed}: rewritten as a complete bag: 2 steps, aborted, success unknown" in out
    assert f"{finished}: complete already (4 steps), left as it is" in out
    assert err.count("\n") == 1 and str(foreign) in err
    assert read_episode(crashed).length == 2


def test_export_writes_a_video_with_a_frame_per_step_and_the_final_observation(bags, tmp_path, capsys):
    finished, _, _ = bags
    video, sheet = tmp_path / "out" / "episode.mp4", tmp_path / "out" / "episode.png"
    assert main(["bag", "export", str(finished), "--mp4", str(video), "--sheet", str(sheet), "--tiles", "3"]) == 0
    renderer = EpisodeRenderer(read_episode(finished))
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 5  # 4 steps + the final observation
    assert frames[0].shape == (renderer.size_px[1], renderer.size_px[0], 3)
    assert np.abs(frames[0].astype(int) - frames[3].astype(int)).mean() > 1  # the pictures change
    width, height = Image.open(sheet).size
    assert (width, height) == (3 * renderer.size_px[0] + 2 * 4, renderer.size_px[1])
    assert "5 frames at 5 fps" in capsys.readouterr().out


def test_export_of_a_crashed_bag_draws_its_readable_steps(bags, tmp_path, capsys):
    _, crashed, _ = bags
    assert main(["bag", "export", str(crashed), "--sheet", str(tmp_path / "s.png")]) == 0
    assert "incomplete bag, exporting its 2 readable steps" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "nothing to write: give --mp4 OUT.mp4 and/or --sheet OUT.png"),
        (["--mp4", "out.avi"], "--mp4 out.avi: the file name must end in .mp4"),
        (["--sheet", "s.png", "--height", "8"], "--height >= 32"),
    ],
)
def test_export_usage_errors_exit_2_with_one_line(bags, extra, message, capsys):
    finished, _, _ = bags
    assert main(["bag", "export", str(finished), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_export_usage_error_is_reported_before_the_bag_reader_or_pyav_is_imported(tmp_path):
    code = (
        "import sys; from vlac.cli import main; rc = main(['bag', 'export', 'nowhere']); "
        "print(rc, sorted({'rosbags', 'av', 'torch', 'mujoco', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.strip() == "2 []"


def test_each_view_carries_its_steps_numbers_and_the_final_observation_comes_last():
    views = episode_views(_episode(3))
    assert [v.step for v in views] == [0, 1, 2, None]
    assert views[1].progress_pct is None and views[2].human and views[2].done_prob == pytest.approx(0.4)


def test_contact_sheet_indices_are_spread_evenly_and_keep_first_and_last():
    assert sheet_indices(5, 12) == [0, 1, 2, 3, 4]
    assert sheet_indices(41, 5) == [0, 10, 20, 30, 40]
    assert sheet_indices(41, 1) == [40]


def test_an_episode_without_frames_cannot_be_drawn():
    with pytest.raises(ValueError, match="no frames to draw"):
        EpisodeRenderer(Episode("ep-0", "sim_0", TASK, termination=Termination.ABORTED))


def test_export_reads_a_missing_path_as_a_data_error(tmp_path, capsys):
    missing: Path = tmp_path / "gone"
    assert main(["bag", "export", str(missing), "--sheet", str(tmp_path / "s.png")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"vlac bag export: {missing}: not a bag directory (an episode bag is a folder with metadata.yaml and a .mcap)"
    )


def test_export_latest_picks_the_bag_written_last_in_a_folder(tmp_path, capsys):
    import os

    folder = tmp_path / "eval"
    first = write_episode(folder / "b_first", _episode(2), fsync=False)
    second = write_episode(folder / "a_second", _episode(3), fsync=False)
    (folder / ".c_recovering.partial").mkdir()  # hidden: a recovery's leftover is never picked
    (folder / ".c_recovering.partial" / "x.mcap").write_bytes(b"")
    for age_s, bag in ((200, first), (100, second)):
        for mcap in bag.glob("*.mcap"):
            os.utime(mcap, ns=(mcap.stat().st_mtime_ns - age_s * 10**9,) * 2)
    assert main(["bag", "export", str(folder), "--latest", "--sheet", str(tmp_path / "s.png")]) == 0
    captured = capsys.readouterr()
    assert f"{second}: the bag written last in its folder" in captured.err
    assert "contact sheet of 4 of 4 pictures" in captured.out  # 3 steps + the final observation
    assert main(["bag", "export", str(tmp_path / "nothing"), "--latest", "--sheet", str(tmp_path / "t.png")]) == 1


def test_simulated_truth_is_carried_into_the_view_and_drawn_at_the_same_size():
    import dataclasses

    plain = _episode(2)
    truth = dataclasses.replace(plain, transitions=list(plain.transitions))
    truth.transitions[0] = dataclasses.replace(truth.transitions[0], gt_progress=0.05, gt_done=False, gt_phase="reach")
    view = episode_views(truth)[0]
    assert (view.gt_progress_pct, view.gt_phase, view.gt_done) == (pytest.approx(5.0), "reach", False)
    assert episode_views(plain)[0].gt_progress_pct is None
    with_truth, without = EpisodeRenderer(truth).render(0), EpisodeRenderer(plain).render(0)
    assert with_truth.shape == without.shape and not np.array_equal(with_truth, without)
