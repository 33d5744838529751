"""An output folder after a crash: one run per folder (lock), stop signals, and the start-up repair
that turns unfinished bags into complete aborted episodes and sets cut-off JSONL lines aside."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from episode_fakes import FakeActor, FakeClock, FakeCritic, FakeRobot

import vlac_core.bag
from vlac.episode.loop import EpisodeLoop, LoopConfig
from vlac.episode.recording import BagSink, EpisodeIndex
from vlac.session.outdir_lock import LOCK_FILE, OutdirBusy, OutdirLock
from vlac.session.outdir_recovery import recover_outdir
from vlac.session.report import is_training_episode, summarize
from vlac.stop_signals import StopSignals
from vlac_core.bag import EpisodeRecorder, read_episode
from vlac_core.types import Termination

# -- the lock --------------------------------------------------------------------------------------

HOLDER = """
import sys
from vlac.session.outdir_lock import OutdirLock
OutdirLock(sys.argv[1]).acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_run_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutdirBusy, match=rf"in use by another session \(pid {holder.pid} on host "):
            OutdirLock(tmp_path).acquire()
        assert socket.gethostname() in json.loads((tmp_path / LOCK_FILE).read_text())["host"]
    finally:
        holder.kill()  # SIGKILL: no chance to release
        holder.wait()
    lock = OutdirLock(tmp_path)
    lock.acquire()
    assert lock.taken_over_from.startswith(f"pid {holder.pid} on host ")
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    with pytest.raises(OutdirBusy):  # also within one process: one lock per folder
        OutdirLock(tmp_path).acquire()
    lock.release()
    with OutdirLock(tmp_path) as again:  # released cleanly: no "taken over" story
        assert again.taken_over_from is None


# -- stop signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c_and_a_second_signal_does_not_cut_the_saving_short(sig, code):
    said = []
    with StopSignals(said.append) as signals:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), sig)
            signal.sigtimedwait([], 0)  # a point where Python runs the handler
        os.kill(os.getpid(), sig)  # while saving: only a message
    assert signals.exit_code == code
    assert said == ["session: still saving, please wait"]
    assert signal.getsignal(signal.SIGTERM) is not signals._handle  # handlers restored


def test_a_stop_signal_while_loading_is_noted_not_raised_inside_a_library():
    said = []
    with StopSignals(said.append, live=False) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # the handler ran here, in the middle of "loading": no exception
        assert signals.received is signal.SIGTERM
    assert signals.exit_code == 143 and "SIGTERM: stopping as soon as" in said[0]


# -- start-up repair --------------------------------------------------------------------------------


def _record(out: Path, n: int, steps: int, *, listed: bool) -> list[str]:
    """``n`` finished episodes into out/bags/train through the real loop and sink (fake robot, actor
    and critic: no models), listed in episodes.jsonl or not (a crash came in between)."""
    index = EpisodeIndex(out / "episodes.jsonl")
    sink = BagSink(out / "bags", listeners=[index.append] if listed else [], fsync=False)
    clock = FakeClock()
    loop = EpisodeLoop(
        FakeRobot(clock, goal=100),
        FakeActor(clock),
        FakeCritic(goal=100),
        sink,
        LoopConfig(max_steps=steps),
        clock=clock,
        sleep=clock.advance,
    )
    try:
        return [loop.run_episode().episode.episode_id for _ in range(n)]
    finally:
        loop.close()


def _unfinished_bag(out: Path, source_bag: Path, episode_id: str, steps: int) -> None:
    """What ``kill -9`` leaves mid-episode: a bag written step by step, never finished."""
    episode = read_episode(source_bag)
    recorder = EpisodeRecorder(
        out / "bags" / "train" / episode_id, episode_id=episode_id, robot_id=episode.robot_id, task=episode.task
    )
    for transition in episode.transitions[:steps]:
        recorder.write_step(transition)
    recorder._writer.storage.bio.close()  # the process is gone: no summary, no metadata.yaml


def crashed_folder(out: Path) -> None:
    listed = _record(out, 2, 3, listed=True)
    _record(out, 1, 3, listed=False)  # closed on disk, then the crash came before its index line
    _unfinished_bag(out, out / "bags" / "train" / listed[0], "arm_0-cut", steps=2)
    garbage = out / "bags" / "eval" / "arm_0-garbage"
    garbage.mkdir(parents=True)
    (garbage / "arm_0-garbage_0.mcap").write_bytes(os.urandom(300))
    with open(out / "episodes.jsonl", "a") as f:
        f.write('{"episode_id": "arm_0-half", "pha')  # the crash cut this line short


def test_a_crashed_folder_is_repaired_so_every_bag_reads_and_every_episode_is_listed(tmp_path):
    out = tmp_path / "out"
    crashed_folder(out)
    said = []
    report = recover_outdir(out, said.append)

    assert report.rebuilt == ["bags/train/arm_0-cut"] and report.damaged_lines == 1
    assert len(report.listed) == 1 and report.unreadable == ["unreadable/eval/arm_0-garbage"]
    for bag in (out / "bags").glob("*/*"):
        read_episode(bag)  # every bag left where readers look is complete
    rows = {r["episode_id"]: r for r in EpisodeIndex(out / "episodes.jsonl").rows()}
    assert set(rows) == {p.name for p in (out / "bags" / "train").iterdir()}
    cut = rows["arm_0-cut"]
    assert (cut["termination"], cut["length"], cut["recovered"]) == ("aborted", 2, True)
    assert cut["bag_path"] == os.path.join("bags", "train", "arm_0-cut")  # relative to the folder
    assert read_episode(out / cut["bag_path"]).length == 2  # both steps that reached the disk
    assert sum(map(is_training_episode, rows.values())) == 3  # the cut one is not counted, like Ctrl-C
    summary = summarize(list(rows.values()), [])
    assert summary["aborted_episodes"] == 1 and summary["recovered_episodes"] == 1
    assert "arm_0-half" in (out / "episodes.jsonl.damaged").read_text()
    assert "could not be read" in (out / "unreadable" / "eval" / "arm_0-garbage" / "NOTE.txt").read_text()
    assert any("rebuilt as aborted episodes" in line for line in said)

    assert not recover_outdir(out, said.append).anything  # a second start finds nothing to do


def test_a_crash_during_the_rebuild_is_finished_on_the_next_start(tmp_path, monkeypatch):
    out = tmp_path / "out"
    crashed_folder(out)

    def dies_while_writing(*args, **kwargs):
        raise OSError("simulated power loss")

    monkeypatch.setattr(vlac_core.bag, "write_episode", dies_while_writing)
    with pytest.raises(OSError, match="power loss"):
        recover_outdir(out, print)
    monkeypatch.undo()
    assert not (out / "bags" / "train" / "arm_0-cut" / "metadata.yaml").exists()  # mid-rebuild
    report = recover_outdir(out, print)
    assert report.rebuilt == ["bags/train/arm_0-cut"]
    assert read_episode(out / "bags" / "train" / "arm_0-cut").length == 2
    assert not list((out / "bags" / "train").glob(".*"))  # nothing half-done left beside the bags


def test_an_index_opened_after_a_crash_never_glues_a_record_onto_a_cut_off_line(tmp_path):
    out = tmp_path / "out"
    ids = _record(out, 1, 2, listed=True)
    with open(out / "episodes.jsonl", "a") as f:
        f.write('{"episode_id": "x", "len')
    _record(out, 1, 2, listed=True)  # a resumed session appends its next episode
    rows = EpisodeIndex(out / "episodes.jsonl").rows()
    assert len(rows) == 2 and rows[0]["episode_id"] == ids[0]
    assert all(r["termination"] == Termination.STEP_LIMIT.value for r in rows)


# -- whole sessions (tiny random models) ------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import session_helpers as h
    import torch

    torch.set_num_threads(1)
    return h.build_models(tmp_path_factory.mktemp("recovery_models"))


def _config(tmp_path: Path, models, out: Path, **session) -> Path:
    import session_helpers as h

    return h.write_config(tmp_path / "s.yaml", *models, out, eval_at_start=False, eval_at_end=False, **session)


def _strict_json(path: Path):
    def refuse(token):
        raise ValueError(f"{path}: non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_second_session_on_a_live_folder_is_refused_and_sigterm_ends_the_first_like_ctrl_c(models, tmp_path, capsys):
    import time

    from vlac.cli import main

    out = tmp_path / "out"
    config = _config(tmp_path, models, out, max_steps=30)
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "vlac.cli", "session", "--config", str(config), "--episodes", "1000"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((out / "bags" / "train").glob("*"))) < 2:
        time.sleep(0.2)  # polling for a state, with a generous limit: not a timing margin
    assert main(["session", "--config", str(config), "--episodes", "1000"]) == 2
    err = capsys.readouterr().err
    assert f"in use by another session (pid {first.pid} on host {socket.gethostname()}" in err

    first.send_signal(signal.SIGTERM)
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 128 + signal.SIGTERM, output
    assert "SIGTERM: ending each arm's episode" in output
    summary = _strict_json(out / "summary.json")
    assert summary["interrupted"] is True
    recorded = {r["episode_id"] for r in EpisodeIndex(out / "episodes.jsonl").rows()}
    bags = {b.name for b in (out / "bags" / "train").iterdir()}
    assert bags == recorded
    for bag in bags:
        read_episode(out / "bags" / "train" / bag)  # finished, metadata.yaml written
    assert json.loads((out / LOCK_FILE).read_text() or "{}") == {}  # released


def test_a_moved_output_folder_resumes_from_its_own_policy_and_summary_json_is_strict(models, tmp_path, caplog):
    import yaml

    from vlac.cli import main

    out = tmp_path / "out"
    config = _config(tmp_path, models, out)
    params = yaml.safe_load(config.read_text())
    params["trainer_node"]["ros__parameters"]["value_warmup_updates"] = 1  # its pg_loss is NaN
    config.write_text(yaml.safe_dump(params))
    assert main(["session", "--config", str(config), "--episodes", "2"]) == 0
    first = _strict_json(out / "summary.json")
    (update,) = first["trainer"]["updates_this_run"]
    assert update["warmup"] is True and update["pg_loss"] is None  # NaN written as null
    assert first["trainer"]["policy_version"] == 1

    moved = tmp_path / "moved"
    os.rename(out, moved)  # the old folder is gone: nothing may still point into it
    newest = (moved / "trainer" / "LATEST").read_text().strip()
    with open(moved / "trainer" / newest / "arrays.safetensors", "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))  # a bit flipped on disk: the previous generation must serve
    with caplog.at_level("WARNING", logger="vlac_trainer"):
        assert main(["session", "--config", str(config), "--episodes", "4", "--out", str(moved)]) == 0
    assert any(f"{newest}/arrays.safetensors: sha256" in r.getMessage() for r in caplog.records)
    again = _strict_json(moved / "summary.json")
    assert again["resumed"] is True and again["training_episodes"] == 4
    assert again["trainer"]["episodes_received"] == 4 and again["trainer"]["policy_version"] == 2
    assert not out.exists()
    for row in EpisodeIndex(moved / "episodes.jsonl").rows():
        read_episode(moved / row["bag_path"])
