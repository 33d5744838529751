"""`vlac collect-demos`: record scripted episodes of a simulated task, for training and evaluation.

Writes, under ``--out``:
- ``npz/<task>_<variant>_s<seed>.npz``: the fast training format (``piper_driver.sim.demo_format``;
  read with ``load_episode_npz`` / ``iter_episodes``);
- ``bags/<task>_<variant>_s<seed>/``: the same episode as a rosbag2 MCAP bag (``vlac_core.bag``),
  for ROS tools and the trainer's bag reader (``--no-bags`` skips them);
- ``summary.json``: episodes, success counts per variant, settings (also printed, one JSON line).

Expert episodes use seeds ``--seed .. --seed+episodes-1``; with ``--failures`` each seed also gets
one failure episode, cycling stall / wrong_target / undo, for the critic's negatives.

An ``--out`` that already holds a collection is refused (nothing would be overwritten silently, and npz
files and bags would not fall out of step): ``--append`` adds episodes to it (same task and settings,
seeds not yet collected; summary.json then counts the whole folder), ``--overwrite`` deletes its npz/,
bags/ and summary.json first. These checks run before the simulator is imported.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

#: What a collection consists of under --out (anything else there is left alone).
COLLECTION_PARTS = ("npz", "bags", "summary.json")
#: Settings an --append must share with the collection it extends, so summary.json stays true for the folder.
APPEND_SETTINGS = ("task", "image_size_px", "noise_mm", "noise_deg", "variation", "grasp_hold_steps")


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
        "--grasp-hold-steps",
        type=int,
        default=None,
        help="steps the expert stays closing on its grasp before lifting (pick_bowl; default its GRASP_HOLD_STEPS, 3)",
    )
    parser.add_argument(
        "--variation",
        default="none",
        help="scene variation switches: none, all, or a comma list of lighting,table,camera",
    )
    parser.add_argument("--max-steps", type=int, default=150, help="step limit per episode (default 150)")
    parser.add_argument("--no-bags", action="store_true", help="write only the fast npz format")
    parser.add_argument("--robot-id", default="sim_0", help="robot id written into the bags (default sim_0)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--append", action="store_true", help="add episodes to the collection already in --out")
    existing.add_argument(
        "--overwrite", action="store_true", help="delete the collection in --out (npz/, bags/, summary.json) first"
    )


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
    if args.grasp_hold_steps is not None:
        from piper_driver.sim.tasks import plan_for

        try:
            plan_for(args.task, "expert", args.grasp_hold_steps)
        except ValueError as error:
            raise ValueError("--grasp-hold-steps" + str(error).removeprefix("grasp_hold_steps")) from None


def episode_name(task: str, variant: str, seed: int) -> str:
    """The file/folder name of one collected episode (npz/<name>.npz, bags/<name>/)."""
    return f"{task}_{variant}_s{seed}"


def _planned_jobs(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(variant, seed) of every episode this run records, in order."""
    from piper_driver.sim import tasks  # noqa: F401 (experts imports cleanly only after tasks: an import cycle)
    from piper_driver.sim.experts import FAILURE_VARIANTS

    jobs = []
    for i in range(args.episodes):
        seed = args.seed + i
        jobs.append(("expert", seed))
        if args.failures:
            jobs.append((FAILURE_VARIANTS[i % len(FAILURE_VARIANTS)], seed))
    return jobs


def _settings(args: argparse.Namespace) -> dict:
    return {
        "task": args.task,
        "image_size_px": args.image_size,
        "noise_mm": args.noise_mm,
        "noise_deg": args.noise_deg,
        "variation": args.variation,
        "grasp_hold_steps": _grasp_hold_steps(args),
    }


def _grasp_hold_steps(args: argparse.Namespace) -> int | None:
    """The grasp hold the expert uses: the flag, else the task's default; None for a task without a grasp."""
    from piper_driver.sim.tasks import GRASP_HOLD_DEFAULTS

    if args.task not in GRASP_HOLD_DEFAULTS:
        return None
    return GRASP_HOLD_DEFAULTS[args.task] if args.grasp_hold_steps is None else args.grasp_hold_steps


def _check_out(args: argparse.Namespace, jobs: list[tuple[str, int]]) -> dict | None:
    """Refuse an --out that holds a collection unless told what to do; the summary to extend on --append."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    present = [part for part in COLLECTION_PARTS if (out / part).exists()]
    if not present or args.overwrite:
        return None
    if not args.append:
        npz_count = len(list((out / "npz").glob("*.npz")))
        raise ValueError(
            f"--out {out} already holds a collection ({npz_count} npz episodes, {', '.join(present)}); "
            "pass --append to add episodes to it or --overwrite to replace it, or choose another --out"
        )
    previous = None
    if (out / "summary.json").is_file():
        try:
            previous = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"--append: {out / 'summary.json'} is not valid JSON ({error})") from None
        ours = _settings(args)
        for key in APPEND_SETTINGS:
            if key in previous and previous[key] != ours[key]:
                raise ValueError(
                    f"--append: {out} was collected with {key} = {previous[key]!r}, this run asks {ours[key]!r}; "
                    "a collection keeps one task and one set of settings"
                )
    taken = sorted(
        {
            seed
            for variant, seed in jobs
            if (out / "npz" / f"{episode_name(args.task, variant, seed)}.npz").exists()
            or (out / "bags" / episode_name(args.task, variant, seed)).exists()
        }
    )
    if taken:
        stems = [p.stem.rsplit("_s", 1)[1] for p in (out / "npz").glob(f"{args.task}_*_s*.npz")]
        seeds = [int(stem) for stem in stems if stem.isdigit()]
        raise ValueError(
            f"--append: {out} already holds seed(s) {taken[0]}..{taken[-1]} of this run; "
            f"choose --seed {max(seeds, default=taken[-1]) + 1} or higher"
        )
    return previous


def _merge_summaries(previous: dict, summary: dict) -> dict:
    """The folder's summary after an --append: counts summed per variant, seed ranges listed."""
    merged = dict(summary)
    variants = {name: dict(tally) for name, tally in previous.get("variants", {}).items()}
    for name, tally in summary["variants"].items():
        into = variants.setdefault(name, {"episodes": 0, "success": 0, "steps": 0})
        for key, value in tally.items():
            into[key] = into.get(key, 0) + value
    merged["variants"] = variants
    earlier = previous.get("seed_ranges", [previous["seeds"]] if "seeds" in previous else [])
    merged["seed_ranges"] = [*earlier, summary["seeds"]]
    merged["seeds"] = [min(r[0] for r in merged["seed_ranges"]), max(r[1] for r in merged["seed_ranges"])]
    expert = variants.get("expert", {"episodes": 0, "success": 0})
    merged["expert_success_rate"] = expert["success"] / expert["episodes"] if expert["episodes"] else None
    return merged


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np
    from tqdm import tqdm

    from piper_driver.sim.arm import SimArm
    from piper_driver.sim.backend import SimConfig
    from piper_driver.sim.convert import record_to_episode
    from piper_driver.sim.demo_format import save_episode_npz
    from piper_driver.sim.rollout import rollout
    from piper_driver.sim.tasks import make_expert
    from piper_driver.sim.variation import VariationSwitches
    from vlac_core.jsonio import dumps, write_json

    try:
        _check(args)
        jobs = _planned_jobs(args)
        previous = _check_out(args, jobs)
        config = SimConfig(
            image_size_px=args.image_size,
            wrist_camera=args.wrist,
            variation=VariationSwitches.parse(args.variation),
        )
    except ValueError as error:
        print(f"collect-demos: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.overwrite:
        for part in COLLECTION_PARTS:
            target = out / part
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    write_episode = None
    if not args.no_bags:
        from vlac_core.bag import write_episode

    arm = SimArm(args.robot_id, args.task, config, None, first_seed=args.seed)  # the arm node's default envelope
    counts: dict[str, dict[str, int]] = {}
    for variant, seed in tqdm(jobs, desc=f"collect {args.task}", unit="episode"):
        expert = make_expert(
            args.task,
            variant,
            np.random.default_rng([seed, 7]),
            noise_mm=args.noise_mm,
            noise_deg=args.noise_deg,
            grasp_hold_steps=args.grasp_hold_steps,
        )
        record = rollout(arm, expert, seed=seed, variant=variant, max_steps=args.max_steps)
        name = episode_name(args.task, variant, seed)
        save_episode_npz(out / "npz" / f"{name}.npz", record)
        if write_episode is not None:
            write_episode(out / "bags" / name, record_to_episode(record, robot_id=args.robot_id, episode_id=name))
        tally = counts.setdefault(variant, {"episodes": 0, "success": 0, "steps": 0})
        tally["episodes"] += 1
        tally["success"] += int(record.success)
        tally["steps"] += record.length
    summary = {
        "task": args.task,
        "text": arm.task_text,
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "image_size_px": args.image_size,
        "noise_mm": args.noise_mm,
        "noise_deg": args.noise_deg,
        "variation": args.variation,
        "grasp_hold_steps": _grasp_hold_steps(args),
        "variants": counts,
        "expert_success_rate": counts["expert"]["success"] / counts["expert"]["episodes"],
    }
    if previous is not None:
        summary = _merge_summaries(previous, summary)
    write_json(out / "summary.json", summary)
    print(dumps(summary))
    return 0
