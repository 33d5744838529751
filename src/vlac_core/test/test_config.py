"""Config dataclasses from ROS parameter files: wrong values fail naming key, value and what is allowed."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from vlac_core.config import (
    ConfigError,
    describe,
    from_mapping,
    load_param_file,
    load_section,
    param,
    parse_overrides,
    section_config,
    with_overrides,
)


@dataclass
class ExampleConfig:
    rate_hz: float = param(5.0, "scoring rate", low=0.1, high=100.0)
    skip: int = param(5, "frames between scored pairs", low=1, high=50)
    backend: str = param("torch", "inference backend", choices=("torch", "vllm"))
    checkpoint: str | None = param(None, "checkpoint directory")
    enabled: bool = param(True, "run at all")
    cameras: list = param(["front"], "camera names")


def test_defaults_build_and_describe_lists_every_parameter():
    config = from_mapping(ExampleConfig, {})
    assert config == ExampleConfig()
    names = [row[0] for row in describe(ExampleConfig)]
    assert names == ["rate_hz", "skip", "backend", "checkpoint", "enabled", "cameras"]
    assert describe(ExampleConfig)[0] == ("rate_hz", 5.0, "scoring rate")


@dataclass
class MovedConfig:
    MOVED_KEYS: ClassVar[dict[str, str]] = {"limit_mm": "it comes from the model's own settings file"}
    rate_hz: float = param(5.0, "scoring rate", low=0.1, high=100.0)


def test_a_key_that_moved_elsewhere_is_refused_saying_where_it_comes_from():
    with pytest.raises(ConfigError, match=r"^f\.yaml: limit_mm: no longer set here; it comes from the model's own"):
        from_mapping(MovedConfig, {"rate_hz": 2.0, "limit_mm": 40}, where="f.yaml")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['limit'\]"):  # any other key: unknown as before
        from_mapping(MovedConfig, {"limit": 40})


def test_integers_are_accepted_for_floats():
    assert from_mapping(ExampleConfig, {"rate_hz": 2}).rate_hz == 2.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rate_hz": 0.0}, "rate_hz: 0.0 is below the minimum 0.1"),
        ({"skip": 51}, "skip: 51 is above the maximum 50"),
        ({"skip": 2.5}, "skip: expected an integer, got 2.5"),
        ({"backend": "onnx"}, "backend: 'onnx' is not one of \\['torch', 'vllm'\\]"),
        ({"enabled": "yes"}, "enabled: expected true or false"),
        ({"rate_hz": float("nan")}, "rate_hz: expected a finite number"),
        ({"ratehz": 1.0}, "unknown key\\(s\\) \\['ratehz'\\]"),
        ({"cameras": "front"}, "cameras: expected a list"),
    ],
)
def test_bad_values_fail_naming_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(ExampleConfig, values)


def test_param_file_sections_and_wildcard(tmp_path):
    path = tmp_path / "session.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    rate_hz: 2.0\n    unrelated: 1\n"
        "critic_node:\n  ros__parameters:\n    skip: 3\n"
        "/arm_0/other_node:\n  ros__parameters:\n    skip: 9\n"
    )
    assert set(load_param_file(path)) == {"/**", "critic_node", "/arm_0/other_node"}
    config = load_section(path, "critic_node", ExampleConfig)
    assert (config.rate_hz, config.skip) == (2.0, 3)
    assert load_section(path, "other_node", ExampleConfig).skip == 9
    assert load_section(path, "absent_node", ExampleConfig).skip == 5


def test_command_line_overrides_are_yaml_values_applied_after_the_files_own(tmp_path):
    assert parse_overrides(
        ["skip=7", "cameras=[front, wrist]", "checkpoint=out/x", "enabled=false", "rate_hz=2.5"]
    ) == {
        "skip": 7,
        "cameras": ["front", "wrist"],
        "checkpoint": "out/x",
        "enabled": False,
        "rate_hz": 2.5,
    }
    assert parse_overrides(None) == {} and parse_overrides(["checkpoint="]) == {"checkpoint": None}
    path = tmp_path / "session.yaml"
    path.write_text(
        "/**:\n  ros__parameters:\n    rate_hz: 2.0\n"
        "/arm_0/critic_node:\n  ros__parameters:\n    skip: 3\n    backend: vllm\n"
    )
    sections = with_overrides(load_param_file(path), "critic_node", parse_overrides(["skip=9", "rate_hz=4"]))
    config = section_config(sections, "critic_node", ExampleConfig)
    assert (config.skip, config.rate_hz, config.backend) == (9, 4.0, "vllm")  # overrides win, the rest is the file's
    assert with_overrides(load_param_file(path), "critic_node", {}) == load_param_file(path)
    two = {"critic_node": {"skip": 3}, "/arm_0/critic_node": {"skip": 4}}  # the file's own order still decides
    assert section_config(with_overrides(two, "critic_node", {"rate_hz": 4}), "critic_node", ExampleConfig).skip == 4
    with pytest.raises(ConfigError, match=r"skip: 0 is below the minimum 1"):  # validated like the file's values
        section_config(with_overrides({}, "critic_node", {"skip": 0}), "critic_node", ExampleConfig)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["skip"], "--set 'skip': expected key=value"),
        (["=3"], "--set '=3': expected key=value"),
        (["skip=1", "skip=2"], "--set skip: given twice"),
        (["cameras=[front"], "--set 'cameras=\\[front': the value is not valid YAML"),
    ],
)
def test_bad_overrides_fail_naming_the_item(items, message):
    with pytest.raises(ConfigError, match=message):
        parse_overrides(items)


def test_param_file_errors_name_the_file_and_section(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("critic_node:\n  ros__parameters:\n    skip: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml \[critic_node\]: skip: 0 is below the minimum 1"):
        load_section(path, "critic_node", ExampleConfig)
    path.write_text("critic_node:\n  skip: 3\n")
    with pytest.raises(ConfigError, match="must hold a 'ros__parameters' mapping"):
        load_param_file(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_param_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sim_node:\n  ros__parameters:\n    task: [pick_bowl\n",
            r"line 4, column 1: not valid YAML: expected ',' or '\]', but got '<stream end>'",
        ),
        ("a: 1\n b: 2\n", "line 2, column 3: not valid YAML: mapping values are not allowed here"),
    ],
    ids=["unclosed-list", "bad-indent"],
)
def test_malformed_yaml_names_the_file_line_and_column(tmp_path, text, message):
    path = tmp_path / "session.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{path}: {message}") as info:
        load_param_file(path)
    assert "<unicode string>" not in str(info.value)


def test_binary_file_as_config_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(ConfigError, match=rf"^{path}: not a text file \(byte 1 is not UTF-8\)"):
        load_param_file(path)
