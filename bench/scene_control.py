"""A run's training success against the prior's on the very same scenes: did the policy learn, or did the scenes
change?

Why: the training success of every group-baseline run (``rl_experiment.py`` variants ``gg*``) rose over its first
episodes and fell back later, and the README read that as the update first helping, then hurting. But a block of
training episodes is also a block of scenes (a run's fresh starts are consecutive scene seeds), and a block of
hard scenes fails more whatever the policy. The control is the prior itself, sampled as the run sampled it, on
the run's own training scenes: ``vlac actor eval --checkpoint <run's prior> --sample --repeats R --seed S
--episodes N`` over the seeds the run drew. Per block of ``--block`` training episodes this prints the run's
successes, the prior's expected successes on the block's scenes (the sum over the block's episodes of the
prior's success rate on that episode's scene, averaged over its repeats), and the difference: what the
updates changed, with the scenes held fixed. ``null_sd`` is the difference's spread were the run's policy the
prior itself: the run's draws and the control's own (sum over scenes of n p(1-p) + n^2 p(1-p) / R, for n run
episodes and R control draws on a scene of rate p, estimated without bias from the R draws). Over many scenes the
estimate is sound; over a few (a pool, one scene) R draws per scene pin p poorly (four wins of four give a spread of
0): give such a run more repeats.

The training episodes counted are the report's (``rl_report.training_outcomes``): finished, from a scene's start,
the simulator's verdict, an episode a person helped a failure. A training scene the evaluations did not cover is
an error that names it (a block's expectation would be silently short otherwise).

Usage: ``.venv/bin/python bench/scene_control.py out/rl30/gg/seed0 --prior-eval out/scene_control/s0``
(``--prior-eval`` repeatable: results.json files or the folders holding them); the last line of output is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from vlac.session.report import policy_succeeded

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_report import has_whole_task_verdict, read_jsonl

_SCENE = re.compile(r"^(?P<task>.+)-seed(?P<seed>\d+)$")  # piper_driver.sim.arm.seed_start_state's id


def scene_of(start_state_id: str) -> tuple[str, int]:
    """(task, scene seed) of a fresh start's id ``<task>-seed<k>``."""
    match = _SCENE.match(start_state_id or "")
    if match is None:
        raise ValueError(f"start_state_id {start_state_id!r}: not a fresh scene start <task>-seed<k>")
    return match["task"], int(match["seed"])


def prior_outcomes(evaluations: list[dict]) -> dict[tuple[str, int], list[bool]]:
    """The draws per (task, scene seed) over every outcome of the given ``vlac actor eval`` results."""
    outcomes: dict[tuple[str, int], list[bool]] = defaultdict(list)
    for evaluation in evaluations:
        for task in evaluation["tasks"]:
            for outcome in task["outcomes"]:
                outcomes[(outcome["task"], outcome["seed"])].append(bool(outcome["success"]))
    return dict(outcomes)


def _bernoulli_variance(draws: list[bool]) -> float:
    """Unbiased p(1-p) from the draws (0 for a single draw: nothing to tell it by)."""
    r = len(draws)
    if r < 2:
        return 0.0
    p = sum(draws) / r
    return p * (1 - p) * r / (r - 1)


def _checked_scenes(train_rows: list[dict], prior: dict[tuple[str, int], list[bool]]) -> list[tuple[str, int]]:
    scenes = [scene_of(r["start_state_id"]) for r in train_rows]
    missing = sorted(set(scenes) - prior.keys())
    if missing:
        shown = ", ".join(f"{task}-seed{seed}" for task, seed in missing[:5])
        raise ValueError(f"{len(missing)} training scene(s) not in the prior's evaluations: {shown}")
    return scenes


def block_figures(train_rows: list[dict], prior: dict[tuple[str, int], list[bool]], block: int) -> list[dict]:
    """Per block of ``block`` training episodes: the run's successes, the prior's expected ones, the scenes."""
    scenes = _checked_scenes(train_rows, prior)
    blocks = []
    for first in range(0, len(train_rows), block):
        rows, block_scenes = train_rows[first : first + block], scenes[first : first + block]
        run = sum(policy_succeeded(r, "success") for r in rows)
        expected = sum(sum(prior[scene]) / len(prior[scene]) for scene in block_scenes)
        seeds = [seed for _, seed in block_scenes]
        blocks.append(
            {
                "episodes": len(rows),
                "scenes": [min(seeds), max(seeds)],
                "run_successes": run,
                "prior_expected": round(expected, 2),
                "difference": round(run - expected, 2),
            }
        )
    return blocks


def null_sd(train_rows: list[dict], prior: dict[tuple[str, int], list[bool]]) -> float:
    """The spread of the whole run's difference were its policy the prior (see the module's docstring)."""
    episodes = Counter(_checked_scenes(train_rows, prior))
    variance = sum((n + n * n / len(prior[scene])) * _bernoulli_variance(prior[scene]) for scene, n in episodes.items())
    return math.sqrt(variance)


def _evaluations(paths: list[Path]) -> list[dict]:
    """The ``vlac actor eval`` results at ``paths`` (files, or the folders holding results.json)."""
    evaluations = []
    for path in paths:
        file = path / "results.json" if path.is_dir() else path
        try:
            evaluations.append(json.loads(file.read_text()))
        except (OSError, ValueError) as error:
            message = f"scene_control: --prior-eval {file}: not a readable vlac actor eval results.json ({error})"
            raise SystemExit(message) from None
    return evaluations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder: <out>/<variant>/seed<k>")
    parser.add_argument(
        "--prior-eval", type=Path, action="append", required=True, help="vlac actor eval results (repeatable)"
    )
    parser.add_argument("--block", type=int, default=20, help="training episodes per block (20)")
    args = parser.parse_args(argv)
    if args.block < 1:
        raise SystemExit(f"scene_control: --block {args.block}: must be >= 1")
    rows = read_jsonl(args.run / "episodes.jsonl")
    train = [r for r in rows if has_whole_task_verdict(r)]
    if not train:
        raise SystemExit(f"scene_control: {args.run / 'episodes.jsonl'} has no training episode with a verdict")
    prior = prior_outcomes(_evaluations(args.prior_eval))
    try:
        blocks, spread = block_figures(train, prior, args.block), null_sd(train, prior)
    except ValueError as error:
        raise SystemExit(f"scene_control: {error}") from None
    for b in blocks:
        print(
            f"scenes {b['scenes'][0]}-{b['scenes'][1]}: run {b['run_successes']}/{b['episodes']}, "
            f"prior {b['prior_expected']:.1f}, difference {b['difference']:+.1f}"
        )
    total_run = sum(b["run_successes"] for b in blocks)
    total_prior = round(sum(b["prior_expected"] for b in blocks), 2)
    print(f"whole run: {total_run} successes, prior {total_prior:.1f}, difference {total_run - total_prior:+.1f}")
    print(f"(spread of the difference were the run's policy the prior: {spread:.1f})")
    figures = {
        "run": str(args.run),
        "blocks": blocks,
        "run_successes": total_run,
        "prior_expected": total_prior,
        "difference": round(total_run - total_prior, 2),
        "null_sd": round(spread, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
