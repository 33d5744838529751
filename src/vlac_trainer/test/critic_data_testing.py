"""Frames that carry their own index, shared by the critic-data tests (a module of its own: test
modules of several packages importing ``conftest`` by name would collide)."""

from __future__ import annotations

import numpy as np

TASK = "Pick up the bowl and put it on the plate"
OTHER = "Sweep the trash into the dustpan"


def frames_with_index(steps: int, offset: int = 0) -> np.ndarray:
    """Frame i is filled with 10 * i + offset: far apart (pixel filter passes) and readable back."""
    values = (10 * np.arange(steps + 1) + offset).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (steps + 1, 6, 6, 3)).copy()


def index_of(image: np.ndarray, offset: int = 0) -> int:
    return (int(image[0, 0, 0]) - offset) // 10
