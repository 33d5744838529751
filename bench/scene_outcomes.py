"""Which scenes a policy solves: each evaluated scene's object position set against the policy's outcome there.

``vlac actor eval`` counts successes; this asks where they are. The object probe (bench/object_probe.py) found the
sweep prior's features blind to where along the table the trash is; a policy that does not see it can only solve the
scenes its one habitual motion happens to fit, and a policy that does should solve scenes spread over the table.

Input: ``NAME=PATH`` pairs, each a ``results.json`` of ``vlac actor eval``. Of one task (``--task``), every scene
(seed) they evaluated is reset in the simulator (no rendering) and the start position of the object the task moves
(``SimTask.object_key``) read. Scenes are binned by the object's x (mm, away from the robot's base) at
``--x-edges-mm`` (default: the terciles of the evaluated scenes), and per policy the script reports its successes per
bin and the mean object position of the scenes it solved and failed.

Usage: MUJOCO_GL=egl python bench/scene_outcomes.py NAME=RESULTS.json [NAME=RESULTS.json ...] [--task sweep]
    [--x-edges-mm 260 300]; prints a table, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # actor_probe.py, beside it
from actor_probe import named_paths


def load_outcomes(path: Path, task: str) -> dict[int, bool]:
    """{seed: success} of ``task``'s scenes in an eval's results.json; refuses a file without that task."""
    results = json.loads(Path(path).read_text())
    for entry in results.get("tasks", []):
        if entry["task"] == task:
            return {int(o["seed"]): bool(o["success"]) for o in entry["outcomes"]}
    found = [entry["task"] for entry in results.get("tasks", [])]
    raise ValueError(f"{path}: no outcomes of task {task!r} (it holds {found})")


def object_start_mm(task: str, seeds) -> dict[int, np.ndarray]:
    """{seed: the moved object's start centre (x, y, z), mm} for each scene of ``task``, from a reset simulator."""
    from piper_driver.sim.arm import SimArm
    from piper_driver.sim.backend import SimConfig
    from piper_driver.sim.tasks import make_task

    if not make_task(task).object_key:
        raise ValueError(f"task {task!r} names no object it moves (SimTask.object_key)")
    seeds = sorted(set(seeds))
    arm = SimArm("scenes", task, SimConfig(image_size_px=32), None, first_seed=seeds[0])
    try:
        positions = {}
        for seed in seeds:
            arm.reset_to_seed(seed, image=False)
            positions[seed] = np.asarray(arm.backend.object_mm(), dtype=np.float64)
        return positions
    finally:
        arm.close()


def by_bin(outcomes: dict[int, bool], positions: dict[int, np.ndarray], edges_mm) -> dict:
    """One policy's successes per x bin (``edges_mm`` inner edges: len + 1 bins) and the mean (x, y) of the
    scenes it solved and failed (None where there are none)."""
    seeds = sorted(outcomes)
    bins = np.digitize([positions[s][0] for s in seeds], edges_mm)
    per_bin = [0] * (len(edges_mm) + 1)
    for seed, b in zip(seeds, bins, strict=True):
        per_bin[int(b)] += int(outcomes[seed])

    def mean_xy(wanted: bool):
        rows = [positions[s][:2] for s in seeds if outcomes[s] == wanted]
        return np.round(np.mean(rows, axis=0), 1).tolist() if rows else None

    return {
        "scenes": len(seeds),
        "successes": sum(outcomes.values()),
        "successes_per_bin": per_bin,
        "solved_mean_xy_mm": mean_xy(True),
        "failed_mean_xy_mm": mean_xy(False),
    }


def scene_outcomes(named: dict[str, Path], task: str, edges_mm=None) -> dict:
    """The report of ``main`` for ``named`` results files (see the module docstring)."""
    outcomes = {name: load_outcomes(path, task) for name, path in named.items()}
    positions = object_start_mm(task, [s for o in outcomes.values() for s in o])
    xs = np.array([p[0] for p in positions.values()])
    if edges_mm is None:
        edges_mm = np.percentile(xs, [100 / 3, 200 / 3]).round(1).tolist()
    edges_mm = sorted(float(e) for e in edges_mm)
    scenes_per_bin = np.bincount(np.digitize(xs, edges_mm), minlength=len(edges_mm) + 1).tolist()
    return {
        "task": task,
        "x_edges_mm": edges_mm,
        "scenes_per_bin": scenes_per_bin,
        "policies": {name: by_bin(o, positions, edges_mm) for name, o in outcomes.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="NAME=PATH of a `vlac actor eval` results.json")
    parser.add_argument("--task", default="sweep")
    parser.add_argument("--x-edges-mm", type=float, nargs="+", default=None, help="inner bin edges of the object's x")
    args = parser.parse_args(argv)
    report = scene_outcomes(named_paths(parser, args.results, "results"), args.task, args.x_edges_mm)
    edges = report["x_edges_mm"]
    labels = [f"x<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in itertools.pairwise(edges)] + [f"x>={edges[-1]:g}"]
    print(
        f"{args.task}: scenes per object-x bin (mm) "
        + ", ".join(f"{lab}: {n}" for lab, n in zip(labels, report["scenes_per_bin"], strict=True))
    )
    for name, row in report["policies"].items():
        print(
            f"  {name:>16}: {row['successes']:>3}/{row['scenes']}  per bin {row['successes_per_bin']}"
            f"  solved mean xy {row['solved_mean_xy_mm']}  failed {row['failed_mean_xy_mm']}"
        )
    print(json.dumps({"scene_outcomes": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
