"""bench/self_imitation.py: rounds of collect, keep the successes, clone, score; resumable, settings pinned."""

from __future__ import annotations

import itertools
import json

import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def sil():
    yield from load_bench("self_imitation")


def test_training_scenes_never_meet_each_other_or_the_held_out_ones(sil):
    args = sil.parse_args(["--seeds", "0", "3", "--rounds", "4", "--episodes", "160"])
    firsts = [sil.scene_seed(s, r, args.episodes) for s in args.seeds for r in range(1, args.rounds + 1)]
    ranges = sorted((f, f + args.episodes) for f in firsts)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    assert ranges[-1][1] <= args.eval_seed
    with pytest.raises(SystemExit):
        sil.parse_args(["--seeds", "4"])
    with pytest.raises(SystemExit):
        sil.parse_args(["--rounds", "1000", "--episodes", "160"])


def test_a_started_seed_refuses_changed_settings_but_may_grow_its_rounds(sil, tmp_path):
    first = sil.settings_of(sil.parse_args(["--rounds", "2"]))
    sil.check_settings(tmp_path, first)
    sil.check_settings(tmp_path, sil.settings_of(sil.parse_args(["--rounds", "5"])))
    with pytest.raises(SystemExit, match="settings changed since it started: lr, steps"):
        sil.check_settings(tmp_path, sil.settings_of(sil.parse_args(["--steps", "10", "--lr", "0.001"])))


def test_each_round_trains_the_last_policy_on_every_successful_round_so_far(sil, tmp_path, monkeypatch):
    """Round 2 collects no success and keeps round 1's policy; round 3 trains it on rounds 1 and 3."""
    collected = {1: 5, 2: 0, 3: 7}
    calls = []

    def collect(policy, data, first_scene, args):
        round_ = int(data.parent.name.removeprefix("round"))
        calls.append(("collect", round_, str(policy), first_scene))
        return {"episodes": args.episodes, "success": collected[round_], "ever_success": collected[round_]}

    def train(base, data, round_dir, seed, args):
        calls.append(("train", round_dir.name, str(base), [d.parent.name for d in data]))
        policy = round_dir / "policy"
        policy.mkdir(parents=True)
        (policy / "training_info.json").write_text(json.dumps({"self_episodes": len(data)}))
        return policy

    def evaluate(policy, eval_dir, args):
        calls.append(("eval", eval_dir.parent.name, str(policy)))
        return {"successes": len(calls), "trials": 40}

    monkeypatch.setattr(sil, "collect", collect)
    monkeypatch.setattr(sil, "train", train)
    monkeypatch.setattr(sil, "evaluate", evaluate)
    args = sil.parse_args(["--out", str(tmp_path), "--rounds", "3", "--episodes", "10", "--seeds", "1"])
    rows = sil.run_seed(1, args)
    r1, r3 = tmp_path / "seed1" / "round1" / "policy", tmp_path / "seed1" / "round3" / "policy"
    assert calls == [
        ("eval", "round0", "models/sim_actor"),
        ("collect", 1, "models/sim_actor", 700_000),
        ("train", "round1", "models/sim_actor", ["round1"]),
        ("eval", "round1", str(r1)),
        ("collect", 2, str(r1), 700_010),
        ("eval", "round2", str(r1)),
        ("collect", 3, str(r1), 700_020),
        ("train", "round3", str(r1), ["round1", "round3"]),
        ("eval", "round3", str(r3)),
    ]
    assert [r["episodes_collected"] for r in rows] == [0, 10, 20, 30]
    assert [r.get("collected_successes") for r in rows] == [None, 5, 0, 7]
    assert [r["trained"] for r in rows] == [False, True, False, True]


def test_a_round_without_any_success_keeps_the_prior(sil, tmp_path, monkeypatch):
    monkeypatch.setattr(sil, "collect", lambda *a: {"ever_success": 0})
    monkeypatch.setattr(sil, "train", lambda *a: pytest.fail("trained without a success"))
    monkeypatch.setattr(sil, "evaluate", lambda policy, eval_dir, args: {"successes": 0, "trials": 1, "p": str(policy)})
    rows = sil.run_seed(0, sil.parse_args(["--out", str(tmp_path), "--rounds", "2"]))
    assert [(r["trained"], r["p"]) for r in rows] == [(False, "models/sim_actor")] * 3


def test_a_real_round_of_the_shipped_prior_runs_resumes_and_reports(sil, tmp_path, capsys):
    """Two 3-step rollouts (no success: the prior is kept) and a 1-trial evaluation, through the real commands;
    a second run reads every step back instead of running it."""
    out = tmp_path / "sil"
    argv = ["--out", str(out), "--rounds", "1", "--episodes", "2", "--max-steps", "3", "--eval-trials", "1",
            "--threads", "1"]  # fmt: skip
    assert sil.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = summary["seeds"]["0"]
    assert [(r["round"], r["trials"], r["episodes_collected"]) for r in rows] == [(0, 1, 0), (1, 1, 2)]
    data = json.loads((out / "seed0" / "round1" / "data" / "rollouts_summary.json").read_text())
    assert data["seeds"] == [600_000, 600_001] and data["temperature"] == 0.3
    assert (out / "self_imitation.png").stat().st_size > 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.json") if p.name != "summary.json"}
    assert sil.main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
