"""numpy RGB <-> sensor_msgs/Image, through rosbags' real Jazzy message classes."""

from __future__ import annotations

import array
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlac_core.images import (
    ImageConversionError,
    image_from_msg,
    image_to_msg,
)
from vlac_core.message_set import rosbags_message_set
from vlac_core.type_store import make_typestore
from vlac_core.types import ValidationError

STORE = make_typestore()
MSGS = rosbags_message_set(STORE)


def _through_cdr(msg):
    typename = msg.__msgtype__
    return STORE.deserialize_cdr(STORE.serialize_cdr(msg, typename), typename)


def _random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _raw_msg(encoding: str, rows: np.ndarray, step: int, pad_value: int = 0xAB):
    """A sensor_msgs/Image whose rows (height x row bytes) are padded to ``step`` with ``pad_value``."""
    height, row_bytes = rows.shape
    padded = np.full((height, step), pad_value, dtype=np.uint8)
    padded[:, :row_bytes] = rows
    channels = 1 if encoding == "mono8" else 3
    return MSGS.Image(
        header=MSGS.header(3.25, "front_camera"),
        height=height,
        width=row_bytes // channels,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=padded.reshape(-1),
    )


def test_rgb8_round_trips_through_cdr_with_header():
    image = _random_image(5, 7)
    msg = _through_cdr(image_to_msg(image, MSGS, stamp_s=12.5, frame_id="front_camera"))
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 21, "rgb8")
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (12, 500_000_000, "front_camera")
    np.testing.assert_array_equal(image_from_msg(msg), image)


def test_bgr8_is_written_blue_first_and_read_back_as_rgb():
    image = np.array([[[10, 20, 30], [40, 50, 60]]], dtype=np.uint8)
    msg = image_to_msg(image, MSGS, stamp_s=0.0, encoding="bgr8")
    assert list(msg.data) == [30, 20, 10, 60, 50, 40]
    np.testing.assert_array_equal(image_from_msg(_through_cdr(msg)), image)


def test_mono8_becomes_rgb_by_repeating_the_channel():
    gray = np.array([[0, 7, 255], [1, 2, 3]], dtype=np.uint8)
    out = image_from_msg(_raw_msg("mono8", gray, step=3))
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    padding=st.integers(0, 9),
    encoding=st.sampled_from(["rgb8", "bgr8", "mono8"]),
    seed=st.integers(0, 2**16),
)
def test_row_padding_in_step_is_skipped(height, width, padding, encoding, seed):
    channels = 1 if encoding == "mono8" else 3
    rows = np.random.default_rng(seed).integers(0, 256, size=(height, width * channels), dtype=np.uint8)
    out = image_from_msg(_raw_msg(encoding, rows, step=width * channels + padding))
    pixels = rows.reshape(height, width, channels)
    expected = {"rgb8": pixels, "bgr8": pixels[..., ::-1], "mono8": np.repeat(pixels, 3, axis=2)}[encoding]
    np.testing.assert_array_equal(out, expected)


def test_result_owns_its_memory():
    msg = image_to_msg(_random_image(2, 2), MSGS, stamp_s=0.0)
    out = image_from_msg(msg)
    assert out.flags.owndata and out.flags.writeable


def test_rclpy_style_array_data_is_read():
    image = _random_image(3, 4)
    msg = image_to_msg(image, MSGS, stamp_s=0.0)
    as_rclpy = dataclasses.replace(msg, data=array.array("B", msg.data.tobytes()))
    np.testing.assert_array_equal(image_from_msg(as_rclpy), image)


@pytest.mark.parametrize("encoding", ["rgba8", "16UC1", "RGB8", "bayer_rggb8", ""])
def test_unsupported_encoding_is_rejected_by_name(encoding):
    msg = dataclasses.replace(image_to_msg(_random_image(2, 2), MSGS, stamp_s=0.0), encoding=encoding)
    with pytest.raises(ImageConversionError, match=rf"encoding '{encoding}' is not supported.*rgb8, bgr8, mono8"):
        image_from_msg(msg)


def test_data_size_that_does_not_match_step_times_height_is_rejected():
    msg = image_to_msg(_random_image(4, 4), MSGS, stamp_s=0.0)
    short = dataclasses.replace(msg, data=msg.data[:-1])
    with pytest.raises(ImageConversionError, match=r"data has 47 bytes; step 12 x height 4 needs 48"):
        image_from_msg(short)


def test_step_shorter_than_a_row_is_rejected():
    msg = dataclasses.replace(image_to_msg(_random_image(2, 4), MSGS, stamp_s=0.0), step=11)
    with pytest.raises(ImageConversionError, match=r"step 11 < one row of 4 rgb8 pixels \(12 bytes\)"):
        image_from_msg(msg)


def test_empty_image_message_is_rejected():
    msg = _raw_msg("rgb8", np.zeros((0, 6), dtype=np.uint8), step=6)
    with pytest.raises(ImageConversionError, match="empty image"):
        image_from_msg(msg)


def test_writing_rejects_non_rgb_arrays_and_unknown_encodings():
    with pytest.raises(ValidationError, match="HxWx3"):
        image_to_msg(np.zeros((2, 2), dtype=np.uint8), MSGS, stamp_s=0.0)
    with pytest.raises(ImageConversionError, match="encoding 'mono8' cannot be written"):
        image_to_msg(_random_image(2, 2), MSGS, stamp_s=0.0, encoding="mono8")
