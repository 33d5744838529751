"""The critic's health as plain data, for the node's /diagnostics (diagnostic_msgs) status."""

from __future__ import annotations

from dataclasses import dataclass

from .critic import CriticStats

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


@dataclass(frozen=True)
class CriticHealth:
    level: int
    message: str
    values: list[tuple[str, str]]


def critic_health(stats: CriticStats | None, load_error: str | None, requests_failed: int = 0) -> CriticHealth:
    """OK while serving; WARN while loading or after unparsable answers; ERROR when the model failed to load."""
    if load_error:
        return CriticHealth(ERROR, f"model failed to load: {load_error}", [])
    if stats is None:
        return CriticHealth(WARN, "loading model", [])
    values = [
        ("pairs_scored", str(stats.pairs_scored)),
        ("progress_parse_failures", str(stats.progress_parse_failures)),
        ("images_done_checked", str(stats.images_done_checked)),
        ("done_parse_failures", str(stats.done_parse_failures)),
        ("last_latency_s", f"{stats.last_latency_s:.4f}"),
        ("requests_failed", str(requests_failed)),
    ]
    failures = stats.progress_parse_failures + stats.done_parse_failures
    if failures:
        return CriticHealth(WARN, f"{failures} unparsable answer(s) so far", values)
    return CriticHealth(OK, "serving", values)
