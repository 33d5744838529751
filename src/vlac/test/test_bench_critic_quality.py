"""bench/critic_quality.py's episode-level done rules: what counts as on time, early, missed or false."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def cq():
    yield from load_bench("critic_quality")


SUCCESS_FROM_3 = np.array([False, False, False, True, True, True])
NEVER = np.zeros(6, dtype=bool)


@pytest.mark.parametrize(
    ("probs", "success", "threshold", "confirm", "outcome"),
    [
        ([0.1, 0.1, 0.1, 0.95, 0.95, 0.95], SUCCESS_FROM_3, 0.9, 1, "on_time"),
        ([0.1, 0.95, 0.1, 0.95, 0.95, 0.95], SUCCESS_FROM_3, 0.9, 1, "early"),  # a spike before success
        ([0.1, 0.95, 0.1, 0.95, 0.95, 0.95], SUCCESS_FROM_3, 0.9, 2, "on_time"),  # confirmed at frame 4
        ([0.1, 0.1, 0.1, 0.85, 0.85, 0.85], SUCCESS_FROM_3, 0.9, 1, "missed"),  # under the release's 0.9
        ([0.1, 0.1, 0.1, 0.85, 0.85, 0.85], SUCCESS_FROM_3, 0.8, 3, "on_time"),
        ([0.1, 0.1, 0.1, 0.85, None, 0.85], SUCCESS_FROM_3, 0.8, 2, "missed"),  # unparsable breaks the run
        ([0.1, 0.1, 1.0, 0.1, 0.1, 0.1], NEVER, 0.9, 1, "false_done"),
        ([0.1, 0.1, 1.0, 0.1, 0.1, 0.1], NEVER, 0.9, 2, "quiet"),
        # done, then undone: firing while it is done is on time, though the episode ends failed
        ([0.1, 0.1, 0.95, 0.1, 0.1, 0.1], np.array([False, False, True, False, False, False]), 0.9, 1, "on_time"),
    ],
)
def test_done_rule_outcomes(cq, probs, success, threshold, confirm, outcome):
    assert cq._done_rule_outcome(probs, success, threshold, confirm) == outcome


def test_done_rules_parse_and_bad_ones_name_the_text(cq):
    assert cq._parse_rule("0.8:3") == (0.8, 3)
    for bad in ("0.8", "x:3", "1.5:2", "0.8:0"):
        with pytest.raises(argparse.ArgumentTypeError, match=bad.replace(".", r"\.")):
            cq._parse_rule(bad)
