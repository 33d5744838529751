"""Every vlac_msgs definition parses with the ROS 2 Jazzy type store and round-trips through CDR."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.interfaces import Nodetype

from vlac_core import type_store
from vlac_core.type_store import InterfaceError, make_typestore, vlac_type_names

SOURCE_DIR = Path(__file__).resolve().parents[2] / "vlac_msgs"
STORE = make_typestore(SOURCE_DIR)

_NUMPY_DTYPES = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def _expected_type_names() -> set[str]:
    names = set()
    for path in (SOURCE_DIR / "msg").glob("*.msg"):
        names.add(f"vlac_msgs/msg/{path.stem}")
    for path in (SOURCE_DIR / "srv").glob("*.srv"):
        names |= {f"vlac_msgs/srv/{path.stem}_Request", f"vlac_msgs/srv/{path.stem}_Response"}
    for path in (SOURCE_DIR / "action").glob("*.action"):
        for part in ("Goal", "Result", "Feedback", "FeedbackMessage"):
            names.add(f"vlac_msgs/action/{path.stem}_{part}")
        for part in ("SendGoal", "GetResult"):
            names |= {f"vlac_msgs/action/{path.stem}_{part}_Request", f"vlac_msgs/action/{path.stem}_{part}_Response"}
    return names


def test_every_definition_file_is_registered_under_its_rosidl_name():
    assert len(list(SOURCE_DIR.glob("*/*.*"))) >= 13  # the files the issue asks for exist
    assert set(vlac_type_names(STORE)) == _expected_type_names()


def test_bare_references_in_services_and_actions_resolve_to_package_messages():
    request_fields = dict(STORE.fielddefs["vlac_msgs/srv/GetAction_Request"][1])
    assert request_fields["observation"] == (Nodetype.NAME, "vlac_msgs/msg/Observation")
    result_fields = dict(STORE.fielddefs["vlac_msgs/action/ResetArm_Result"][1])
    assert result_fields["end_pose"] == (Nodetype.NAME, "vlac_msgs/msg/EndPose")


class _Values:
    """Distinct, non-default values so a field lost in serialisation cannot go unnoticed."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def base(self, name: str):
        n = next(self._counter)
        if name == "bool":
            return n % 2 == 1
        if name == "string":
            return f"text {n} ✓"
        if name.startswith("float"):
            return n + 0.5  # exactly representable in float32
        return n % 100

    def array(self, name: str, length: int) -> np.ndarray:
        return np.array([self.base(name) for _ in range(length)], dtype=_NUMPY_DTYPES[name])


def _populate(store, typename: str, values: _Values):
    kwargs = {}
    for field_name, (node, spec) in store.fielddefs[typename][1]:
        kwargs[field_name] = _value(store, node, spec, values)
    return store.types[typename](**kwargs)


def _value(store, node, spec, values: _Values):
    if node == Nodetype.BASE:
        return values.base(spec[0])
    if node == Nodetype.NAME:
        return _populate(store, spec, values)
    (inner_node, inner_spec), length = spec
    length = length or 2
    if inner_node == Nodetype.BASE and inner_spec[0] != "string":
        return values.array(inner_spec[0], length)
    return [_value(store, inner_node, inner_spec, values) for _ in range(length)]


def _assert_same(a, b, path: str) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    elif hasattr(a, "__msgtype__"):
        assert a.__msgtype__ == b.__msgtype__, path
        for name in a.__dataclass_fields__:
            if name != "__msgtype__":
                _assert_same(getattr(a, name), getattr(b, name), f"{path}.{name}")
    else:
        assert a == b, path


@pytest.mark.parametrize("typename", sorted(_expected_type_names()))
def test_populated_instance_round_trips_through_cdr(typename):
    message = _populate(STORE, typename, _Values())
    data = STORE.serialize_cdr(message, typename)
    _assert_same(message, STORE.deserialize_cdr(data, typename), typename)


def test_installed_definitions_are_preferred_over_the_source_tree(tmp_path, monkeypatch):
    share = tmp_path / "prefix" / "share" / "vlac_msgs"
    shutil.copytree(SOURCE_DIR / "msg", share / "msg")
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{tmp_path / 'empty_prefix'}:{tmp_path / 'prefix'}")
    assert type_store.find_interface_dir() == share


@pytest.mark.skipif(
    not Path(type_store.__file__).resolve().is_relative_to(SOURCE_DIR.parent),
    reason="vlac_core is imported from an install, where the source-tree fallback does not apply",
)
def test_source_tree_is_used_without_an_install(monkeypatch):
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    assert type_store.find_interface_dir() == SOURCE_DIR


def test_missing_definitions_name_the_searched_places(tmp_path, monkeypatch):
    monkeypatch.setattr(type_store, "candidate_dirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(InterfaceError, match=r"no vlac_msgs definitions found .*nowhere"):
        type_store.find_interface_dir()


def _broken_copy(tmp_path: Path, relative: str, text: str) -> Path:
    copy = tmp_path / "vlac_msgs"
    shutil.copytree(SOURCE_DIR, copy)
    (copy / relative).write_text(text, encoding="utf-8")
    return copy


@pytest.mark.parametrize(
    ("relative", "text", "message"),
    [
        ("msg/EndPose.msg", "float64 x_mm\nfloat64[ y_mm\n", r"EndPose\.msg: part 'EndPose' does not parse"),
        ("msg/EndPose.msg", "float64 x_mm\nflaot64 y_mm\n", r"EndPose\.msg: field 'y_mm' .* unknown type"),
        ("msg/EndPose.msg", "float64 X_mm\n", r"EndPose\.msg: field name 'X_mm'"),
        ("srv/ScoreDone.srv", "string task\nbool ok\n", r"ScoreDone\.srv: a \.srv file has 2 part\(s\).*found 1"),
        ("action/ResetArm.action", "string mode\n---\nbool ok\n", r"ResetArm\.action: a \.action file has 3"),
        ("msg/Episode.msg", "EpisodeStats stats\n", r"Episode\.msg: .*'vlac_msgs/msg/EpisodeStats"),
    ],
)
def test_broken_definition_fails_with_the_file_and_the_problem(tmp_path, relative, text, message):
    with pytest.raises(InterfaceError, match=message):
        make_typestore(_broken_copy(tmp_path, relative, text))
