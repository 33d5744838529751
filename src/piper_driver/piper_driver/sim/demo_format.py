"""The fast training format of simulated episodes: one compressed ``.npz`` per episode.

Bags (rosbag2/MCAP) are the record of what happened and what ROS tools read; training wants
arrays it can load in milliseconds without a type store. Each file holds the arrays of an
``EpisodeRecord`` plus a small JSON header (format version, task, text, seed, variant, ground
truth). No pickle: ``np.load(..., allow_pickle=False)`` reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from piper_driver.sim.rollout import EpisodeRecord

FORMAT_NAME = "vlac_sim_episode"
FORMAT_VERSION = 1
_ARRAYS = ("front_images", "end_poses", "gripper_mm", "joints_rad", "stamps_s", "actions", "success_steps")


class DemoFormatError(ValueError):
    """A file is not a readable episode of this format; the message names the file and the problem."""


def save_episode_npz(path: Path | str, record: EpisodeRecord) -> Path:
    """Write ``record`` to ``path`` (``.npz`` added if missing), via a temporary file then rename."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "task": record.task,
        "text": record.text,
        "seed": int(record.seed),
        "variant": record.variant,
        "success": bool(record.success),
        "meta": record.meta,
    }
    arrays = {name: getattr(record, name) for name in _ARRAYS}
    if record.wrist_images is not None:
        arrays["wrist_images"] = record.wrist_images
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez_compressed(handle, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    partial.replace(path)
    return path


def load_episode_npz(path: Path | str) -> EpisodeRecord:
    """Read an episode written by ``save_episode_npz``; shapes are checked against each other."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            arrays = {name: data[name] for name in _ARRAYS}
            wrist = data["wrist_images"] if "wrist_images" in data.files else None
    except (OSError, KeyError, ValueError) as error:
        raise DemoFormatError(f"{path}: not a {FORMAT_NAME} file ({error})") from error
    if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
        raise DemoFormatError(
            f"{path}: format {header.get('format')!r} v{header.get('version')!r}, "
            f"expected {FORMAT_NAME} v{FORMAT_VERSION}"
        )
    steps = arrays["actions"].shape[0]
    for name in ("end_poses", "gripper_mm", "joints_rad", "stamps_s", "success_steps"):
        if arrays[name].shape[0] != steps + 1:
            raise DemoFormatError(f"{path}: {name} has {arrays[name].shape[0]} rows, expected {steps + 1}")
    images = arrays["front_images"]
    if images.shape[0] not in (0, steps + 1) or images.dtype != np.uint8:
        raise DemoFormatError(
            f"{path}: front_images {images.shape} {images.dtype}, expected ({steps + 1}, H, W, 3) uint8"
        )
    return EpisodeRecord(
        task=header["task"],
        text=header["text"],
        seed=header["seed"],
        variant=header["variant"],
        wrist_images=wrist,
        success=header["success"],
        meta=header.get("meta", {}),
        **arrays,
    )


def iter_episodes(folder: Path | str, *, variant: str | None = None) -> Iterator[EpisodeRecord]:
    """Every episode file under ``folder`` in name order, optionally only one variant ("expert", ...)."""
    for path in sorted(Path(folder).rglob("*.npz")):
        record = load_episode_npz(path)
        if variant is None or record.variant == variant:
            yield record
