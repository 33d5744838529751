"""The project's JSON on disk: strict (no NaN or Infinity), written atomically, appended crash-safely.

Why: Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which other JSON readers (jq,
JavaScript, most JSON libraries) reject, so one NaN loss of a warm-up update made a whole
``summary.json`` unreadable. Here a non-finite float becomes ``null`` (the value is unknown), and
``allow_nan=False`` makes anything that slips past that an error instead of bad output.

JSON Lines files (``episodes.jsonl``, ``evaluations.jsonl``) grow one fsynced line per record. A
crash can cut the last line short; :func:`append_jsonl` first ends such a line, so the next record
is never glued onto it, and :func:`read_jsonl` / :func:`repair_jsonl` set it apart.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: Suffix of the file that keeps JSONL lines a crash cut short (kept, not silently dropped).
DAMAGED_SUFFIX = ".damaged"


def strict(value: Any, where: str = "$") -> Any:
    """``value`` with non-finite floats as None, numpy scalars/arrays and tuples as plain JSON types.

    Raises TypeError naming the path (``$.trainer.history[2]``) of anything JSON has no form for.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return strict(value.tolist(), where)
    if isinstance(value, Mapping):
        return {str(k): strict(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where}: {type(value).__name__} has no JSON form")


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value`` (see :func:`strict`)."""
    return json.dumps(strict(value), allow_nan=False, **kwargs)


def write_json(path: str | Path, data: Any, *, indent: int | None = 2) -> Path:
    """Strict JSON, atomically (temp file, fsync, rename): a crash never leaves half a file."""
    path = Path(path)
    text = dumps(data, indent=indent) + "\n"  # fails before anything is written
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def append_jsonl(path: str | Path, record: Mapping[str, Any], *, fsync: bool = True) -> None:
    """Append ``record`` as one line; a last line cut short by a crash is ended first, not extended."""
    line = (dumps(record) + "\n").encode("utf-8")
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def _parse_lines(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    records, damaged = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            damaged.append(line)
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged.append(line)
    return records, damaged


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every whole record of a JSONL file ([] when it does not exist); damaged lines are skipped."""
    path = Path(path)
    if not path.exists():
        return []
    return _parse_lines(path.read_text(encoding="utf-8", errors="replace"))[0]


def repair_jsonl(path: str | Path) -> int:
    """Move lines that are not whole JSON records to ``<path>.damaged``; returns how many moved.

    Run by the one process that owns the file, before it appends: the good lines are rewritten
    atomically, so a crash during the repair leaves the old file or the repaired one.
    """
    path = Path(path)
    if not path.exists():
        return 0
    text = path.read_text(encoding="utf-8", errors="replace")
    records, damaged = _parse_lines(text)
    if not damaged and (not text or text.endswith("\n")):
        return 0
    if damaged:
        with open(path.with_name(path.name + DAMAGED_SUFFIX), "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in damaged))
            f.flush()
            os.fsync(f.fileno())
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(damaged)
