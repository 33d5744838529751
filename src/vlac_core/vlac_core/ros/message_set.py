"""The message set of rclpy's generated classes, for nodes (see vlac_core.message_set)."""

from __future__ import annotations

import array
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from vlac_core.message_set import MESSAGE_TYPES, MessageSet


def _uint8_array(data: Any) -> array.array:
    # frombytes copies the buffer in one go; handing rclpy bytes or a list checks every element.
    values = array.array("B")
    values.frombytes(memoryview(data).cast("B"))
    return values


def _float32_array(values: Sequence[float]) -> array.array:
    return array.array("f", [float(v) for v in values])


def _float64_array(values: Sequence[float]) -> array.array:
    return array.array("d", [float(v) for v in values])


def rclpy_message_set() -> MessageSet:
    """The generated classes of builtin_interfaces, std_msgs, sensor_msgs and vlac_msgs.

    Needs a sourced ROS 2 workspace where vlac_msgs is built; the message packages are imported
    here, on call, so importing this module alone costs nothing.
    """
    classes = {}
    for attr, typename in MESSAGE_TYPES.items():
        package, _, name = typename.split("/")
        try:
            module = import_module(f"{package}.msg")
        except ImportError as exc:
            raise ImportError(
                f"cannot import {package}.msg for {typename}: source a ROS 2 workspace where {package} is built"
            ) from exc
        classes[attr] = getattr(module, name)
    return MessageSet(**classes, uint8_array=_uint8_array, float32_array=_float32_array, float64_array=_float64_array)
