"""One way to reject a bad configuration value: name the key, the value and what is allowed."""

from __future__ import annotations

import math

from vlac_core import config as core_config


class ConfigError(core_config.ConfigError):
    """A configuration value is out of range or of the wrong type; raised at start-up.

    A kind of ``vlac_core.config.ConfigError``, so callers loading parameter files catch one type.
    """


def require(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected {allowed}")


def require_number(key: str, value: object, low: float | None = None, high: float | None = None) -> None:
    """A finite real number (not a bool) within [low, high] where given."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    bounds = f"{'-inf' if low is None else low}..{'inf' if high is None else high}"
    require(is_number, key, value, f"a finite number in {bounds}")
    require((low is None or value >= low) and (high is None or value <= high), key, value, f"a number in {bounds}")


def require_positive(key: str, value: object) -> None:
    require_number(key, value, low=0.0)
    require(value > 0, key, value, "a number > 0")
