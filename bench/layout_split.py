"""Success per scene layout: ``vlac actor eval`` results split by the side of the table the goal lies on.

Why: a pick_bowl (or sweep) scene seed puts the goal on the arm's left or right with the start across from it, so
the same carry is a move to +y in one layout and to -y in the other. An RL run whose training success rose on one
layout's scenes only (``scene_control.py --by-layout``) has learned something that carries to new scenes of that
layout only if its policy beats the prior there on held-out scenes: evaluate both alike (same scenes, same
decoding, same draws per scene) and read the split here.

For each results file: the successes and episodes per layout (``rl_report.scene_sides``) and in all; for every file
after the first, its difference from the first with the difference's spread were the two policies alike (pooled
binomial: sqrt(p (1 - p) (1/n1 + 1/n2)) x n1, in episodes of the first's count).

Usage: ``.venv/bin/python bench/layout_split.py out/rl43/sampled_heldout/prior out/rl43/sampled_heldout/s1_v30``
(results.json files or the folders holding them); the last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from piper_driver.sim.arm import seed_start_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_report import read_eval_results, scene_sides

LAYOUTS = ("left", "right", "all")


def scene_id(outcome: dict) -> str:
    """The start-state id of an evaluated episode's scene (``seed_start_state``'s, as ``scene_sides`` reads it)."""
    return seed_start_state(outcome["task"], outcome["seed"]).state_id


def layout_counts(evaluation: dict, sides: dict[str, str]) -> dict[str, dict[str, int]]:
    """{layout: {"successes", "episodes"}} over every outcome of one ``vlac actor eval`` result."""
    counts = {layout: {"successes": 0, "episodes": 0} for layout in LAYOUTS}
    for task in evaluation["tasks"]:
        for outcome in task["outcomes"]:
            side = sides[scene_id(outcome)]
            for layout in (side, "all"):
                counts[layout]["successes"] += bool(outcome["success"])
                counts[layout]["episodes"] += 1
    return counts


def difference(base: dict[str, int], other: dict[str, int]) -> dict:
    """``other``'s successes less ``base``'s (``other`` rescaled to ``base``'s episodes), and its null spread."""
    n1, n2 = base["episodes"], other["episodes"]
    if not n1 or not n2:
        return {"difference": None, "null_sd": None}
    p = (base["successes"] + other["successes"]) / (n1 + n2)
    return {
        "difference": round(other["successes"] * n1 / n2 - base["successes"], 2),
        "null_sd": round(math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)) * n1, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="vlac actor eval results; the first is the baseline")
    args = parser.parse_args(argv)
    try:
        evaluations = [read_eval_results(path) for path in args.results]
    except ValueError as error:
        raise SystemExit(f"layout_split: {error}") from None
    ids = {scene_id(o) for e in evaluations for t in e["tasks"] for o in t["outcomes"]}
    sides = scene_sides(sorted(ids))
    rows = []
    for path, evaluation in zip(args.results, evaluations, strict=True):
        counts = layout_counts(evaluation, sides)
        row = {"results": str(path), "checkpoint": evaluation.get("checkpoint"), **counts}
        if rows:
            row["against_first"] = {layout: difference(rows[0][layout], counts[layout]) for layout in LAYOUTS}
        rows.append(row)
        cells = ", ".join(f"{layout} {counts[layout]['successes']}/{counts[layout]['episodes']}" for layout in LAYOUTS)
        print(f"{path}: {cells}")
        for layout, d in row.get("against_first", {}).items():
            if d["difference"] is not None:
                print(f"  {layout}: {d['difference']:+.1f} against the first (null sd {d['null_sd']:.1f})")
    figures = {"scenes_per_layout": {s: sum(v == s for v in sides.values()) for s in ("left", "right")}, "rows": rows}
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
