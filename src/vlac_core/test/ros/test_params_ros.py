"""declare_config on a live rclpy node: parameter files written for people load, bad values are named."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: declare_config needs a real node")

from rclpy.node import Node  # noqa: E402

from vlac_core.config import ConfigError, param  # noqa: E402
from vlac_core.ros.params import declare_config  # noqa: E402


@dataclass(frozen=True)
class ExampleConfig:
    max_translation_mm: float = param(50.0, "largest step, mm", low=1.0, high=200.0)
    steps: int = param(3, "steps", low=1, high=10)
    devices: tuple[str, ...] = param(("cpu",), "devices")
    checkpoint: str | None = param(None, "optional checkpoint folder")


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def node_with_file(ctx, tmp_path, params: dict, name: str = "example", namespace: str = "") -> Node:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({f"/**/{name}": {"ros__parameters": params}}))
    return Node(name, namespace=namespace, context=ctx, cli_args=["--ros-args", "--params-file", str(path)])


def test_an_integer_in_the_file_fills_a_float_field(context, tmp_path):
    node = node_with_file(
        context, tmp_path, {"max_translation_mm": 60, "devices": ["cpu", "cuda:0"]}, namespace="arm_1"
    )
    try:
        config = declare_config(node, ExampleConfig)
        assert config.max_translation_mm == 60.0 and isinstance(config.max_translation_mm, float)
        assert config.devices == ("cpu", "cuda:0") and config.steps == 3 and config.checkpoint is None
    finally:
        node.destroy_node()


def test_a_value_of_the_wrong_type_or_range_names_the_node_and_key(context, tmp_path):
    node = node_with_file(context, tmp_path, {"steps": "three"})
    try:
        with pytest.raises(ConfigError, match=r"/example: steps: expected an integer, got 'three'"):
            declare_config(node, ExampleConfig)
    finally:
        node.destroy_node()
    node = node_with_file(context, tmp_path, {"max_translation_mm": 500.0}, name="other")
    try:
        with pytest.raises(ConfigError, match=r"/other: max_translation_mm: .*500\.0.*Max: 200\.0"):
            declare_config(node, ExampleConfig)
    finally:
        node.destroy_node()
