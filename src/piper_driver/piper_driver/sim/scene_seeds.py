"""Which scene an arm's next fresh start draws: the one rule of both runtimes (the embedded session's
``SimArm`` and the ROS episode manager's ``TopicRobot``).

Without a pool every fresh start is a new scene (``base``, ``base + 1``, ...). With a pool of K scenes
the starts cycle over ``base .. base + K - 1``: a run then trains on K scenes only, which is how the
experiment measures what training on few scenes carries to scenes it never saw (the overfit check is
K = 1 by another route). Why a pool and not a shorter run: the policy meets each scene many times, so
its success on the pool measures the climb and its success on held-out scenes the carry-over.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SceneSeeds:
    """Seeds of an arm's fresh scenes: from ``base`` on, or cycled over ``pool_size`` scenes from it (0: no pool)."""

    base: int
    pool_size: int = 0

    def __post_init__(self) -> None:
        if self.base < 0 or self.pool_size < 0:
            raise ValueError(f"SceneSeeds(base={self.base}, pool_size={self.pool_size}): expected non-negative numbers")

    def nth(self, n: int) -> int:
        """The seed of the arm's n-th fresh start (n from 0; a resumed arm passes the starts behind it)."""
        if n < 0:
            raise ValueError(f"SceneSeeds.nth({n}): expected n >= 0")
        return self.base + (n % self.pool_size if self.pool_size else n)

    def draws(self, first_seed: int) -> Iterator[int]:
        """The seeds of an arm's fresh starts from ``first_seed`` on, in order: what each runtime's robot takes its
        next fresh scene from. A first seed this rule never draws is refused here, not at the first draw."""
        self.require(first_seed)
        return self._draws_from(first_seed)

    def _draws_from(self, seed: int) -> Iterator[int]:
        while True:
            yield seed
            seed = self.after(seed)

    def after(self, seed: int) -> int:
        """The fresh start after ``seed``: the next seed, or the next in the pool's cycle."""
        self.require(seed)
        if not self.pool_size:
            return seed + 1
        return self.base + (seed - self.base + 1) % self.pool_size

    def require(self, seed: int) -> None:
        """Refuse a seed this rule never draws: one outside the pool (any seed >= 0 without a pool)."""
        if seed < 0 or (self.pool_size and not self.base <= seed < self.base + self.pool_size):
            raise ValueError(f"scene seed {seed} is outside {self.describe()}")

    def describe(self) -> str:
        if self.pool_size:
            return f"the pool of {self.pool_size} scenes from seed {self.base}"
        return f"the scenes from seed {self.base} on"
