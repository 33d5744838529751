"""A run's training success against the prior's on the very same scenes: did the policy learn, or did the scenes
change?

Why: the training success of every group-baseline run (``rl_experiment.py`` variants ``gg*``) rose over its first
episodes and fell back later, and docs/rl_experiments.md read that as the update first helping, then hurting. But a
block of training episodes is also a block of scenes (a run's fresh starts are consecutive scene seeds), and a block of
hard scenes fails more whatever the policy. The control is the prior itself, sampled as the run sampled it, on
the run's own training scenes: ``vlac actor eval --checkpoint <run's prior> --sample --repeats R --seed S
--episodes N`` over the seeds the run drew. Per block of ``--block`` training episodes this prints the run's
successes, the prior's expected successes on the block's scenes (the sum over the block's episodes of the
prior's success rate on that episode's scene, averaged over its repeats), and the difference: what the
updates changed, with the scenes held fixed (with the block's own null spread: ``--block 120`` on a long run sets
each 120 episodes against the prior). ``null_sd`` is the difference's spread were the run's policy the
prior itself: the run's draws and the control's own (sum over scenes of n p(1-p) + n^2 p(1-p) / R, for n run
episodes and R control draws on a scene of rate p, estimated without bias from the R draws). Over many scenes the
estimate is sound; over a few (a pool, one scene) R draws per scene pin p poorly (four wins of four give a spread of
0): give such a run more repeats.

The training episodes counted are the report's (``rl_report.training_outcomes``): finished, from a scene's start,
the simulator's verdict, an episode a person helped a failure. A training scene the evaluations did not cover is
an error that names it (a block's expectation would be silently short otherwise). The figures are
``rl_report.scene_control_figures``, which ``rl_experiment.py --scene-control`` puts in its table; this script
reads any run against any evaluations (another policy's, say).

``--by-layout`` adds the same whole-run figures for the scenes with the goal on the arm's left and on its right
(``rl_report.scene_sides``): a run that learned one layout's carry and not the other's shows it there.

Usage: ``.venv/bin/python bench/scene_control.py out/rl30/gg/seed0 --prior-eval out/scene_control/s0``
(``--prior-eval`` repeatable: results.json files or the folders holding them); the last line of output is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_report import (
    prior_outcomes,
    read_eval_results,
    read_jsonl,
    scene_control_figures,
    scene_sides,
    verdict_rows,
)


def _evaluations(paths: list[Path]) -> list[dict]:
    """The ``vlac actor eval`` results at ``paths`` (files, or the folders holding results.json)."""
    evaluations = []
    for path in paths:
        try:
            evaluations.append(read_eval_results(path))
        except ValueError as error:
            raise SystemExit(f"scene_control: --prior-eval {error}") from None
    return evaluations


def layout_figures(rows: list[dict], prior: dict) -> dict:
    """The whole-run figures of ``scene_control_figures`` for the rows of each layout's scenes (``scene_sides``);
    a layout with no training episode is left out."""
    sides = scene_sides([row.get("start_state_id") or "" for row in rows])
    figures = {}
    for side in ("left", "right"):
        side_rows = [row for row in rows if sides.get(row.get("start_state_id") or "") == side]
        if not verdict_rows(side_rows):
            continue
        whole = scene_control_figures(side_rows, prior, block=len(side_rows))
        keys = ("run_successes", "prior_expected", "difference", "null_sd")
        figures[side] = {"episodes": whole["blocks"][0]["episodes"], **{k: whole[k] for k in keys}}
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder: <out>/<variant>/seed<k>")
    parser.add_argument(
        "--prior-eval", type=Path, action="append", required=True, help="vlac actor eval results (repeatable)"
    )
    parser.add_argument("--block", type=int, default=20, help="training episodes per block (20)")
    parser.add_argument("--by-layout", action="store_true", help="also per layout: the goal on the left, the right")
    args = parser.parse_args(argv)
    if args.block < 1:
        raise SystemExit(f"scene_control: --block {args.block}: must be >= 1")
    rows = read_jsonl(args.run / "episodes.jsonl")
    prior = prior_outcomes(_evaluations(args.prior_eval))
    try:
        figures = scene_control_figures(rows, prior, args.block)
    except ValueError as error:
        raise SystemExit(f"scene_control: {args.run / 'episodes.jsonl'}: {error}") from None
    for b in figures["blocks"]:
        print(
            f"scenes {b['scenes'][0]}-{b['scenes'][1]}: run {b['run_successes']}/{b['episodes']}, "
            f"prior {b['prior_expected']:.1f}, difference {b['difference']:+.1f} (null sd {b['null_sd']:.1f})"
        )
    print(
        f"whole run: {figures['run_successes']} successes, prior {figures['prior_expected']:.1f}, "
        f"difference {figures['difference']:+.1f}"
    )
    print(f"(spread of the difference were the run's policy the prior: {figures['null_sd']:.1f})")
    figures = {"run": str(args.run), **{k: v for k, v in figures.items() if k != "prior_rolling"}}
    if args.by_layout:
        figures["by_layout"] = layout_figures(rows, prior)
        for side, f in figures["by_layout"].items():
            print(
                f"goal {side}: run {f['run_successes']}/{f['episodes']}, prior {f['prior_expected']:.1f}, "
                f"difference {f['difference']:+.1f} (null sd {f['null_sd']:.1f})"
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
