"""A rosbags type store that knows ROS 2 Jazzy and every vlac_msgs message, service and action.

Message conversion and episode bags are tested without ROS through this store: it parses
the same ``.msg``/``.srv``/``.action`` files that ``rosidl_generate_interfaces`` compiles, so a
definition that does not parse, or a field a converter forgets, fails here and not on the robot.

Type names follow rosidl: ``vlac_msgs/msg/X``; a service ``X`` becomes ``vlac_msgs/srv/X_Request``
and ``X_Response``; an action ``X`` becomes ``vlac_msgs/action/X_Goal``, ``X_Result`` and
``X_Feedback`` plus the wrappers rosidl generates around them (``X_SendGoal_Request/Response``,
``X_GetResult_Request/Response``, ``X_FeedbackMessage``), which are what an action's topics and
services carry on the wire.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "vlac_msgs"

#: Interface kind (sub-folder) -> the rosidl names of its parts, in file order.
_PARTS = {
    "msg": ("",),
    "srv": ("_Request", "_Response"),
    "action": ("_Goal", "_Result", "_Feedback"),
}
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class InterfaceError(ValueError):
    """A vlac_msgs definition is missing or malformed; the message names the file and the problem."""


def candidate_dirs() -> list[Path]:
    """Where vlac_msgs definitions are looked for, in order.

    First every ``AMENT_PREFIX_PATH`` entry's ``share/vlac_msgs`` (an installed, possibly newer
    package wins), then the source tree beside this package (``src/vlac_msgs``), which is what
    a checkout without a colcon build has.
    """
    dirs = [Path(p) / "share" / PACKAGE for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / PACKAGE)
    return dirs


def find_interface_dir() -> Path:
    """Return the first candidate directory that holds a ``msg/`` folder of ``.msg`` files."""
    searched = candidate_dirs()
    for directory in searched:
        if any((directory / "msg").glob("*.msg")):
            return directory
    listing = ", ".join(str(d) for d in searched)
    raise InterfaceError(
        f"no {PACKAGE} definitions found (looked for msg/*.msg in: {listing}); "
        f"source a workspace that installs {PACKAGE} or run from a source checkout"
    )


def interface_files(interface_dir: Path) -> list[Path]:
    """All definition files under ``interface_dir``, sorted by kind and name."""
    return [path for kind in _PARTS for path in sorted((interface_dir / kind).glob(f"*.{kind}"))]


def parse_interface_file(path: Path, package: str = PACKAGE) -> dict:
    """Parse one ``.msg``/``.srv``/``.action`` file into rosbags type definitions keyed by rosidl name."""
    kind = path.suffix.lstrip(".")
    if kind not in _PARTS:
        raise InterfaceError(f"{path}: unknown interface kind {path.suffix!r}; expected .msg, .srv or .action")
    parts = _SEPARATOR.split(path.read_text(encoding="utf-8"))
    suffixes = _PARTS[kind]
    if len(parts) != len(suffixes):
        raise InterfaceError(
            f"{path}: a .{kind} file has {len(suffixes)} part(s) separated by '---' lines, found {len(parts)}"
        )
    types: dict = {}
    for text, suffix in zip(parts, suffixes, strict=True):
        name = f"{path.stem}{suffix}"
        # Parsed under msg/ so bare references ("Observation") resolve to this package's messages,
        # as rosidl resolves them; then renamed to the srv/ or action/ name rosidl gives the part.
        parsed_name = f"{package}/msg/{name}"
        try:
            parsed = get_types_from_msg(text, parsed_name)
        except TypesysError as exc:
            raise InterfaceError(f"{path}: part {name!r} does not parse: {exc}") from exc
        for field_name, _ in parsed[parsed_name][1]:
            if not _FIELD_NAME.match(field_name):
                raise InterfaceError(f"{path}: field name {field_name!r} in {name!r} is not a valid ROS 2 field name")
        types[f"{package}/{kind}/{name}"] = parsed[parsed_name]
    if kind == "action":
        types.update(_action_wrappers(path.stem, package))
    return types


def _action_wrappers(action: str, package: str) -> dict:
    """The goal/result/feedback wrappers rosidl generates for an action (see action_msgs)."""
    base = f"{package}/action/{action}"
    texts = {
        "_SendGoal_Request": f"unique_identifier_msgs/UUID goal_id\n{base}_Goal goal\n",
        "_SendGoal_Response": "bool accepted\nbuiltin_interfaces/Time stamp\n",
        "_GetResult_Request": "unique_identifier_msgs/UUID goal_id\n",
        "_GetResult_Response": f"int8 status\n{base}_Result result\n",
        "_FeedbackMessage": f"unique_identifier_msgs/UUID goal_id\n{base}_Feedback feedback\n",
    }
    types = {}
    for suffix, text in texts.items():
        name = f"{base}{suffix}"
        types[name] = get_types_from_msg(text, name)[name]
    return types


def _check_references(types: dict, store: Typestore, origin: dict[str, Path]) -> None:
    """Fail on a field whose type is neither standard nor defined here (rosbags would only fail on use)."""
    known = set(store.fielddefs) | set(types)
    for typename, (_, fields) in types.items():
        for field_name, desc in fields:
            ref = _referenced_type(desc)
            if ref is not None and ref not in known:
                where = origin.get(typename, typename)
                raise InterfaceError(
                    f"{where}: field {field_name!r} of {typename} has unknown type {ref!r} "
                    "(not a ROS 2 Jazzy standard type and not defined in this package)"
                )


def _referenced_type(desc: tuple) -> str | None:
    node, value = desc
    if node == Nodetype.NAME:
        return value
    if node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return _referenced_type(value[0])
    return None


def make_typestore(interface_dir: Path | None = None) -> Typestore:
    """Return a fresh ROS 2 Jazzy type store with every vlac_msgs type registered.

    ``interface_dir`` overrides the search of :func:`find_interface_dir` (tests use it to load a
    deliberately broken copy). A new store is returned each call because stores are mutable.
    """
    directory = interface_dir if interface_dir is not None else find_interface_dir()
    files = interface_files(directory)
    if not files:
        raise InterfaceError(f"{directory}: no .msg, .srv or .action files found")
    types: dict = {}
    origin: dict[str, Path] = {}
    for path in files:
        parsed = parse_interface_file(path)
        types.update(parsed)
        origin.update(dict.fromkeys(parsed, path))
    store = get_typestore(Stores.ROS2_JAZZY)
    _check_references(types, store, origin)
    store.register(types)
    return store


def vlac_type_names(store: Typestore) -> list[str]:
    """Every registered vlac_msgs type name, sorted."""
    return sorted(name for name in store.fielddefs if name.startswith(f"{PACKAGE}/"))
