"""Stand-in videos shared by the critic tests (a module of its own: test modules of several packages
importing ``conftest`` by name would collide when collected together)."""

from __future__ import annotations

import numpy as np


def frames(n: int, seed: int = 0, size: tuple[int, int] = (48, 64)) -> list[np.ndarray]:
    """``n`` frames getting brighter over time, with noise (a stand-in video)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = np.full((*size, 3), 40 + 200 * i // max(n - 1, 1), dtype=np.int16)
        out.append(np.clip(base + rng.integers(-20, 20, (*size, 3)), 0, 255).astype(np.uint8))
    return out
