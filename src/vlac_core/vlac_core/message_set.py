"""The message classes of one ROS binding, so converters serve rclpy at run time and rosbags in tests.

Converters build messages only through a :class:`MessageSet`: every field is passed as a keyword
(rosbags dataclasses have no defaults) and primitive arrays are built by the set's array
functions, because the two bindings disagree there: rosbags wants numpy arrays, while rclpy's
generated setters reject numpy and take ``array.array`` (or lists and bytes, slowly).
Reading works the same for both: numpy and ``array.array`` expose the buffer protocol.

:func:`rosbags_message_set` lives here; the rclpy one is in ``vlac_core.ros.message_set`` because it
imports ROS message packages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_NS_PER_S = 1_000_000_000
_INT32_MAX_S = 2**31 - 1

#: Message classes a set carries: attribute name -> ROS 2 type name.
MESSAGE_TYPES = {
    "Time": "builtin_interfaces/msg/Time",
    "Header": "std_msgs/msg/Header",
    "Image": "sensor_msgs/msg/Image",
    "CompressedImage": "sensor_msgs/msg/CompressedImage",
    "EndPose": "vlac_msgs/msg/EndPose",
    "DeltaAction": "vlac_msgs/msg/DeltaAction",
    "Observation": "vlac_msgs/msg/Observation",
    "PolicyAction": "vlac_msgs/msg/PolicyAction",
    "Transition": "vlac_msgs/msg/Transition",
    "Episode": "vlac_msgs/msg/Episode",
    "EpisodeSummary": "vlac_msgs/msg/EpisodeSummary",
    "Progress": "vlac_msgs/msg/Progress",
    "Done": "vlac_msgs/msg/Done",
    "PolicyVersion": "vlac_msgs/msg/PolicyVersion",
}


@dataclass(frozen=True)
class MessageSet:
    """Message classes (named as in ``from vlac_msgs.msg import Observation``) and array builders."""

    Time: type  # attributes are named like the ROS classes they hold
    Header: type
    Image: type
    CompressedImage: type
    EndPose: type
    DeltaAction: type
    Observation: type
    PolicyAction: type
    Transition: type
    Episode: type
    EpisodeSummary: type
    Progress: type
    Done: type
    PolicyVersion: type
    #: bytes-like (bytes, contiguous numpy array) -> the binding's uint8[] value
    uint8_array: Callable[[Any], Any]
    #: sequence of floats -> the binding's float32[] value
    float32_array: Callable[[Sequence[float]], Any]
    #: sequence of floats -> the binding's float64[] value
    float64_array: Callable[[Sequence[float]], Any]

    def time(self, stamp_s: float) -> Any:
        """A builtin_interfaces/Time for ``stamp_s`` seconds (1 ns resolution)."""
        sec, nanosec = split_stamp_s(stamp_s)
        return self.Time(sec=sec, nanosec=nanosec)

    def header(self, stamp_s: float, frame_id: str = "") -> Any:
        """A std_msgs/Header stamped ``stamp_s`` seconds."""
        return self.Header(stamp=self.time(stamp_s), frame_id=frame_id)


def split_stamp_s(stamp_s: float) -> tuple[int, int]:
    """Seconds as a float -> (sec, nanosec) of builtin_interfaces/Time, nanosec in 0..999999999."""
    if isinstance(stamp_s, bool) or not isinstance(stamp_s, (int, float, np.integer, np.floating)):
        raise ValueError(f"stamp_s: expected a number of seconds, got {stamp_s!r}")
    if not math.isfinite(stamp_s):
        raise ValueError(f"stamp_s: expected a finite number of seconds, got {stamp_s!r}")
    sec = math.floor(stamp_s)
    nanosec = round((stamp_s - sec) * _NS_PER_S)  # the difference is exact in floating point
    if nanosec == _NS_PER_S:
        sec, nanosec = sec + 1, 0
    if not -(2**31) <= sec <= _INT32_MAX_S:
        raise ValueError(f"stamp_s: {stamp_s!r} s does not fit builtin_interfaces/Time (int32 seconds)")
    return int(sec), int(nanosec)


def stamp_s_from_time(time_msg: Any) -> float:
    """builtin_interfaces/Time -> seconds as a float."""
    if not 0 <= time_msg.nanosec < _NS_PER_S:
        raise ValueError(f"builtin_interfaces/Time.nanosec: expected 0..999999999, got {time_msg.nanosec}")
    return time_msg.sec + time_msg.nanosec / _NS_PER_S


def rosbags_message_set(store: Any = None) -> MessageSet:
    """The message set of a rosbags type store (default: :func:`vlac_core.type_store.make_typestore`)."""
    if store is None:
        from vlac_core.type_store import make_typestore

        store = make_typestore()
    missing = [name for name in MESSAGE_TYPES.values() if name not in store.types]
    if missing:
        raise ValueError(f"type store lacks {', '.join(missing)}; build it with vlac_core.type_store.make_typestore")
    return MessageSet(
        **{attr: store.types[name] for attr, name in MESSAGE_TYPES.items()},
        uint8_array=lambda data: np.frombuffer(data, dtype=np.uint8),
        float32_array=lambda values: np.asarray(values, dtype=np.float32),
        float64_array=lambda values: np.asarray(values, dtype=np.float64),
    )
