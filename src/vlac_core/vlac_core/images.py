"""Camera images between the core's HxWx3 uint8 RGB arrays and sensor_msgs Image.

No cv_bridge: it is a ROS package (not importable in the core) and only a few encodings are
needed. Raw images honour ``step`` (rows may be padded, as some camera drivers do). Anything else
fails with an error that names what was wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vlac_core.message_set import MessageSet
from vlac_core.types import check_image

#: Raw encodings read by :func:`image_from_msg` -> channels per pixel.
READ_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
#: Raw encodings :func:`image_to_msg` writes.
WRITE_ENCODINGS = ("rgb8", "bgr8")


class ImageConversionError(ValueError):
    """An image message cannot be converted; the message names the field or value at fault."""


def image_to_msg(image: np.ndarray, msgs: MessageSet, *, stamp_s: float, frame_id: str = "", encoding: str = "rgb8"):
    """HxWx3 uint8 RGB -> sensor_msgs/Image (``rgb8`` or ``bgr8``, unpadded rows)."""
    check_image(image)
    if encoding not in WRITE_ENCODINGS:
        raise ImageConversionError(f"encoding {encoding!r} cannot be written; use one of {', '.join(WRITE_ENCODINGS)}")
    pixels = image[..., ::-1] if encoding == "bgr8" else image
    height, width, _ = image.shape
    return msgs.Image(
        header=msgs.header(stamp_s, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * 3,
        data=msgs.uint8_array(np.ascontiguousarray(pixels)),
    )


def image_from_msg(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, mono8; any ``step`` padding) -> a new HxWx3 uint8 RGB array.

    mono8 becomes RGB by repeating the channel, so every consumer sees the same shape.
    """
    encoding = msg.encoding
    if encoding not in READ_ENCODINGS:
        raise ImageConversionError(
            f"sensor_msgs/Image.encoding {encoding!r} is not supported; expected one of {', '.join(READ_ENCODINGS)}"
        )
    channels = READ_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f"sensor_msgs/Image: empty image of height {height} and width {width}")
    if step < width * channels:
        raise ImageConversionError(
            f"sensor_msgs/Image.step {step} < one row of {width} {encoding} pixels ({width * channels} bytes)"
        )
    data = _uint8_view(msg.data)
    if data.size != step * height:
        raise ImageConversionError(
            f"sensor_msgs/Image.data has {data.size} bytes; step {step} x height {height} needs {step * height}"
        )
    pixels = data.reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if encoding == "bgr8":
        pixels = pixels[..., ::-1]
    elif encoding == "mono8":
        pixels = np.repeat(pixels, 3, axis=2)
    return np.array(pixels, dtype=np.uint8, order="C")  # a copy: the message buffer may be reused


def _uint8_view(data: Any) -> np.ndarray:
    """uint8[] of either binding (numpy, array.array, bytes, list) as a flat uint8 array."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageConversionError(f"image data: expected uint8 values, got dtype {data.dtype}")
        return data.reshape(-1)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:  # a plain list of ints
        values = np.asarray(data)
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ImageConversionError("image data: values outside 0..255") from None
        return values.astype(np.uint8).reshape(-1)
