"""How fast the `vlac` command answers a wrong flag, a bad parameter file or a broken checkpoint.

Issue 13: errors took 8-27 s to appear because heavy imports (torch, transformers, mujoco) ran before
the argument checks. Each case runs ``python -m vlac.cli ...`` in a fresh interpreter ``--repeats``
times and reports the median wall time, the exit status and the first line of stderr. ``--src DIR``
runs another checkout's sources instead (e.g. ``git archive <commit> src | tar -x -C DIR``), to
compare before and after on the same machine and load.

Usage: python bench/cli_latency.py [--repeats 3] [--src DIR]
Prints a line per case and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vlac", "vlac_core", "vlac_critic", "vlac_actor", "vlac_trainer", "piper_driver")


def write_fixtures(tmp: Path) -> dict[str, Path]:
    """A parameter file naming an empty checkpoint folder, one with truncated weights, and malformed YAML."""
    from vlac.param_file import merged_param_text

    demo = merged_param_text(ROOT / "config" / "demo.yaml")  # a plain file: the copies live elsewhere
    (tmp / "empty").mkdir()
    truncated = shutil.copytree(ROOT / "models" / "sim_critic", tmp / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    paths = {}
    for name, actor, critic in (
        ("empty", tmp / "empty", ROOT / "models" / "sim_critic"),
        ("truncated", ROOT / "models" / "sim_actor", truncated),
    ):
        text = demo.replace("checkpoint_path: models/sim_actor", f"checkpoint_path: {actor}")
        paths[name] = tmp / f"{name}.yaml"
        paths[name].write_text(text.replace("checkpoint: models/sim_critic", f"checkpoint: {critic}"))
    paths["malformed"] = tmp / "malformed.yaml"
    paths["malformed"].write_text("sim_node:\n  ros__parameters:\n    task: [pick_bowl\n")
    paths["truncated_dir"] = truncated
    return paths


def cases(fx: dict[str, Path], tmp: Path) -> list[tuple[str, list[str]]]:
    return [
        ("help", ["--help"]),
        ("session: wrong flag value", ["session", "--config", "config/demo.yaml", "--arms", "0"]),
        ("session: malformed YAML", ["session", "--config", str(fx["malformed"])]),
        ("session: empty checkpoint folder", ["session", "--config", str(fx["empty"]), "--out", str(tmp / "o1")]),
        ("session: truncated weights", ["session", "--config", str(fx["truncated"]), "--out", str(tmp / "o2")]),
        ("actor eval: wrong flag value", ["actor", "eval", "--checkpoint", "models/sim_actor", "--episodes", "0"]),
        ("critic eval: wrong flag value", ["critic", "eval", "x", "--checkpoint", "models/sim_critic", "--skip", "0"]),
        ("critic eval: truncated weights", ["critic", "eval", "x", "--checkpoint", str(fx["truncated_dir"])]),
        ("collect-demos: unknown task", ["collect-demos", "--task", "fold", "--episodes", "1", "--out", str(tmp)]),
    ]


def run_case(argv: list[str], env: dict[str, str], repeats: int) -> dict:
    times, status, first_line = [], None, ""
    for _ in range(repeats):
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "vlac.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True
        )
        times.append(time.perf_counter() - began)
        status, first_line = done.returncode, (done.stderr.strip().splitlines() or [""])[0]
    return {"median_s": round(statistics.median(times), 2), "max_s": round(max(times), 2), "exit": status,
            "stderr": first_line[:160]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--src", type=Path, default=None, help="a checkout whose src/ to run instead of this one")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    if args.src is not None:
        sources = [str((args.src / "src" / pkg).resolve()) for pkg in PACKAGES]
        env["PYTHONPATH"] = os.pathsep.join([*sources, env.get("PYTHONPATH", "")])
    results = {}
    with tempfile.TemporaryDirectory(prefix="cli_latency_") as tmp_name:
        tmp = Path(tmp_name)
        fixtures = write_fixtures(tmp)
        for name, argv in cases(fixtures, tmp):
            results[name] = run_case(argv, env, args.repeats)
            r = results[name]
            print(f"{name:<34} {r['median_s']:>6.2f} s (max {r['max_s']:.2f})  exit {r['exit']}  {r['stderr'][:90]}")
    print(json.dumps({"src": str(args.src or ROOT), "repeats": args.repeats, "cpus": os.cpu_count(), "cases": results}))


if __name__ == "__main__":
    main()
