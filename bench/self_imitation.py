"""Filtered self-imitation on pick_bowl: rounds of sample, keep the successes, clone them, score greedily.

Each round of one training seed:
  1. collect  ``--episodes`` rollouts of the current policy, sampled at logit temperature ``--temperature``
     (the RL experiment's 0.3), with ``critic_rollouts collect --variants policy`` on training scenes that no
     other round or seed uses;
  2. train    ``vlac train actor`` from the current policy on the successful rollouts of every round so far
     (``self_data``: each cut at the step the simulator's ground truth first reports success), ``--steps``
     steps; a round whose data holds no success keeps the current policy;
  3. score    the new policy greedily with ``vlac actor eval`` on ``--eval-trials`` held-out scenes from
     ``--eval-seed`` (the RL experiment's 40 final-check scenes by default), ended by ground truth.
Round 0 scores the prior. The only reward is the ground truth's success: the control of the question "is the
improvement in the data the loop collects?" that PPO (bench/rl_experiment.py) has not extracted.

Seed k sets the training scenes (SCENE_BASE + k x SCENES_PER_SEED, then ``--episodes`` per round) and the
training order; every seed is scored on the same held-out scenes. Resumable: a step whose output is complete
(rollouts_summary.json, training_info.json, results.json) is not run again; a run's settings may not change
except ``--rounds`` (a changed setting is an error naming it).

Outputs: <out>/seed<k>/round<r>/{data,policy,work,eval}/ (round0 has eval/ only), <out>/seed<k>/settings.json,
<out>/self_imitation.png (greedy success against collected episodes, one line per seed and their mean), and
as the last line one JSON object (per seed and round: episodes collected, successes kept, greedy success).

Run it alone on a 2-core machine: every step uses ``--threads`` torch threads, and beside another job (an RL
session) a collection ran 10x slower than alone (21 s per rollout instead of 1.7 s).

Usage: MUJOCO_GL=egl .venv/bin/python bench/self_imitation.py [--seeds 0 1] [--rounds 3] [--episodes 160]
       [--out out/self_imitation]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rl_experiment.py, beside it
from rl_experiment import ROOT, from_root, simulating_env

SCENE_BASE = 600_000  # training scenes; the held-out ones start at 1_000_000
SCENES_PER_SEED = 100_000
MAX_SEED = 3  # SCENE_BASE + 4 x SCENES_PER_SEED reaches the held-out scenes
#: Settings a started seed may not change (its rounds may grow).
FIXED = ("prior", "task", "episodes", "temperature", "max_steps", "steps", "lr", "batch_size", "eval_trials",
         "eval_seed")  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/self_imitation"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--episodes", type=int, default=160, help="rollouts collected per round")
    p.add_argument("--prior", type=Path, default=ROOT / "models" / "sim_actor", help="default: the shipped prior")
    p.add_argument("--task", default="pick_bowl")
    p.add_argument("--temperature", type=float, default=0.3, help="logit temperature of the collecting policy")
    p.add_argument("--max-steps", type=int, default=60)
    p.add_argument("--steps", type=int, default=900, help="optimizer steps per round")
    p.add_argument("--lr", type=float, default=1.0e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-trials", type=int, default=40)
    p.add_argument("--eval-seed", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads of every step")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.episodes < 1 or args.eval_trials < 1 or args.steps < 1:
        p.error("--rounds, --episodes, --eval-trials and --steps must be >= 1")
    bad = [s for s in args.seeds if not 0 <= s <= MAX_SEED]
    if bad:
        p.error(f"--seeds {bad}: each in 0..{MAX_SEED} (training scenes stay below the held-out ones)")
    if args.rounds * args.episodes > SCENES_PER_SEED:
        p.error(f"--rounds x --episodes = {args.rounds * args.episodes}: at most {SCENES_PER_SEED} scenes per seed")
    args.out, args.prior = from_root(args.out), from_root(args.prior)
    return args


def settings_of(args: argparse.Namespace) -> dict:
    return {key: str(v) if isinstance(v := getattr(args, key), Path) else v for key in FIXED}


def check_settings(seed_dir: Path, settings: dict) -> None:
    """Write the seed's settings the first time; afterwards refuse a change, naming the keys."""
    path = seed_dir / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        changed = sorted(k for k in settings if old.get(k) != settings[k])
        if changed:
            raise SystemExit(f"self_imitation: {seed_dir}: settings changed since it started: {', '.join(changed)}")
        return
    seed_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1))


def scene_seed(seed: int, round_: int, episodes: int) -> int:
    """First training scene of round ``round_`` (from 1) of training seed ``seed``."""
    return SCENE_BASE + seed * SCENES_PER_SEED + (round_ - 1) * episodes


def run_logged(command: list[str], log: Path) -> None:
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.run(
            command, cwd=ROOT, env=simulating_env(), stdout=handle, stderr=subprocess.STDOUT
        ).returncode
    if code != 0:
        raise SystemExit(f"self_imitation: exit {code} of {' '.join(command[:6])} ... (see {log})")


def collect(policy: Path, data: Path, first_scene: int, args) -> dict:
    summary = data / "rollouts_summary.json"
    if not summary.is_file():
        run_logged(
            [sys.executable, "-m", "vlac_trainer.offline.critic_rollouts", "collect", "--task", args.task,
             "--variants", "policy", "--episodes", str(args.episodes), "--seed", str(first_scene),
             "--out", str(data), "--actor", str(policy), "--temperature", str(args.temperature),
             "--max-steps", str(args.max_steps), "--parallel", "2", "--threads", str(args.threads)],
            data.with_name("collect.log"),
        )  # fmt: skip
    return json.loads(summary.read_text())["this_run"]["policy"]


def train(base: Path, data: list[Path], round_dir: Path, seed: int, args) -> Path:
    policy = round_dir / "policy"
    if not (policy / "training_info.json").is_file():
        section = {
            "base_model": str(base),
            "self_data": [str(d) for d in data],
            "out_dir": str(policy),
            "work_dir": str(round_dir / "work"),
            "image_size_px": 64,
            "patch_size_px": 8,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup_steps": max(1, args.steps // 30),
            "checkpoint_every": max(1, args.steps // 3),
            "seed": seed,
            "threads": args.threads,
            "value_coef": 0.0,
        }
        config = round_dir / "train_actor.yaml"
        config.write_text(yaml.safe_dump({"train_actor": {"ros__parameters": section}}))
        run_logged([sys.executable, "-m", "vlac.cli", "train", "actor", "--config", str(config), "--no-progress"],
                   round_dir / "train.log")  # fmt: skip
    return policy


def evaluate(policy: Path, eval_dir: Path, args) -> dict:
    results = eval_dir / "results.json"
    if not results.is_file():
        run_logged(
            [sys.executable, "-m", "vlac.cli", "actor", "eval", "--checkpoint", str(policy), "--task", args.task,
             "--episodes", str(args.eval_trials), "--seed", str(args.eval_seed), "--max-steps", str(args.max_steps),
             "--threads", str(args.threads), "--no-progress", "--out", str(eval_dir)],
            eval_dir.with_name("eval.log"),
        )  # fmt: skip
    task = json.loads(results.read_text())["tasks"][0]
    return {"successes": task["successes"], "trials": task["episodes"]}


def run_seed(seed: int, args) -> list[dict]:
    """Every round of one seed (finished steps are read back); one row per round, round 0 the prior."""
    seed_dir = args.out / f"seed{seed}"
    check_settings(seed_dir, settings_of(args))
    (seed_dir / "round0").mkdir(parents=True, exist_ok=True)
    rows = [{"round": 0, "episodes_collected": 0, "self_episodes": 0, "trained": False,
             **evaluate(args.prior, seed_dir / "round0" / "eval", args)}]  # fmt: skip
    policy, kept = args.prior, []
    for round_ in range(1, args.rounds + 1):
        round_dir = seed_dir / f"round{round_}"
        round_dir.mkdir(parents=True, exist_ok=True)
        tally = collect(policy, round_dir / "data", scene_seed(seed, round_, args.episodes), args)
        trained = tally["ever_success"] > 0
        if trained:
            kept.append(round_dir / "data")
        if trained:
            policy = train(policy, kept, round_dir, seed, args)
        row = {"round": round_, "episodes_collected": round_ * args.episodes, "collected_successes":
               tally["ever_success"], "trained": trained, **evaluate(policy, round_dir / "eval", args)}  # fmt: skip
        if trained:
            row["self_episodes"] = json.loads((policy / "training_info.json").read_text())["self_episodes"]
        rows.append(row)
        print(f"self_imitation: seed {seed} round {round_}: {row}", flush=True)
    return rows


def plot(results: dict[int, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    rates = []
    for seed, rows in sorted(results.items()):
        x = [r["episodes_collected"] for r in rows]
        y = [100.0 * r["successes"] / r["trials"] for r in rows]
        rates.append(y)
        ax.plot(x, y, marker="o", lw=0.8, alpha=0.6, label=f"seed {seed}")
    depth = min(len(r) for r in rates)
    mean = np.mean([r[:depth] for r in rates], axis=0)
    ax.plot(x[:depth], mean, color="black", lw=2, label="mean")
    trials = next(iter(results.values()))[0]["trials"]
    ax.set_xlabel("rollouts collected (sampled at the policy's temperature)")
    ax.set_ylabel(f"greedy success, {trials} held-out scenes (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Filtered self-imitation (ground-truth success as the filter)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)  # the commands run from the repository root, where the default prior lies
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = {seed: run_seed(seed, args) for seed in dict.fromkeys(args.seeds)}
    plot(results, args.out / "self_imitation.png")
    final = [rows[-1]["successes"] / rows[-1]["trials"] for rows in results.values()]
    summary = {
        "bench": "self_imitation",
        "task": args.task,
        "settings": settings_of(args),
        "rounds": args.rounds,
        "final_success_mean": round(sum(final) / len(final), 4),
        "final_success_min": round(min(final), 4),
        "final_success_max": round(max(final), 4),
        "seeds": {str(seed): rows for seed, rows in results.items()},
        "wall_s": round(time.monotonic() - started, 1),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
