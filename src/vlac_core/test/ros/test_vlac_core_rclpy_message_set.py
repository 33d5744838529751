"""ROS-only: the converters with rclpy's generated classes, checked byte for byte against rosbags.

Runs where a ROS 2 workspace with vlac_msgs is sourced (the docker image); skipped elsewhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="ROS-only test: rclpy is not importable (source a ROS 2 Jazzy workspace)")
pytest.importorskip("vlac_msgs.msg", reason="ROS-only test: vlac_msgs is not built in the sourced workspace")

from rclpy.serialization import deserialize_message, serialize_message

from vlac_core import convert
from vlac_core.interfaces import make_typestore
from vlac_core.message_set import rosbags_message_set
from vlac_core.ros.message_set import rclpy_message_set

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared sample objects live in test/
from sample_episodes import assert_episodes_equal, episode


def test_episode_round_trips_through_rclpy_serialisation():
    msgs = rclpy_message_set()
    original = episode(2)
    msg = convert.episode_to_msg(original, msgs)
    back = deserialize_message(serialize_message(msg), msgs.Episode)
    assert_episodes_equal(convert.episode_from_msg(back), original)


def test_rclpy_and_rosbags_produce_the_same_cdr_bytes():
    original = episode(1)
    rclpy_bytes = serialize_message(convert.episode_to_msg(original, rclpy_message_set()))
    store = make_typestore()
    rosbags_bytes = store.serialize_cdr(
        convert.episode_to_msg(original, rosbags_message_set(store)), "vlac_msgs/msg/Episode"
    )
    # Same encapsulation kind and payload; the options bytes and trailing alignment padding may differ.
    assert bytes(rclpy_bytes)[:2] == bytes(rosbags_bytes)[:2]
    assert bytes(rclpy_bytes)[4:].rstrip(b"\0") == bytes(rosbags_bytes)[4:].rstrip(b"\0")
