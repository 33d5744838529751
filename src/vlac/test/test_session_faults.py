"""Fault injection: `vlac session` stopped by SIGINT, SIGTERM and SIGKILL at random moments, then resumed.

For each seed, three runs on one output folder are each stopped by one of the three signals (in a
seeded random order) at a seeded random moment after the session starts loading its models; a
fourth run finishes the session. After every run the folder must hold every step recorded so far
(each bag complete or recoverable, with at least the steps it had), and after the last: every bag
complete and listed in episodes.jsonl, the training episodes counted exactly as --episodes asked,
every recorded training episode handed to the trainer once, an intact trainer checkpoint, and a
strict-JSON summary. The number of faults injected (a signal that found the run still going) and
survived is printed (``-s`` shows it) for the README.

Bounded: tiny random models, 2 arms, 4-step episodes, 4 training episodes, 3 seeds; each run has a
generous time limit that only a hung session would reach (no timing margin is asserted).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import session_helpers as h
import torch

from vlac.episode.recording import EpisodeIndex
from vlac.session.outdir_recovery import UNREADABLE_DIR
from vlac_core.bag import BagError, inspect_bag, read_episode
from vlac_trainer.training_state import load_training_state

SEEDS = (0, 1, 2)
EPISODES = 4
FAULTS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
#: A fault lands this long (uniform, seconds) after the session says it is loading its models.
FAULT_WINDOW_S = (0.0, 8.0)
#: Only a hung run reaches this.
RUN_LIMIT_S = 600


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    return h.build_models(tmp_path_factory.mktemp("fault_models"))


class Run:
    """One `vlac session` subprocess whose output is read on a thread (so it never blocks on a full pipe)."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vlac.cli", "session", "--config", str(config), "--episodes", str(EPISODES)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.loading = threading.Event()  # the session has started building (models, arms)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("session: critic "):
                self.loading.set()
        self.loading.set()  # ended without getting there

    def wait(self) -> int:
        code = self.proc.wait(timeout=RUN_LIMIT_S)
        self._reader.join(timeout=60)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def rebuilt_bags(self) -> int:
        """Unfinished bags this run's start-up repair rebuilt (a SIGKILL before it left them)."""
        found = re.search(r"session: (\d+) unfinished bag\(s\) from a crash rebuilt", self.output)
        return int(found.group(1)) if found else 0


#: what inspect_bag says of a bag SIGKILLed between its folder's creation and its first message
_KILLED_AT_BIRTH = ("expected one .mcap file in the folder, found 0", "expected one episode/start message, found 0")


def recorded_steps(out: Path) -> dict[str, int]:
    """Steps on disk per bag (finished or not) under bags/; every bag must at least be recoverable.

    A bag killed before its first message holds no step (the next start moves it aside with a note),
    so it is not counted; any other unreadable bag fails the test.
    """
    steps = {}
    for bag in sorted((out / "bags").glob("*/*")):
        if bag.is_dir() and not bag.name.startswith("."):
            try:
                steps[f"{bag.parent.name}/{bag.name}"] = inspect_bag(bag).episode.length
            except BagError as error:
                if not any(reason in str(error) for reason in _KILLED_AT_BIRTH):
                    raise
    return steps


def no_step_lost(out: Path, before: dict[str, int]) -> None:
    after = recorded_steps(out)
    for bag, steps in before.items():
        assert bag in after, f"{bag} vanished"
        assert after[bag] >= steps, f"{bag}: {steps} steps recorded, {after[bag]} left"


def test_sigint_sigterm_and_sigkill_at_random_moments_lose_nothing_and_the_session_completes(models, tmp_path_factory):
    injected = survived = rebuilt = 0
    kinds: dict[str, int] = {}
    for seed in SEEDS:
        rng = random.Random(seed)
        root = tmp_path_factory.mktemp(f"faults_seed{seed}")
        out = root / "out"
        config = h.write_config(
            root / "s.yaml", *models, out, max_steps=4, arms=2, eval_at_start=True, eval_at_end=True, eval_trials=1
        )
        before: dict[str, int] = {}
        for fault in rng.sample(FAULTS, len(FAULTS)):
            run = Run(config)
            assert run.loading.wait(RUN_LIMIT_S)
            time.sleep(rng.uniform(*FAULT_WINDOW_S))  # the random moment (not a margin: any moment must do)
            hit = run.proc.poll() is None
            if hit:
                run.proc.send_signal(fault)
                injected += 1
                kinds[fault.name] = kinds.get(fault.name, 0) + 1
            code = run.wait()
            if fault is not signal.SIGKILL and code not in (0, 128 + fault):
                pytest.fail(f"seed {seed}, {fault.name}: exit {code}\n{run.output}")
            no_step_lost(out, before)  # this run kept what earlier runs recorded
            before = recorded_steps(out)
            survived += int(hit)
            rebuilt += run.rebuilt_bags

        final = Run(config)
        assert final.wait() == 0, f"seed {seed}: the resumed session failed\n{final.output}"
        rebuilt += final.rebuilt_bags
        no_step_lost(out, before)
        check_finished_folder(out, seed)
    print(
        f"\nfault injection: {injected} faults injected ({kinds}) over {len(SEEDS)} seeds, {survived} survived; "
        f"{rebuilt} unfinished bag(s) rebuilt on resume"
    )
    assert injected >= len(SEEDS) * len(FAULTS) // 2, "most signals should find the run still going"


def check_finished_folder(out: Path, seed: int) -> None:
    def refuse(token):
        raise ValueError(f"summary.json holds {token}")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert summary["training_episodes"] == EPISODES, f"seed {seed}: {summary['training_episodes']} episodes"
    # Only bags killed at birth (no message, no step: see recorded_steps) may have been moved aside as unreadable.
    notes = sorted((out / UNREADABLE_DIR).glob("*/*/NOTE.txt"))
    for note in notes:
        text = note.read_text(encoding="utf-8")
        assert any(reason in text for reason in _KILLED_AT_BIRTH), f"seed {seed}: a bag could not be recovered: {text}"
    moved = sorted(p for p in (out / UNREADABLE_DIR).glob("*/*")) if (out / UNREADABLE_DIR).exists() else []
    assert len(moved) == len(notes), f"seed {seed}: {len(moved)} bag(s) moved aside, {len(notes)} with a note"
    rows = EpisodeIndex(out / "episodes.jsonl").rows()
    bags = sorted(p for p in (out / "bags").glob("*/*") if p.is_dir())
    assert not [p for p in bags if p.name.startswith(".")], "a recovery was left half-done"
    assert sorted(r["episode_id"] for r in rows) == sorted(p.name for p in bags)  # every bag listed, once
    for row in rows:
        episode = read_episode(out / row["bag_path"])  # complete, where the index says
        assert episode.length == row["length"]
    train_bags = [p for p in bags if p.parent.name == "train"]
    # Every recorded training episode reached the trainer exactly once, across all the restarts.
    assert summary["trainer"]["episodes_received"] == len(train_bags), f"seed {seed}"
    state = load_training_state(out / "trainer")  # an intact generation
    assert sorted(state.counters["ingested_ids"]) == sorted(p.name for p in train_bags)
