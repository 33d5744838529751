"""Declare a node's parameters from its config dataclass: one declaration, validated at start-up.

The dataclass (see ``vlac_core.config``) is the single source of names, types,
defaults, ranges and descriptions; this module turns it into ROS parameter
declarations and reads the values back through the same validation the embedded
runtime uses, so a bad value in a launch file fails with the same message.

Parameters are declared with dynamic typing: a parameter file written for people says
``max_translation_mm: 60`` for a float field, which rclpy would refuse as an INTEGER
(``InvalidParameterTypeException``) before the dataclass could coerce and check it. The
dataclass is the one type check (``from_mapping``), with a message naming the node and key.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from vlac_core.config import ConfigError, describe, from_mapping

T = TypeVar("T")


def declare_config(node: Node, cls: type[T]) -> T:
    """Declare every field of ``cls`` as a parameter of ``node`` and return the validated config."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, default, description in describe(cls):
        meta = fields[name].metadata
        descriptor = ParameterDescriptor(description=description, read_only=False, dynamic_typing=True)
        low, high = meta.get("low"), meta.get("high")
        if isinstance(default, float) and low is not None and high is not None:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
        elif isinstance(default, int) and not isinstance(default, bool) and low is not None and high is not None:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high))]
        if default is None:
            default = ""  # ROS parameters cannot be None; an empty string means "not set"
        try:
            node.declare_parameter(name, list(default) if isinstance(default, tuple) else default, descriptor)
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:  # rclpy's range check
            raise ConfigError(f"{node.get_fully_qualified_name()}: {name}: {error}") from None
    values = {}
    for name in fields:
        value = node.get_parameter(name).value
        values[name] = None if value == "" and fields[name].default is None else value
    return from_mapping(cls, values, where=node.get_fully_qualified_name())
