"""Camera capture core: OpenCV ``VideoCapture`` in, HxWx3 uint8 RGB frames with stamps out.

The camera node publishes what this returns; everything that can go wrong with a device (it
does not exist, it will not open, it stops delivering, it ignores the requested size) is
handled and worded here, so it is tested without ROS. ``device`` is a V4L2 path
(``/dev/video0``), an index (``"0"``) or anything else OpenCV opens (a video file, an RTSP URL).
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

from piper_driver.config_checks import require, require_number
from vlac_core.config import param, validate


class CameraError(RuntimeError):
    """The camera cannot be opened or stopped delivering frames; the message says which and why."""


@dataclass(frozen=True)
class CameraConfig:
    """The camera node's parameters, declared once (``vlac_core.config`` style)."""

    device: str = param("/dev/video0", 'V4L2 path, index ("0") or any source OpenCV opens')
    width: int = param(640, "width of the published frames, px (resized if the device will not)", low=16, high=8192)
    height: int = param(480, "height of the published frames, px", low=16, high=8192)
    rate_hz: float = param(30.0, "capture and publish rate, Hz", low=0.1, high=240.0)
    frame_id: str = param("camera", "frame_id of the published images")
    autostart: bool = param(True, "camera node: configure and activate at start-up, without a lifecycle manager")

    def __post_init__(self) -> None:
        require(isinstance(self.device, str) and bool(self.device.strip()), "device", self.device, "a path or index")
        for key in ("width", "height"):
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool), key, value, "an integer (px)")
        require_number("rate_hz", self.rate_hz)
        require(isinstance(self.frame_id, str) and bool(self.frame_id), "frame_id", self.frame_id, "a TF frame name")
        validate(self)


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # HxWx3 uint8, RGB
    stamp_s: float  # monotonic time the frame was read
    seq: int


def bgr_to_rgb(frame: object) -> np.ndarray:
    """OpenCV hands out BGR; the stack speaks RGB. Rejects anything that is not an HxWx3 uint8 image."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise CameraError(f"expected an HxWx3 uint8 BGR frame, got shape {shape} and dtype {dtype}")
    return np.ascontiguousarray(frame[:, :, ::-1])


def _source(device: str) -> int | str:
    return int(device) if device.strip().isdigit() else device


def _known_video_devices() -> str:
    found = sorted(glob.glob("/dev/video*"))
    return ", ".join(found) if found else "none"


class Camera:
    """One capture device. ``open`` then ``read`` repeatedly; ``close`` (or a ``with`` block) releases it."""

    def __init__(self, config: CameraConfig | None = None) -> None:
        self.config = config or CameraConfig()
        self._capture: cv2.VideoCapture | None = None
        self._seq = 0
        self.resized_frames = 0  # frames the device delivered at another size than requested

    def open(self) -> None:
        device = self.config.device
        source = _source(device)
        if isinstance(source, str) and source.startswith("/dev/") and not os.path.exists(source):
            raise CameraError(f"camera device {device} does not exist (video devices here: {_known_video_devices()})")
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"camera {device} could not be opened (video devices here: {_known_video_devices()}); "
                "is it in use by another process, or does this user lack access to it?"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
        capture.set(cv2.CAP_PROP_FPS, self.config.rate_hz)
        self._capture = capture

    def read(self) -> Frame:
        if self._capture is None:
            raise CameraError(f"camera {self.config.device} is not open (call open first)")
        ok, bgr = self._capture.read()
        stamp_s = time.monotonic()
        if not ok or bgr is None:
            raise CameraError(f"camera {self.config.device} returned no frame (unplugged, or end of stream)")
        size = (self.config.width, self.config.height)
        if (bgr.shape[1], bgr.shape[0]) != size:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            self.resized_frames += 1
        self._seq += 1
        return Frame(rgb=bgr_to_rgb(bgr), stamp_s=stamp_s, seq=self._seq)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> Camera:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
