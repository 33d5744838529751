"""`vlac collect-demos`: record scripted episodes of a simulated task, for training and evaluation.

Writes, under ``--out``:
- ``npz/<task>_<variant>_s<seed>.npz``: the fast training format (``piper_driver.sim.demo_format``;
  read with ``load_episode_npz`` / ``iter_episodes``);
- ``bags/<task>_<variant>_s<seed>/``: the same episode as a rosbag2 MCAP bag (``vlac_core.bag``),
  for ROS tools and the trainer's bag reader (``--no-bags`` skips them);
- ``summary.json``: episodes, success counts per variant, settings (also printed, one JSON line).

Expert episodes use seeds ``--seed .. --seed+episodes-1``; with ``--failures`` each seed also gets
one failure episode, cycling stall / wrong_target / undo, for the critic's negatives.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="simulated task: pick_bowl or sweep")
    parser.add_argument("--episodes", type=int, required=True, help="number of expert episodes (one per seed)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--failures", action="store_true", help="also record one failure episode per seed")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--image-size", type=int, default=128, help="square image size in px (default 128)")
    parser.add_argument("--wrist", action="store_true", help="also record the wrist camera")
    parser.add_argument("--noise-mm", type=float, default=1.0, help="expert action noise, std in mm (default 1)")
    parser.add_argument("--noise-deg", type=float, default=0.5, help="expert action noise, std in deg (default 0.5)")
    parser.add_argument(
        "--variation",
        default="none",
        help="scene variation switches: none, all, or a comma list of lighting,table,camera",
    )
    parser.add_argument("--max-steps", type=int, default=150, help="step limit per episode (default 150)")
    parser.add_argument("--no-bags", action="store_true", help="write only the fast npz format")
    parser.add_argument("--robot-id", default="sim_0", help="robot id written into the bags (default sim_0)")


def _check(args: argparse.Namespace) -> None:
    from piper_driver.sim.tasks import TASKS

    if args.task not in TASKS:
        raise ValueError(f"--task: unknown task {args.task!r}; known: {', '.join(sorted(TASKS))}")
    if args.episodes < 1:
        raise ValueError(f"--episodes: expected at least 1, got {args.episodes}")
    if args.max_steps < 1:
        raise ValueError(f"--max-steps: expected at least 1, got {args.max_steps}")
    if args.noise_mm < 0 or args.noise_deg < 0:
        raise ValueError(f"--noise-mm/--noise-deg: expected non-negative, got {args.noise_mm}, {args.noise_deg}")


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np
    from tqdm import tqdm

    from piper_driver.sim.backend import SimBackend, SimConfig
    from piper_driver.sim.convert import record_to_episode
    from piper_driver.sim.demo_format import save_episode_npz
    from piper_driver.sim.experts import FAILURE_VARIANTS
    from piper_driver.sim.rollout import rollout
    from piper_driver.sim.tasks import make_expert, make_task
    from piper_driver.sim.variation import VariationSwitches
    from vlac_core.jsonio import dumps, write_json

    try:
        _check(args)
        config = SimConfig(
            image_size_px=args.image_size,
            wrist_camera=args.wrist,
            variation=VariationSwitches.parse(args.variation),
        )
    except ValueError as error:
        print(f"collect-demos: {error}", file=sys.stderr)
        return 2
    write_episode = None
    if not args.no_bags:
        from vlac_core.bag import write_episode

    backend = SimBackend(make_task(args.task), config)
    backend.connect()
    jobs = []
    for i in range(args.episodes):
        seed = args.seed + i
        jobs.append(("expert", seed))
        if args.failures:
            jobs.append((FAILURE_VARIANTS[i % len(FAILURE_VARIANTS)], seed))
    counts: dict[str, dict[str, int]] = {}
    out = Path(args.out)
    for variant, seed in tqdm(jobs, desc=f"collect {args.task}", unit="episode"):
        expert = make_expert(
            args.task, variant, np.random.default_rng([seed, 7]), noise_mm=args.noise_mm, noise_deg=args.noise_deg
        )
        record = rollout(backend, expert, seed=seed, variant=variant, max_steps=args.max_steps)
        name = f"{args.task}_{variant}_s{seed}"
        save_episode_npz(out / "npz" / f"{name}.npz", record)
        if write_episode is not None:
            write_episode(out / "bags" / name, record_to_episode(record, robot_id=args.robot_id, episode_id=name))
        tally = counts.setdefault(variant, {"episodes": 0, "success": 0, "steps": 0})
        tally["episodes"] += 1
        tally["success"] += int(record.success)
        tally["steps"] += record.length
    summary = {
        "task": args.task,
        "text": backend.task.text,
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "image_size_px": args.image_size,
        "noise_mm": args.noise_mm,
        "noise_deg": args.noise_deg,
        "variation": args.variation,
        "variants": counts,
        "expert_success_rate": counts["expert"]["success"] / counts["expert"]["episodes"],
    }
    write_json(out / "summary.json", summary)
    print(dumps(summary))
    return 0
