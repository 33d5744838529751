"""Strict JSON on disk: no NaN/Infinity, atomic writes, JSONL appends that survive a cut-off line."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vlac_core.jsonio import DAMAGED_SUFFIX, append_jsonl, dumps, read_jsonl, repair_jsonl, write_json


def strict_loads(text: str):
    """A reader as strict as jq or JavaScript: NaN and Infinity are errors."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_are_written_as_null_and_the_file_is_strict_json(tmp_path):
    data = {"pg_loss": float("nan"), "kl": math.inf, "v": np.float32("-inf"), "n": np.int64(3), "ok": 0.5}
    write_json(tmp_path / "summary.json", {"updates": [data], "path": tmp_path / "x", "flag": np.bool_(True)})
    loaded = strict_loads((tmp_path / "summary.json").read_text())
    assert loaded["updates"] == [{"pg_loss": None, "kl": None, "v": None, "n": 3, "ok": 0.5}]
    assert loaded["path"] == str(tmp_path / "x") and loaded["flag"] is True


def test_a_value_without_json_form_is_an_error_naming_where_it_is(tmp_path):
    with pytest.raises(TypeError, match=r"\$\.trainer\.stats\[1\]: object has no JSON form"):
        write_json(tmp_path / "s.json", {"trainer": {"stats": [1, object()]}})
    assert not (tmp_path / "s.json").exists()  # nothing half-written


def test_an_append_after_a_cut_off_last_line_keeps_the_new_record_whole(tmp_path):
    path = tmp_path / "episodes.jsonl"
    append_jsonl(path, {"episode_id": "a"})
    with open(path, "a") as f:
        f.write('{"episode_id": "b", "len')  # the crash cut this line short
    append_jsonl(path, {"episode_id": "c"})
    assert [r["episode_id"] for r in read_jsonl(path)] == ["a", "c"]


def test_repair_moves_damaged_lines_aside_and_leaves_whole_records(tmp_path):
    path = tmp_path / "episodes.jsonl"
    path.write_text('{"episode_id": "a"}\n[1, 2]\n{"episode_id": "b", "len')
    assert repair_jsonl(path) == 2
    assert path.read_text() == '{"episode_id": "a"}\n'
    assert (tmp_path / ("episodes.jsonl" + DAMAGED_SUFFIX)).read_text() == '[1, 2]\n{"episode_id": "b", "len\n'
    assert repair_jsonl(path) == 0


def test_repair_ends_a_whole_last_record_that_lost_only_its_newline(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}')
    assert repair_jsonl(path) == 0
    assert path.read_text() == '{"a": 1}\n{"b": 2}\n'


def test_dumps_refuses_nothing_finite_and_reads_back(tmp_path):
    assert strict_loads(dumps({"x": [1.5, float("nan")]})) == {"x": [1.5, None]}
    assert read_jsonl(Path(tmp_path / "missing.jsonl")) == []
