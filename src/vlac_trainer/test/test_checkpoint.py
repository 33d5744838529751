"""Checkpoint and resume: buffers and trainer state come back identical; a crash mid-save loses nothing."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from trainer_fixtures import assert_same_episode, make_episode

from vlac_core.types import Termination
from vlac_trainer import checkpoint_store
from vlac_trainer.checkpoint_store import CheckpointError, latest_generation, load_checkpoint, save_checkpoint
from vlac_trainer.online.buffers import DemoBuffer, RolloutBuffer, SuccessBuffer
from vlac_trainer.online.episode_codec import EpisodeDecodeError, decode_episode, encode_episode
from vlac_trainer.training_state import (
    TrainingState,
    load_training_state,
    optimizer_state_from_tensors,
    optimizer_state_to_tensors,
    save_training_state,
)


def _state() -> TrainingState:
    rollouts = RolloutBuffer(max_episodes_per_robot=4, success_window=3, epsilon=0.1)
    rollouts.add(make_episode("a0", robot_id="arm_0", success=True, seed=1))
    rollouts.add(make_episode("a1", robot_id="arm_0", termination=Termination.DONE, seed=2))
    rollouts.add(make_episode("b0", robot_id="arm_1", steps=1, seed=3))
    demos = DemoBuffer(capacity=5)
    demos.add(make_episode("h0", human_steps=3, seed=4))
    successes = SuccessBuffer(capacity=3)
    successes.add(make_episode("a1", robot_id="arm_0", termination=Termination.DONE, seed=2))
    return TrainingState(
        successes=successes,
        rollouts=rollouts,
        demos=demos,
        counters={"policy_version": 7, "updates": 12},
        tensors={"model/w": torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)},
        extra={"note": "x"},
    )


def _assert_same_state(a: TrainingState, b: TrainingState) -> None:
    for x, y in zip(a.rollouts.episodes(), b.rollouts.episodes(), strict=True):
        assert_same_episode(x, y)
    for x, y in zip(a.demos.episodes(), b.demos.episodes(), strict=True):
        assert_same_episode(x, y)
    assert len(a.rollouts) == len(b.rollouts) and len(a.demos) == len(b.demos)
    assert a.rollouts.robot_probabilities() == b.rollouts.robot_probabilities()
    assert a.rollouts.max_episodes_per_robot == b.rollouts.max_episodes_per_robot
    assert a.demos.capacity == b.demos.capacity
    assert (a.successes is None) == (b.successes is None)
    if a.successes is not None:
        assert a.successes.capacity == b.successes.capacity and len(a.successes) == len(b.successes)
        for x, y in zip(a.successes.episodes(), b.successes.episodes(), strict=True):
            assert_same_episode(x, y)
    assert a.counters == b.counters and a.extra == b.extra
    assert a.tensors.keys() == b.tensors.keys()
    for name in a.tensors:
        assert a.tensors[name].dtype == b.tensors[name].dtype and torch.equal(a.tensors[name], b.tensors[name])


def test_episode_codec_round_trip_is_exact():
    episode = make_episode("e", human_steps=1, termination=Termination.DONE, success=False, seed=5)
    arrays: dict[str, np.ndarray] = {}
    meta = json.loads(json.dumps(encode_episode(episode, "k", arrays)))  # through real JSON text
    assert all(a.dtype == np.uint8 for a in arrays.values())
    assert_same_episode(decode_episode(meta, arrays), episode)


def test_decoding_names_missing_pieces():
    arrays: dict[str, np.ndarray] = {}
    meta = encode_episode(make_episode("e"), "k", arrays)
    arrays.pop("k/obs00001/img0")
    with pytest.raises(EpisodeDecodeError, match="k/obs00001/img0"):
        decode_episode(meta, arrays)
    with pytest.raises(EpisodeDecodeError, match="format"):
        decode_episode({**meta, "format": "other/9"}, arrays)


def test_save_crash_and_resume_gives_identical_state(tmp_path):
    state = _state()
    save_training_state(tmp_path, state)
    del state  # the process "crashes": only the disk is left
    resumed = load_training_state(tmp_path)
    _assert_same_state(resumed, _state())
    # and the resumed buffer keeps working: success windows came back too
    # (window 3: a0 True, a1 DONE -> True, then two failures -> only a1 left of the successes)
    resumed.rollouts.add(make_episode("a2", robot_id="arm_0", success=False))
    resumed.rollouts.add(make_episode("a3", robot_id="arm_0", success=False))
    assert resumed.rollouts.success.success_rate("arm_0") == pytest.approx(1 / 3)


def test_a_state_without_self_imitation_reads_back_without_a_success_buffer(tmp_path):
    state = _state()
    state.successes = None
    save_training_state(tmp_path, state)
    assert load_training_state(tmp_path).successes is None


def test_nothing_saved_yet_loads_as_none(tmp_path):
    assert load_training_state(tmp_path) is None


def _crash(*args, **kwargs):
    raise OSError("simulated power loss")


def test_crash_while_writing_arrays_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_training_state(tmp_path, _state())
    bigger = _state()
    bigger.rollouts.add(make_episode("a9", robot_id="arm_0"))

    real_save = checkpoint_store.save_file

    def half_written(tensors, path):
        real_save(tensors, path)
        with open(path, "r+b") as f:  # truncate mid-file, then die
            f.truncate(os.path.getsize(path) // 2)
        raise OSError("simulated power loss")

    monkeypatch.setattr(checkpoint_store, "save_file", half_written)
    with pytest.raises(OSError, match="power loss"):
        save_training_state(tmp_path, bigger)
    monkeypatch.undo()
    _assert_same_state(load_training_state(tmp_path), _state())
    # the next save succeeds and clears the leftover
    save_training_state(tmp_path, bigger)
    assert len(load_training_state(tmp_path).rollouts) == 4
    assert not list(tmp_path.glob(".tmp-*"))


def test_crash_before_the_latest_pointer_moves_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    first = save_training_state(tmp_path, _state())
    monkeypatch.setattr(checkpoint_store.os, "replace", _crash)
    with pytest.raises(OSError):
        save_training_state(tmp_path, TrainingState(RolloutBuffer(), DemoBuffer()))
    monkeypatch.undo()
    assert latest_generation(tmp_path) == first
    _assert_same_state(load_training_state(tmp_path), _state())


def test_keeps_only_the_newest_generations(tmp_path):
    for i in range(4):
        save_checkpoint(tmp_path, {"x": np.full(2, i, dtype=np.int64)}, {"i": i}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("gen-*")) == ["gen-000003", "gen-000004"]
    arrays, meta = load_checkpoint(tmp_path)
    assert meta == {"i": 3} and arrays["x"].tolist() == [3, 3]


def test_damaged_checkpoint_is_reported_not_loaded(tmp_path):
    folder = save_checkpoint(tmp_path, {"x": np.zeros(16, dtype=np.uint8)}, {})
    data = bytearray((folder / "arrays.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "arrays.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path)
    (tmp_path / "LATEST").write_text("../elsewhere")
    with pytest.raises(CheckpointError, match="not a generation folder"):
        load_checkpoint(tmp_path)


def test_optimizer_state_round_trip_resumes_the_same_trajectory():
    def make():
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        return model, torch.optim.Adam(model.parameters(), lr=0.1)

    def step(model, optim):
        optim.zero_grad()
        model(torch.ones(1, 3)).pow(2).sum().backward()
        optim.step()

    model, optim = make()
    step(model, optim)
    tensors, meta = optimizer_state_to_tensors(optim.state_dict(), "optim")
    meta = json.loads(json.dumps(meta))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    step(model, optim)

    model2, optim2 = make()
    model2.load_state_dict(weights)
    optim2.load_state_dict(optimizer_state_from_tensors(tensors, meta))
    step(model2, optim2)
    for name, value in model.state_dict().items():
        assert torch.equal(value, model2.state_dict()[name])


def test_a_damaged_newest_generation_falls_back_to_the_newest_intact_one_saying_so(tmp_path, caplog):
    save_checkpoint(tmp_path, {"x": np.full(4, 1, dtype=np.int64)}, {"i": 1})
    newest = save_checkpoint(tmp_path, {"x": np.full(4, 2, dtype=np.int64)}, {"i": 2})
    data = bytearray((newest / "arrays.safetensors").read_bytes())
    data[-1] ^= 0xFF  # a bit flipped on disk after the save
    (newest / "arrays.safetensors").write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="vlac_trainer"):
        arrays, meta = load_checkpoint(tmp_path)
    assert meta == {"i": 1} and arrays["x"].tolist() == [1, 1, 1, 1]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "gen-000002/arrays.safetensors: sha256" in warning and "falling back to gen-000001" in warning


def test_a_truncated_meta_file_and_a_missing_latest_pointer_fall_back_too(tmp_path):
    save_checkpoint(tmp_path, {"x": np.zeros(2, dtype=np.int64)}, {"i": 1})
    newest = save_checkpoint(tmp_path, {"x": np.zeros(2, dtype=np.int64)}, {"i": 2})
    (newest / "meta.json").write_text('{"meta": {"i"')
    assert load_checkpoint(tmp_path)[1] == {"i": 1}
    (tmp_path / "LATEST").unlink()
    assert load_checkpoint(tmp_path)[1] == {"i": 1}


def test_non_finite_floats_in_the_metadata_are_strict_json_and_read_back(tmp_path):
    folder = save_checkpoint(tmp_path, {}, {"loss": float("nan"), "limits": [float("inf"), -float("inf"), 1.5]})

    def refuse(token):
        raise ValueError(token)

    json.loads((folder / "meta.json").read_text(), parse_constant=refuse)  # no NaN/Infinity tokens
    meta = load_checkpoint(tmp_path)[1]
    assert np.isnan(meta["loss"]) and meta["limits"] == [float("inf"), -float("inf"), 1.5]


def test_the_policy_path_inside_the_output_folder_survives_moving_the_folder(tmp_path):
    out = tmp_path / "out"
    (out / "policies" / "v000003").mkdir(parents=True)
    state = _state()
    state.counters["policy_path"] = str(out / "policies" / "v000003")
    save_training_state(out / "trainer", state)
    meta = json.loads(next((out / "trainer").glob("gen-*/meta.json")).read_text())["meta"]
    assert meta["counters"]["policy_path"] == os.path.join("..", "policies", "v000003")
    os.rename(out, tmp_path / "moved")
    loaded = load_training_state(tmp_path / "moved" / "trainer")
    assert loaded.counters["policy_path"] == str(tmp_path / "moved" / "policies" / "v000003")


def test_a_policy_path_outside_the_output_folder_is_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = _state()
    state.counters["policy_path"] = "models/base"  # the starting checkpoint, relative to the working folder
    save_training_state(tmp_path / "runs" / "out" / "trainer", state)
    loaded = load_training_state(tmp_path / "runs" / "out" / "trainer")
    assert loaded.counters["policy_path"] == str(tmp_path / "models" / "base")
