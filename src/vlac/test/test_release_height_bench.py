"""bench/release_height.py: the expert letting go of the bowl from a set height, success counted by the simulator."""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_bench

pytest.importorskip("mujoco", reason="the bench runs the simulated pick_bowl task")


@pytest.fixture(scope="module")
def release_height():
    yield from load_bench("release_height")


def test_set_down_places_the_bowl_and_the_json_line_says_so(release_height, capsys):
    assert release_height.main(["--scenes", "1", "--extra-heights-mm", "0"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bench"] == "release_height"
    assert result["rows"] == [{"drop_mm": 4.0, "successes": 1, "scenes": 1}]
    assert result["release_max_drop_mm"] == 50.0


def test_a_height_out_of_reach_is_refused_naming_it(release_height):
    with pytest.raises(ValueError, match="extra_height_m"):
        release_height.main(["--scenes", "1", "--extra-heights-mm", "500"])
