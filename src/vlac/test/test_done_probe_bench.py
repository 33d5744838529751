"""bench/done_probe.py: which frames it keeps and how it labels them, its views (resize, crop) and their refusals,
the per-distance table, and that its readout finds a success the pixels show and not one they do not.
The probe of real rollouts takes minutes; not run here."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from bench_scripts import load_bench

from vlac_core.model import TinyModelSpec, build_tiny_model


@pytest.fixture(scope="module")
def probe():
    yield from load_bench("done_probe")


def _record(seed: int, phases: list[str], size_px: int = 16):
    frames = np.stack([np.full((size_px, size_px, 3), 10 * k, dtype=np.uint8) for k in range(len(phases))])
    meta = {"phase": phases}
    text = "Pick up the bowl and put it on the plate"
    return SimpleNamespace(task="pick_bowl", variant="off_centre", seed=seed, meta=meta, front_images=frames, text=text)


def test_frames_kept_are_the_not_held_ones_near_the_goal_labelled_by_the_truths_success(probe):
    record = _record(3, ["reach", "carry", "release", "placed", "done", "reach"])
    offsets = [np.array([[200.0, 0.0], [0.0, 60.0], [30.0, 0.0], [0.0, -30.0], [18.0, 24.0], [-70.0, 0.0]])]
    data = probe.done_frames([record], offsets, max_mm=80.0)
    # kept: frame 3 (placed), 4 (done, 30 mm off diagonally), 5 (reach, 70 mm); frame 0 too far, 1-2 held
    np.testing.assert_array_equal(data.success, [0, 1, 0])
    np.testing.assert_array_equal(data.distance_mm, [30.0, 30.0, 70.0])
    np.testing.assert_array_equal(data.frames[:, 0, 0, 0], [30, 40, 50])
    assert data.scenes == ["pick_bowl_s3"] * 3
    assert data.texts == ["Pick up the bowl and put it on the plate"] * 3


def test_a_record_without_an_object_track_or_no_frame_at_all_is_refused(probe):
    with pytest.raises(ValueError, match="off_centre seed 7: no object track"):
        probe.done_frames([_record(7, ["done"])], [None], max_mm=80.0)
    with pytest.raises(ValueError, match=r"no frame with the object not held within 80\.0 mm"):
        probe.done_frames([_record(7, ["carry"])], [np.array([[10.0, 0.0]])], max_mm=80.0)


def test_views_resize_and_crop_and_refuse_what_adds_no_pixels(probe):
    assert probe.parse_view("64px", 128) == (False, 64)
    assert probe.parse_view("crop96px", 128) == (True, 96)
    with pytest.raises(ValueError, match=r"160 px is outside 8\.\.128 px"):
        probe.parse_view("160px", 128)
    with pytest.raises(ValueError, match="expected <N>px or crop<N>px"):
        probe.parse_view("64", 128)
    assert probe.crop_box_px([0.25, 0.5, 0.75, 1.0], 128) == (32, 64, 96, 128)
    with pytest.raises(ValueError, match="need 0 <= left < right <= 1"):
        probe.crop_box_px([0.5, 0.0, 0.4, 1.0], 128)
    frame = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    frame[0, 16:, 16:] = 255  # the bottom-right quarter white
    whole = probe.view_tensor(frame, 16)
    cropped = probe.view_tensor(frame, 16, probe.crop_box_px([0.5, 0.5, 1.0, 1.0], 32))
    assert whole.shape == cropped.shape == (1, 3, 16, 16)
    assert 0.2 < float(whole.mean()) < 0.3 and float(cropped.mean()) == pytest.approx(1.0)


def test_the_distance_table_means_each_bins_success_and_other_frames(probe):
    rows = probe.by_distance(
        np.array([0.9, 0.7, 0.2, 0.6]), np.array([1, 1, 0, 0]), np.array([5.0, 25.0, 25.0, 40.0]), edges=(0, 10, 30, 50)
    )
    assert rows == [
        {"from_mm": 0, "to_mm": 10, "frames": "success", "n": 1, "mean": 0.9},
        {"from_mm": 10, "to_mm": 30, "frames": "success", "n": 1, "mean": 0.7},
        {"from_mm": 10, "to_mm": 30, "frames": "other", "n": 1, "mean": 0.2},
        {"from_mm": 30, "to_mm": 50, "frames": "other", "n": 1, "mean": 0.6},
    ]


def _marked_frames(probe, n: int, visible: bool):
    """Frames that show the bowl as a bright square at its offset (visible) or show nothing of it: a bowl 20-50 mm
    off along x, a success within 35 mm; the square moves a pixel per 5 mm."""
    rng = np.random.default_rng(0)
    offset_mm = np.stack([rng.uniform(20.0, 50.0, n), np.zeros(n)], axis=1)
    frames = rng.integers(0, 60, (n, 16, 16, 3), dtype=np.uint8)
    if visible:
        for frame, x_mm in zip(frames, offset_mm[:, 0], strict=True):
            column = int(x_mm // 5.0)  # 4..9
            frame[6:10, column : column + 3] = 250
    success = (offset_mm[:, 0] <= 35.0).astype(np.int64)
    scenes = [f"pick_bowl_s{k}" for k in range(n)]
    return probe.DoneFrames(frames, success, offset_mm, scenes, ["Pick up the bowl and put it on the plate"] * n)


@pytest.mark.parametrize("visible", [True, False])
def test_every_readout_finds_a_boundary_the_pixels_show_and_not_one_they_do_not(probe, visible):
    data = _marked_frames(probe, 300, visible)
    fit = ~probe.held_out_mask(data.scenes)
    view = probe.probe_view(data, fit, "16px", None, epochs=12, seeds=[0], band=(20.0, 50.0))
    run = view["runs"][0]
    for readout in ("label", "offset", "label_aux"):
        band_auc = run[readout]["band_auc"]
        assert band_auc > 0.9 if visible else 0.3 < band_auc < 0.7, (readout, band_auc)
    assert (run["offset"]["band_rmse_mm"] < 5.0) is visible  # uniform 20-50 mm guessed blind: about 8.7 mm


def test_an_unknown_readout_is_refused(probe):
    data = _marked_frames(probe, 20, True)
    with pytest.raises(ValueError, match=r"readouts \['depth'\]: not among"):
        probe.probe_view(data, np.ones(20, bool), "16px", None, epochs=1, seeds=[0], band=(20, 50), readouts=["depth"])


def test_a_critic_is_scored_on_every_frame_and_its_unparsable_answers_counted(probe, tmp_path):
    """A tiny random critic: the plumbing (every frame asked once, the answers that parse scored, the rest counted),
    not a quality."""
    checkpoint = build_tiny_model(tmp_path / "critic", TinyModelSpec(seed=1))
    data = _marked_frames(probe, 24, True)
    report = probe.probe_critic(data, "tiny", str(checkpoint), band=(20.0, 50.0), batch_size=8)
    assert report["critic"] == "tiny" and report["checkpoint"] == str(checkpoint)
    scored = sum(row["n"] for row in report["by_distance"])
    assert scored + report["unparsed"] == 24
    assert report["auc"] is None or 0.0 <= report["auc"] <= 1.0


def test_a_critic_named_without_its_folder_is_refused(probe):
    with pytest.raises(ValueError, match=r"--critic 'tiny': expected NAME=DIR"):
        probe._named("tiny")


def test_a_critics_features_are_read_linearly_for_the_offset_and_the_label(probe, tmp_path):
    """A tiny random critic's features: one row per frame, and both linear readouts scored on the held-out scenes."""
    checkpoint = build_tiny_model(tmp_path / "critic", TinyModelSpec(seed=1))
    data = _marked_frames(probe, 60, True)
    features = probe.critic_features(str(checkpoint), data, batch=16)
    assert features.shape == (60, TinyModelSpec().text_hidden) and np.isfinite(features).all()
    fit = ~probe.held_out_mask(data.scenes)
    report = probe.probe_critic_features(data, fit, "tiny", str(checkpoint), band=(20.0, 50.0))
    assert report["offset"]["band_rmse_mm"] > 0 and report["offset"]["ridge_penalty"] > 0
    assert 0.0 <= report["label"]["band_auc"] <= 1.0 and 0.0 <= report["offset"]["band_auc"] <= 1.0
