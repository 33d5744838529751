"""Typed, validated configuration read from ROS 2 parameter files.

Each component declares its parameters once, as a dataclass whose fields carry the
type, the default and (in ``metadata``) the allowed range or choices and a
description. The same YAML file (ROS parameter-file form, one section per node)
configures the ROS nodes (through ``vlac_core.ros.params``) and the embedded
``vlac session`` runtime (through ``load_section``), so the two cannot drift apart.

A wrong value fails at start-up with a message naming the key, the value and what is
allowed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the key."""


def param(
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A dataclass field with its documentation and allowed values (checked by ``validate``)."""
    meta = {"description": description, "low": low, "high": high, "choices": choices}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML/ROS value to the field's type, or raise naming the key."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(key, value, options[0])
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if origin in (list, tuple) or annotation in (list, tuple):
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        origin = origin or annotation
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        items = [
            value_ if item_type is Any else _coerce(f"{key}[{i}]", value_, item_type) for i, value_ in enumerate(value)
        ]
        return tuple(items) if origin is tuple else items
    return value


def validate(config: Any) -> None:
    """Check every field of a config dataclass against its declared range/choices."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        low, high, choices = f.metadata.get("low"), f.metadata.get("high"), f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{f.name}: {value!r} is not one of {list(choices)}")
        if value is None or isinstance(value, (str, bool, list, tuple)):
            continue
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes every comparison below
            raise ConfigError(f"{f.name}: expected a finite number, got {value!r}")
        if low is not None and value < low:
            raise ConfigError(f"{f.name}: {value!r} is below the minimum {low}")
        if high is not None and value > high:
            raise ConfigError(f"{f.name}: {value!r} is above the maximum {high}")


def from_mapping(cls: type[T], values: Mapping[str, Any], *, where: str = "") -> T:
    """Build and validate ``cls`` from a mapping; unknown keys are errors (typos must not pass silently).

    A key the class lists in ``MOVED_KEYS`` ({key: where its value comes from now}) is refused with that
    explanation: a setting that moved elsewhere must not be silently ignored either.
    """
    prefix = f"{where}: " if where else ""
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    moved = getattr(cls, "MOVED_KEYS", {})
    moved_here = sorted(set(values) & set(moved))
    if moved_here:
        raise ConfigError(f"{prefix}{moved_here[0]}: no longer set here; {moved[moved_here[0]]}")
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{prefix}unknown key(s) {unknown}; allowed: {sorted(names)}")
    kwargs = {}
    for key, value in values.items():
        try:
            kwargs[key] = _coerce(key, value, hints[key])
        except ConfigError as error:
            raise ConfigError(f"{prefix}{error}") from None
    config = cls(**kwargs)
    try:
        validate(config)
        post = getattr(config, "check", None)
        if callable(post):
            post()
    except ConfigError as error:
        raise ConfigError(f"{prefix}{error}") from None
    return config


def load_param_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 parameter file into {node name: parameters}.

    Accepts ``node: {ros__parameters: {...}}`` sections (node names may carry a
    namespace such as ``/arm_0/episode_manager`` or the ``/**`` wildcard).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return param_sections(load_yaml_file(path) or {}, path)


def param_sections(data: Any, path: str | Path) -> dict[str, dict[str, Any]]:
    """{node name: parameters} of a parameter file's parsed YAML ``data`` (``path`` names it in errors)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of node names, got {type(data).__name__}")
    sections: dict[str, dict[str, Any]] = {}
    for node, body in data.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ConfigError(f"{path}: section {node!r} must hold a 'ros__parameters' mapping")
        params = body["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: {node}.ros__parameters must be a mapping")
        sections[str(node)] = params
    return sections


def load_yaml_file(path: str | Path) -> Any:
    """The YAML document in ``path``; malformed YAML is a ConfigError naming the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file (byte {error.start} is not UTF-8)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        context = getattr(error, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise ConfigError(f"{path}: {where}not valid YAML: {detail}") from None


def load_section(path: str | Path, section: str, cls: type[T]) -> T:
    """The validated config of one node from a parameter file (defaults when the section is absent).

    Parameters under ``/**`` apply to every node and are overridden by the node's own section.
    """
    return section_config(load_param_file(path), section, cls, where=f"{path} [{section}]")


def section_config(sections: Mapping[str, Mapping[str, Any]], section: str, cls: type[T], *, where: str = "") -> T:
    """``load_section`` over sections already read (``load_param_file``, or a session file's overlays merged)."""
    hints = {f.name for f in dataclasses.fields(cls)}
    merged = {k: v for k, v in sections.get("/**", {}).items() if k in hints}
    for name, params in sections.items():
        if name.rsplit("/", 1)[-1] == section:
            merged.update(params)
    return from_mapping(cls, merged, where=where)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` command-line overrides (``--set seed=1``) as {key: value}, each value read as YAML (``1`` an
    int, ``[a, b]`` a list, ``out/x`` a string). Why: a second seed or another output folder is one setting, not a
    copied file that drifts from its original. Checked against the section's keys where they are applied."""
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        if key in overrides:
            raise ConfigError(f"--set {key}: given twice")
        try:
            overrides[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
    return overrides


def with_overrides(sections: dict[str, dict[str, Any]], section: str, overrides: Mapping[str, Any]):
    """``sections`` (``load_param_file``'s) with ``overrides`` applied to ``section`` after the file's own values,
    however the file names it: ``section_config`` merges every section whose last part is ``section`` in order, so
    the overrides go last as a section of their own (the file's sections and their precedence stay as they are)."""
    if not overrides:
        return sections
    return {**sections, f"--set/{section}": dict(overrides)}


def describe(cls: type) -> list[tuple[str, Any, str]]:
    """(name, default, description) of every parameter, for docs and ROS parameter descriptors."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, default, f.metadata.get("description", "")))
    return rows
