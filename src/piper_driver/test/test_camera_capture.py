"""Camera core: clear errors for missing devices, RGB out, requested size out."""

import cv2
import numpy as np
import pytest

from piper_driver.camera import Camera, CameraConfig, CameraError, bgr_to_rgb
from vlac_core.config import ConfigError


def test_bgr_to_rgb_swaps_the_outer_channels():
    bgr = np.zeros((2, 3, 3), dtype=np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    rgb = bgr_to_rgb(bgr)
    assert rgb[0, 0].tolist() == [0, 0, 200]
    assert rgb.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("frame", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), None])
def test_bgr_to_rgb_rejects_non_images(frame):
    with pytest.raises(CameraError, match="HxWx3 uint8"):
        bgr_to_rgb(frame)


def test_missing_device_path_is_named():
    with pytest.raises(CameraError, match=r"camera device /dev/video97 does not exist \(video devices here: "):
        Camera(CameraConfig(device="/dev/video97")).open()


def test_unopenable_source_says_so(tmp_path):
    with pytest.raises(CameraError, match="could not be opened"):
        Camera(CameraConfig(device=str(tmp_path / "no_such_clip.avi"))).open()


def test_read_before_open_is_an_error():
    with pytest.raises(CameraError, match="not open"):
        Camera(CameraConfig(device="0")).read()


def test_frames_come_out_rgb_at_the_requested_size(tmp_path):
    clip = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for _ in range(3):
        frame = np.zeros((48, 64, 3), dtype=np.uint8)
        frame[..., 2] = 250  # pure red in BGR order
        writer.write(frame)
    writer.release()

    with Camera(CameraConfig(device=clip, width=32, height=24)) as camera:
        first, second = camera.read(), camera.read()
        assert first.rgb.shape == (24, 32, 3)
        assert first.rgb.dtype == np.uint8
        red, green, blue = first.rgb[12, 16].astype(int)
        assert red > 200 and green < 40 and blue < 40
        assert (first.seq, second.seq) == (1, 2)
        assert second.stamp_s >= first.stamp_s
        assert camera.resized_frames == 2
        camera.read()
        with pytest.raises(CameraError, match="returned no frame"):
            camera.read()


@pytest.mark.parametrize(("key", "value"), [("width", 0), ("height", 10_000), ("rate_hz", 0.0), ("device", "")])
def test_bad_camera_config_names_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        CameraConfig(**{key: value})
