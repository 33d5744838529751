"""ROS-only: the converters with rclpy's generated classes, and rclpy and rosbags reading each other's CDR."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="ROS-only test: rclpy is not importable (source a ROS 2 Jazzy workspace)")
pytest.importorskip("vlac_msgs.msg", reason="ROS-only test: vlac_msgs is not built in the sourced workspace")

from rclpy.serialization import deserialize_message, serialize_message

from vlac_core import convert
from vlac_core.message_set import rosbags_message_set
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.type_store import make_typestore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared sample objects live in test/
from sample_episodes import assert_episodes_equal, episode


def test_episode_round_trips_through_rclpy_serialisation():
    msgs = rclpy_message_set()
    original = episode(2)
    msg = convert.episode_to_msg(original, msgs)
    back = deserialize_message(serialize_message(msg), msgs.Episode)
    assert_episodes_equal(convert.episode_from_msg(back), original)


def test_rclpy_and_rosbags_read_each_others_cdr():
    """Bags are written by rosbags and read by ROS tools (and the reverse): the wire format must agree.

    Compared as decoded values, not bytes: Fast CDR leaves alignment padding uninitialised.
    """
    original = episode(1)
    store = make_typestore()
    rclpy_bytes = bytes(serialize_message(convert.episode_to_msg(original, rclpy_message_set())))
    rosbags_bytes = bytes(
        store.serialize_cdr(convert.episode_to_msg(original, rosbags_message_set(store)), "vlac_msgs/msg/Episode")
    )
    assert rclpy_bytes[:2] == rosbags_bytes[:2]  # the same encapsulation kind (little-endian CDR)
    from_rclpy = store.deserialize_cdr(rclpy_bytes, "vlac_msgs/msg/Episode")
    from_rosbags = deserialize_message(rosbags_bytes, rclpy_message_set().Episode)
    assert_episodes_equal(convert.episode_from_msg(from_rclpy), original)
    assert_episodes_equal(convert.episode_from_msg(from_rosbags), original)
