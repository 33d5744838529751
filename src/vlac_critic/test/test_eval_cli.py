"""`vlac critic eval` end to end on a frame folder, an mp4 and a recorded bag, with tiny models."""

from __future__ import annotations

import argparse
import json
import math

import av
import numpy as np
import pytest
from critic_testing import frames
from PIL import Image

from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition
from vlac_critic import eval_cli
from vlac_critic.frames_io import TrajectoryReadError, read_trajectory

TASK = "open the drawer"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("traj") / "folder_traj"
    folder.mkdir()
    for i, frame in enumerate(frames(12, seed=11)):
        Image.fromarray(frame).save(folder / f"frame_{i}.png")  # frame_10 sorts after frame_9
    return folder


@pytest.fixture(scope="module")
def mp4_file(tmp_path_factory):
    """3 s at 10 fps: 30 frames, of which 5 fps sampling keeps 15."""
    path = tmp_path_factory.mktemp("video") / "video_traj.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in frames(30, seed=12):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory):
    from vlac_core.bag import write_episode

    images = frames(11, seed=13)

    def observation(step: int) -> Observation:
        pose = EndPose(x_mm=100.0, y_mm=0.0, z_mm=200.0, roll_deg=0.0, pitch_deg=0.0, yaw_deg=0.0)
        return Observation(
            robot_id="arm_0", task=TASK, images=(images[step],), end_pose=pose, gripper_open=True,
            gripper_mm=30.0, joints_rad=(0.0,) * 6, stamp_s=1000.0 + step, seq=step,
        )  # fmt: skip

    action = PolicyAction(
        delta=DeltaAction(0, 0, 0, 0, 0, 0, 1), text="", token_logprobs=(), value=0.0, policy_version=0,
        obs_stamp_s=1000.0, inference_latency_s=0.1,
    )  # fmt: skip
    transitions = [Transition(observation(i), action, None, 0.0, 0.0, False) for i in range(10)]
    episode = Episode("ep-1", "arm_0", TASK, transitions, observation(10), Termination.DONE)
    path = tmp_path_factory.mktemp("bags") / "bag_traj"
    write_episode(path, episode)
    return path


def test_frame_folder_is_read_in_natural_order(frame_folder):
    trajectory = read_trajectory(frame_folder)
    assert len(trajectory.frames) == 12 and trajectory.task is None
    assert np.array_equal(trajectory.frames[10], frames(12, seed=11)[10])


def test_video_is_sampled_at_5_fps(mp4_file):
    trajectory = read_trajectory(mp4_file)
    assert len(trajectory.frames) == 15
    assert trajectory.frames[0].shape == (48, 64, 3) and trajectory.frames[0].dtype == np.uint8
    assert len(read_trajectory(mp4_file, fps=10).frames) == 30


def test_bag_gives_every_step_frame_the_final_frame_and_the_task(bag_dir):
    trajectory = read_trajectory(bag_dir)
    assert len(trajectory.frames) == 11 and trajectory.task == TASK
    assert np.array_equal(trajectory.frames[-1], frames(11, seed=13)[-1])


def test_unreadable_inputs_are_clear_errors(tmp_path):
    with pytest.raises(TrajectoryReadError, match="no such file"):
        read_trajectory(tmp_path / "missing")
    with pytest.raises(TrajectoryReadError, match="no image files"):
        read_trajectory(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TrajectoryReadError, match="expected a folder of frames, a video"):
        read_trajectory(tmp_path / "notes.txt")


def _refuse_non_standard_json(token):
    raise ValueError(f"results.json holds {token}: not strict JSON")


def test_eval_on_folder_mp4_and_bag_prints_table_and_writes_plots(
    progress_model_dir, frame_folder, mp4_file, bag_dir, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = [str(frame_folder), str(mp4_file), str(bag_dir), "--task", TASK, "--checkpoint", str(progress_model_dir)]
    assert eval_cli.run(parse([*argv, "--skip", "5", "--out", str(out), "--no-progress"])) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].split() == ["Trajectory", "Frames", "Pairs", "VOC", "VROC", "VOC-F1", "NR", "Unparsed"]
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    # the model answers 25 to every pair, inverted ones too: negated they make the value fall, VROC = -1
    # VOC-F1 of opposite-sign correlations is the worse one (metrics.voc_f1), so it stays in [-1, 1]
    assert rows["folder_traj"] == ["folder_traj", "12", "2", "1.000", "-1.000", "-1.000", "0.000", "0"]
    assert rows["video_traj"][1:3] == ["15", "2"]  # 15 sampled frames: 0, 5, 10
    assert rows["bag_traj"][1:3] == ["11", "2"]
    assert lines[6].split() == ["Mean", "1.000", "-1.000", "-1.000", "0.000", "0"]
    for name in ("folder_traj", "video_traj", "bag_traj"):
        png = out / f"{name}_curves.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text(), parse_constant=_refuse_non_standard_json)
    assert results["mean"] == {"voc": 1.0, "vroc": -1.0, "voc_f1": -1.0, "nr": 0.0}  # the table's Mean row
    folder = results["trajectories"][0]
    assert folder["critics_pct"] == [25.0, 25.0] and folder["values_pct"] == [0.0, 25.0, 43.75]
    assert folder["reversed_critics_pct"] == [-25.0, -25.0] and folder["reversed_values_pct"] == [0.0, -25.0, -56.25]
    assert folder["voc_f1"] == -1.0


def test_eval_without_frame_skipping_and_with_a_reference(progress_model_dir, frame_folder, tmp_path, capsys):
    argv = [str(frame_folder), "--task", TASK, "--checkpoint", str(progress_model_dir), "--out", str(tmp_path)]
    argv += ["--skip", "5", "--no-frame-skipping", "--reference", str(frame_folder), "--no-progress"]
    assert eval_cli.run(parse(argv)) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[1:3] == ["12", "7"]
    result = json.loads((tmp_path / "results.json").read_text())["trajectories"][0]
    assert result["values_pct"][1] == pytest.approx(5.0)  # 25 / skip


def test_unparsable_answers_are_reported_in_the_table(random_model_dir, frame_folder, tmp_path, capsys):
    argv = [str(frame_folder), "--task", TASK, "--checkpoint", str(random_model_dir), "--out", str(tmp_path)]
    assert eval_cli.run(parse([*argv, "--no-progress"])) == 0
    captured = capsys.readouterr()
    row = captured.out.splitlines()[2].split()
    assert row[-1] == "4" and row[3] == "nan"  # no value update at all: no correlation
    assert "4 critic answer(s) could not be parsed" in captured.err
    result = json.loads((tmp_path / "results.json").read_text())["trajectories"][0]
    assert result["critics_pct"] == [None, None] and math.isclose(result["values_pct"][-1], 0.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task", " "], "--task is empty"),
        (["--task", TASK, "--skip", "0"], "--skip must be >= 1"),
        (["--task", TASK, "--skip", "20"], "12 frames has no pair at skip 20"),
        (["--task", TASK, "--checkpoint", "/nonexistent/ckpt"], "not a directory"),
        ([], "no task text: pass --task"),
    ],
)
def test_bad_cli_input_is_a_clear_error(random_model_dir, frame_folder, tmp_path, capsys, extra, message):
    argv = [str(frame_folder), "--checkpoint", str(random_model_dir), "--out", str(tmp_path), "--no-progress"]
    assert eval_cli.run(parse([*argv, *extra])) == 2
    assert message in capsys.readouterr().err


def test_checkpoint_without_weights_is_a_clear_cli_error(random_model_dir, frame_folder, tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text((random_model_dir / "config.json").read_text())
    argv = [str(frame_folder), "--task", TASK, "--checkpoint", str(tmp_path / "ckpt"), "--no-progress"]
    assert eval_cli.run(parse(argv)) == 2
    assert "no weights" in capsys.readouterr().err


def _damaged_copy(bag_dir, tmp_path, damage) -> object:
    import shutil

    copy = shutil.copytree(bag_dir, tmp_path / "damaged_bag")
    (mcap,) = copy.glob("*.mcap")
    mcap.write_bytes(damage(bytearray(mcap.read_bytes())))
    return copy


def _flip_task_text(data: bytearray) -> bytes:
    data[data.index(TASK.encode())] ^= 0x80  # the task string no longer decodes as UTF-8
    return bytes(data)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: bytes(data[: len(data) * 2 // 3]), "damaged or not an episode bag (ReaderError"),
        (_flip_task_text, "damaged or not an episode bag"),
    ],
    ids=["truncated-under-metadata", "bit-flipped"],
)
def test_damaged_bag_is_one_line_naming_it_with_status_1(random_model_dir, bag_dir, tmp_path, capsys, damage, message):
    damaged = _damaged_copy(bag_dir, tmp_path, damage)
    argv = [str(damaged), "--checkpoint", str(random_model_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    assert eval_cli.run(parse(argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vlac critic eval: error: {damaged}: {message}") and err.count("\n") == 1


def test_truncated_weights_are_named_with_status_1_before_any_frame_is_read(random_model_dir, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(random_model_dir, tmp_path / "ckpt")
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    argv = [str(tmp_path / "no_such_video.mp4"), "--task", TASK, "--checkpoint", str(copy), "--no-progress"]
    assert eval_cli.run(parse(argv)) == 1
    assert capsys.readouterr().err.startswith(f"vlac critic eval: error: {weights}: not a complete safetensors file")


def test_argument_errors_come_before_torch_is_imported(tmp_path):
    import subprocess
    import sys

    code = (
        "import argparse, json, sys\nfrom vlac_critic import eval_cli\n"
        "parser = argparse.ArgumentParser(); eval_cli.add_arguments(parser)\n"
        "rc = eval_cli.run(parser.parse_args(['x', '--checkpoint', sys.argv[1], '--skip', '0']))\n"
        "rc2 = eval_cli.run(parser.parse_args(['x', '--checkpoint', sys.argv[1]]))\n"
        "print(json.dumps([rc, rc2, sorted({'torch', 'transformers', 'mujoco'} & set(sys.modules))]))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [2, 2, []]
    assert "no config.json (the folder is empty)" in done.stderr
