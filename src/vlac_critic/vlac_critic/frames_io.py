"""Trajectories to evaluate, read from image folders, videos and rosbag2 episodes.

Each source becomes a list of HxWx3 uint8 RGB frames (plus the task text where the source knows
it: an episode bag does). Videos are sampled at 5 fps, the release's evaluation rate, so a
``skip`` of 5 frames is one second whatever the camera's frame rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
DEFAULT_VIDEO_FPS = 5.0


class TrajectoryReadError(ValueError):
    """A trajectory source cannot be read; the message names the path and the reason."""


@dataclass
class Trajectory:
    """Frames of one trajectory in time order; ``task`` when the source carries it."""

    name: str
    frames: list[np.ndarray]
    task: str | None = None


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def read_image_folder(folder: Path) -> list[np.ndarray]:
    """Every image in ``folder`` in natural name order (frame_2 before frame_10), as RGB."""
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise TrajectoryReadError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return [np.asarray(Image.open(p).convert("RGB")) for p in files]


def read_video(path: Path, fps: float = DEFAULT_VIDEO_FPS) -> list[np.ndarray]:
    """Frames of a video sampled at ``fps`` by presentation time (the first frame is always kept)."""
    import av

    if fps <= 0:
        raise TrajectoryReadError(f"{path}: sampling rate must be > 0 fps, got {fps}")
    period_s = 1.0 / fps
    frames: list[np.ndarray] = []
    next_s = None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for index, frame in enumerate(container.decode(stream)):
                time_s = frame.time if frame.time is not None else index / float(stream.average_rate or 30)
                if next_s is None:
                    next_s = time_s
                if time_s + 1e-6 >= next_s:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    next_s += period_s
    except (av.error.FFmpegError, IndexError) as error:
        raise TrajectoryReadError(f"{path}: cannot decode video ({error})") from error
    if not frames:
        raise TrajectoryReadError(f"{path}: the video has no frames")
    return frames


def read_bag(bag_dir: Path) -> Trajectory:
    """Front-camera frames of a recorded episode (each step's observation, then the final one) and its task."""
    from vlac_core.bag import read_episode

    episode = read_episode(bag_dir)
    frames = [t.observation.images[0] for t in episode.transitions]
    if episode.final_observation is not None:
        frames.append(episode.final_observation.images[0])
    if not frames:
        raise TrajectoryReadError(f"{bag_dir}: the episode has no frames")
    return Trajectory(name=bag_dir.name, frames=frames, task=episode.task)


def read_trajectory(path: str | Path, fps: float = DEFAULT_VIDEO_FPS) -> Trajectory:
    """Read a folder of frames, a video file, or a rosbag2 episode directory (has metadata.yaml)."""
    path = Path(path)
    if path.is_dir():
        if (path / "metadata.yaml").is_file() or any(path.glob("*.mcap")):
            return read_bag(path)
        return Trajectory(name=path.name, frames=read_image_folder(path))
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return Trajectory(name=path.stem, frames=read_video(path, fps))
    if not path.exists():
        raise TrajectoryReadError(f"{path}: no such file or directory")
    raise TrajectoryReadError(
        f"{path}: expected a folder of frames, a video ({', '.join(VIDEO_SUFFIXES)}) or a rosbag2 episode directory"
    )
