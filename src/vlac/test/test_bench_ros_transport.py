"""bench/ros_transport.py: the statistics its JSON reports (the ROS run itself is the bench, not a test)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def bench():
    yield from load_bench("ros_transport")


def test_percentile_interpolates_like_numpy(bench):
    values = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 1.3]
    for q in (0, 10, 50, 90, 100):
        assert bench.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert bench.percentile([4.0], 90) == 4.0


def test_percentile_refuses_no_values_and_out_of_range_q(bench):
    with pytest.raises(ValueError, match="no values"):
        bench.percentile([], 50)
    with pytest.raises(ValueError, match="q=101"):
        bench.percentile([1.0], 101)


def test_summary_is_in_milliseconds(bench):
    seconds = [0.010, 0.020, 0.030, 0.040, 0.050, 0.060, 0.070, 0.080, 0.090, 0.100, 0.110]
    assert bench.summarize_ms(seconds) == {"min_ms": 10.0, "median_ms": 60.0, "p90_ms": 100.0}


def test_overhead_is_the_median_of_paired_step_differences(bench):
    # A slow spell (steps 2 and 3) slows both paths alike: pairing keeps the 10 ms of transport.
    embedded = [0.050, 0.052, 0.150, 0.148, 0.051]
    ros = [0.060, 0.062, 0.160, 0.158, 0.061]
    overhead = bench.transport_overhead(embedded, ros)
    assert overhead == {"overhead_ms": 10.0, "ratio": 1.192, "overhead_min_ms": 10.0}  # ratio: 62 / 52
    # Unpaired medians (51 ms and 62 ms) would have said 11 ms.


def test_overhead_refuses_unpaired_or_non_positive_times(bench):
    with pytest.raises(ValueError, match="paired"):
        bench.transport_overhead([0.05, 0.05], [0.06])
    with pytest.raises(ValueError, match="paired"):
        bench.transport_overhead([], [])
    with pytest.raises(ValueError, match="positive"):
        bench.transport_overhead([0.0, 0.05], [0.01, 0.06])


def test_critic_answers_compare_unparsable_and_nan_as_equal(bench):
    assert bench.same_answer(None, None)
    assert bench.same_answer(math.nan, math.nan)
    assert bench.same_answer(25.0, 25.0)
    assert not bench.same_answer(None, 25.0)
    assert not bench.same_answer(25.0, None)
    assert not bench.same_answer(25.0, 25.5)
    assert not bench.same_answer(math.nan, 0.0)


def test_discovery_is_kept_on_this_machine(bench, monkeypatch):
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    bench.loopback_only()
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    with pytest.raises(SystemExit, match="LOCALHOST only"):
        bench.loopback_only()
