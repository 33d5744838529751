"""Strict parsing of the critic's text answers.

The pair-wise answer is a bare signed number in percent (``12.5``, ``-30``); the done answer is ``0``
or ``1``. Anything else is an unparsable answer: it raises :class:`AnswerParseError` carrying the raw
text, and the caller reports it and gives no reward — a number is never made up.
"""

from __future__ import annotations

import math
import re

#: Signed decimal number, nothing around it but whitespace: "12.5", "-30", "+4", "0.75".
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
#: Progress is a share of the remaining way, in percent; beyond ±100 the value rule would overshoot.
MAX_ABS_PROGRESS_PCT = 100.0


class AnswerParseError(ValueError):
    """The model's answer is not in the expected format; ``raw`` is the text as generated."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(f"{message}: {raw!r}")
        self.raw = raw


def parse_progress_pct(raw: str) -> float:
    """The pair-wise answer as signed percent, or :class:`AnswerParseError`.

    Only surrounding whitespace is tolerated; numbers outside ±100 % are rejected as well, since
    no trained critic emits them and the value rule would leave [0, 100] with them.
    """
    text = raw.strip()
    if not _NUMBER_RE.fullmatch(text):
        raise AnswerParseError("progress answer is not a bare signed number", raw)
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_ABS_PROGRESS_PCT:
        raise AnswerParseError(f"progress answer is outside ±{MAX_ABS_PROGRESS_PCT:g} %", raw)
    return value


def parse_done(raw: str) -> int:
    """The done answer as 0 or 1, or :class:`AnswerParseError`."""
    text = raw.strip()
    if text not in ("0", "1"):
        raise AnswerParseError("done answer is not 0 or 1", raw)
    return int(text)
