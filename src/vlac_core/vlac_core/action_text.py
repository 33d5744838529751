"""The VLAC state/action template and its strict parser.

Template (braces included): ``{x: Xmm, y: Ymm, z: Zmm, roll: R degrees, pitch: P degrees,
yaw: Y degrees, open: O}`` with whole millimetres and degrees and ``open`` in {0, 1}.
Action angles are normalised to [-180, 180]. The parser is strict on purpose: text
that is not exactly one template (a truncated generation, a stray token) must never
become motion, so it raises ``ActionParseError`` naming the offending text instead.
"""

from __future__ import annotations

import math
import re

from vlac_core.types import DeltaAction, EndPose

#: (field name in the text, unit suffix) in template order.
TEMPLATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("x", "mm"),
    ("y", "mm"),
    ("z", "mm"),
    ("roll", " degrees"),
    ("pitch", " degrees"),
    ("yaw", " degrees"),
    ("open", ""),
)

# An integer as the template writes it: no '+', no leading zeros, no "-0".
_INT = r"(0|-?[1-9][0-9]*)"
_ACTION_RE = re.compile(
    r"\{"
    + ", ".join(f"{name}: {_INT if name != 'open' else '([01])'}{re.escape(unit)}" for name, unit in TEMPLATE_FIELDS)
    + r"\}"
)

#: Longest integer literal the parser accepts (guards against absurd generations).
MAX_DIGITS = 6


class ActionParseError(ValueError):
    """Text is not a single well-formed action template; ``text`` holds what was given."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(f"{message}: {text!r}")
        self.text = text


def normalize_angle_deg(angle_deg: float) -> float:
    """Wrap an angle into [-180, 180)."""
    return (angle_deg + 180.0) % 360.0 - 180.0


def _format(values: tuple[int, ...]) -> str:
    parts = [f"{name}: {value}{unit}" for (name, unit), value in zip(TEMPLATE_FIELDS, values, strict=True)]
    return "{" + ", ".join(parts) + "}"


def format_action(action: DeltaAction) -> str:
    """The action template text of ``action`` (what the actor generates)."""
    return _format(action.as_tuple())


def format_state(end_pose: EndPose, gripper_open: bool) -> str:
    """The state text of an end pose, rounded to whole mm/degrees as the template writes them."""
    values = end_pose.as_array()
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"state has a non-finite value: {end_pose}")
    ints = [round(v) for v in values[:3]] + [round(normalize_angle_deg(v)) for v in values[3:]]
    return _format((*ints, int(bool(gripper_open))))


def parse_action(text: str) -> DeltaAction:
    """Parse exactly one action template (surrounding whitespace allowed) into a DeltaAction.

    Raises ActionParseError naming the text when anything is off: missing or extra
    characters, a number that is not a plain integer, too many digits, an angle
    outside [-180, 180], or ``open`` not 0/1.
    """
    if not isinstance(text, str):
        raise ActionParseError(f"expected action text, got {type(text).__name__}", repr(text))
    stripped = text.strip()
    match = _ACTION_RE.fullmatch(stripped)
    if match is None:
        raise ActionParseError(f"not an action template ({_first_mismatch(stripped)})", text)
    numbers = match.groups()
    for (name, _), literal in zip(TEMPLATE_FIELDS, numbers, strict=True):
        if len(literal.lstrip("-")) > MAX_DIGITS:
            raise ActionParseError(f"field {name!r} has more than {MAX_DIGITS} digits", text)
    values = [int(v) for v in numbers]
    for (name, _), value in zip(TEMPLATE_FIELDS[3:6], values[3:6], strict=True):
        if not -180 <= value <= 180:
            raise ActionParseError(f"field {name!r} = {value} degrees is outside [-180, 180]", text)
    return DeltaAction(*values)


def _first_mismatch(text: str) -> str:
    """Say where the text stops following the template, for a readable error."""
    expected_prefix = "{"
    for name, unit in TEMPLATE_FIELDS:
        pattern = re.compile(
            re.escape(expected_prefix) + rf"{name}: " + (_INT if name != "open" else r"[01]") + re.escape(unit)
        )
        match = pattern.match(text)
        if match is None:
            return f"field {name!r} is missing or malformed"
        text = text[match.end() :]
        expected_prefix = ", "
    return "missing closing '}'" if not text.startswith("}") else "unexpected text after the closing '}'"
