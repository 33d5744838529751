"""Crash-safe checkpoint folders: safetensors for arrays, JSON for metadata, never a half-written state.

Layout under a root folder::

    root/LATEST              name of the newest complete generation, e.g. "gen-000007"
    root/gen-000007/         arrays.safetensors + meta.json (meta holds the arrays file's sha256)
    root/gen-000006/         the previous one, kept (``keep`` generations in all)

A save writes a new generation into a temporary folder, fsyncs it, renames it into place, and only
then replaces ``LATEST`` (write a temp file, fsync, ``os.replace``: atomic on POSIX). A crash at
any moment leaves ``LATEST`` naming a complete generation: the old one or the new one. Loading
checks the sha256, so a generation damaged later on disk (a bad sector, a copy cut short) is not
silently trained on: loading falls back to the newest intact generation and logs a warning that
names the damaged one; only when none is intact is it an error. No pickle: safetensors and JSON
only, and the JSON is strict: a non-finite float is stored as ``{"$float": "nan"}`` (or ``"inf"``,
``"-inf"``) and read back as that float.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

LATEST = "LATEST"
ARRAYS_FILE = "arrays.safetensors"
META_FILE = "meta.json"
_GEN_RE = re.compile(r"^gen-(\d{6})$")
_TMP_PREFIX = ".tmp-"
_FLOAT_TAG = "$float"
LOG = logging.getLogger("vlac_trainer")


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing a piece, damaged, or holds what this reader cannot read."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tag_non_finite(value: Any) -> Any:
    """Non-finite floats as ``{"$float": "nan" | "inf" | "-inf"}``: strict JSON that reads back exactly."""
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT_TAG: repr(value)}
    if isinstance(value, dict):
        return {k: _tag_non_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tag_non_finite(v) for v in value]
    return value


def _untag_non_finite(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and isinstance(obj.get(_FLOAT_TAG), str):
        return float(obj[_FLOAT_TAG])
    return obj


def _generations(root: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _GEN_RE.match(p.name)))


def _as_tensor(name: str, value: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().contiguous()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(f"array {name!r}: expected a numpy array or torch tensor, got {type(value).__name__}")


def save_checkpoint(
    root: str | Path, arrays: dict[str, np.ndarray | torch.Tensor], meta: dict[str, Any], keep: int = 2
) -> Path:
    """Write a new generation and make it the latest; returns its folder. Older ones beyond ``keep`` go."""
    if keep < 1:
        raise ValueError(f"keep={keep}: at least the newest generation must be kept")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.glob(_TMP_PREFIX + "*"):  # from a save that crashed
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    generations = _generations(root)
    name = f"gen-{(generations[-1] + 1) if generations else 1:06d}"
    tmp_dir = root / f"{_TMP_PREFIX}{name}"
    tmp_dir.mkdir()

    tensors = {key: _as_tensor(key, value) for key, value in arrays.items()}
    save_file(tensors, str(tmp_dir / ARRAYS_FILE))
    _fsync_file(tmp_dir / ARRAYS_FILE)
    payload = {"meta": _tag_non_finite(meta), "arrays_sha256": _sha256(tmp_dir / ARRAYS_FILE)}
    with open(tmp_dir / META_FILE, "w", encoding="utf-8") as f:
        json.dump(payload, f, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(tmp_dir)
    final_dir = root / name
    os.rename(tmp_dir, final_dir)
    _fsync_dir(root)

    tmp_latest = root / f"{_TMP_PREFIX}{LATEST}"
    with open(tmp_latest, "w", encoding="utf-8") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_latest, root / LATEST)
    _fsync_dir(root)

    for old in _generations(root)[:-keep]:
        shutil.rmtree(root / f"gen-{old:06d}", ignore_errors=True)
    return final_dir


def latest_generation(root: str | Path) -> Path | None:
    """The folder ``LATEST`` names, or None when ``root`` holds no checkpoint yet."""
    root = Path(root)
    latest = root / LATEST
    if not latest.exists():
        return None
    name = latest.read_text(encoding="utf-8").strip()
    if not _GEN_RE.match(name):
        raise CheckpointError(f"{latest}: names {name!r}, not a generation folder like 'gen-000001'")
    folder = root / name
    if not folder.is_dir():
        raise CheckpointError(f"{latest}: names {name!r}, which does not exist in {root}")
    return folder


def load_checkpoint(root: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(arrays, meta) of the newest intact generation, or None when there is none yet.

    The generation ``LATEST`` names comes first, then the others newest first. A damaged one is
    skipped with a warning naming it and what is wrong; CheckpointError when none is intact.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    candidates: list[Path] = []
    problems: list[str] = []
    try:
        latest = latest_generation(root)
    except CheckpointError as exc:
        latest = None
        problems.append(str(exc))
    if latest is not None:
        candidates.append(latest)
    candidates += [root / f"gen-{g:06d}" for g in reversed(_generations(root)) if root / f"gen-{g:06d}" != latest]
    if not candidates:
        if problems:
            raise CheckpointError(f"{root}: no intact checkpoint generation: {problems[0]}")
        return None
    for folder in candidates:
        try:
            loaded = _load_generation(folder)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if problems:
            LOG.warning(
                "checkpoint %s is damaged (%s); falling back to %s, the newest intact generation",
                root,
                "; ".join(problems),
                folder.name,
            )
        return loaded
    raise CheckpointError(f"{root}: no intact checkpoint generation: {'; '.join(problems)}")


def _load_generation(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(arrays, meta) of one generation folder, checked against its recorded sha256."""
    for part in (ARRAYS_FILE, META_FILE):
        if not (folder / part).is_file():
            raise CheckpointError(f"{folder}: {part} is missing")
    try:
        payload = json.loads((folder / META_FILE).read_text(encoding="utf-8"), object_hook=_untag_non_finite)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{folder / META_FILE}: not valid JSON ({exc})") from exc
    if not isinstance(payload, dict) or "meta" not in payload or "arrays_sha256" not in payload:
        raise CheckpointError(f"{folder / META_FILE}: expected keys 'meta' and 'arrays_sha256'")
    actual = _sha256(folder / ARRAYS_FILE)
    if actual != payload["arrays_sha256"]:
        raise CheckpointError(
            f"{folder / ARRAYS_FILE}: sha256 {actual} does not match {payload['arrays_sha256']} recorded at save time"
        )
    try:
        arrays = load_file(str(folder / ARRAYS_FILE))
    except Exception as exc:  # safetensors' own error types; the sha256 matched, so the writer was at fault
        raise CheckpointError(f"{folder / ARRAYS_FILE}: unreadable ({exc})") from exc
    return arrays, payload["meta"]
