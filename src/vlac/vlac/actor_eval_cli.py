"""`vlac actor eval`: success rate of a policy checkpoint in the simulator, per task.

Runs ``--episodes`` episodes *per task* on scene seeds ``--seed ..`` (default 20000: seeds neither the
shipped models' training data (0-149) nor the critic's evaluation episodes (10000+) use), greedy by
default, and writes ``results.json`` and a bar plot under ``--out``. Per task, so that every task is
scored on the same seeds and a rate keeps its meaning when tasks are added; the total (tasks x
episodes) is printed before anything runs, and a bar shows the episodes done and the time left.
``--sample --repeats R`` runs every scene R times with fresh draws: a sampled policy's success on given
scenes (the training scenes of an RL run, say) is a rate per scene, and one draw per scene is too noisy to
compare against a run's own sampled episodes. ``--sample-seed`` picks the draws' stream (results.json records
it): a control that must not share an RL run's draws (the run's actor seed) takes another.

Every episode runs through the episode loop on the session's simulated arm, safety envelope
included (``vlac.actor_eval``; ``--parallel`` arms decode one batch per step).

Flags and the checkpoint's files are checked before torch, transformers or MuJoCo are imported.
Exit status: 0 done, 1 a damaged checkpoint file, 2 a usage error (a flag or a path that holds no
checkpoint).
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_OUT = "actor_eval"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="policy checkpoint directory (with value_head.safetensors)")
    parser.add_argument("--task", action="append", help="simulated task (repeatable; default: every task)")
    parser.add_argument(
        "--episodes",
        type=int,
        default=50,
        help="scene seeds PER TASK, the same for every task, each run --repeats times (default 50; all tasks: "
        "2 x 50 = 100 episodes)",
    )
    parser.add_argument("--seed", type=int, default=20000, help="first scene seed (default 20000, held out)")
    parser.add_argument("--max-steps", type=int, default=80, help="actions per episode before it counts as failed")
    parser.add_argument("--parallel", type=int, default=10, help="simulated arms decoded in one batch")
    parser.add_argument("--image-size", type=int, default=None, help="camera px (default: the model's image size)")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="sample actions from the policy (softmax of its logits over the checkpoint's logit_temperature) "
        "instead of greedy",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="episodes per scene seed (more than 1 needs --sample: greedy repeats)"
    )
    parser.add_argument(
        "--sample-seed",
        type=int,
        default=None,
        help="seed of the actions' draws with --sample (default 0); another seed draws independent episodes",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for results.json and the plot ({DEFAULT_OUT})")
    parser.add_argument("--plot", default=None, help="also write the bar plot to this PNG path")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def plan_line(tasks: list[str], episodes: int, first_seed: int, repeats: int = 1) -> str:
    """What the command is about to run, said before it starts (the total is easy to misjudge)."""
    per_task = f"{episodes} episodes" if repeats == 1 else f"{episodes} seeds x {repeats} repeats"
    total = len(tasks) * episodes * repeats
    return (
        f"vlac actor eval: {len(tasks)} task(s) x {per_task} = {total} episodes "
        f"({', '.join(tasks)}; seeds {first_seed}-{first_seed + episodes - 1} for each task)"
    )


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from piper_driver.sim.tasks import TASKS
    from vlac_core.model import DamagedCheckpointError, ModelLoadError, check_checkpoint_dir

    def fail(message: str, status: int = 2) -> int:
        print(f"vlac actor eval: error: {message}", file=sys.stderr)
        return status

    tasks = args.task or sorted(TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        return fail(f"--task: unknown task(s) {unknown}; known: {sorted(TASKS)}")
    if args.episodes < 1 or args.max_steps < 1 or args.parallel < 1:
        return fail("--episodes, --max-steps and --parallel must be >= 1")
    if args.repeats < 1:
        return fail(f"--repeats {args.repeats}: must be >= 1")
    if args.repeats > 1 and not args.sample:
        return fail(f"--repeats {args.repeats} without --sample: a greedy episode of a seeded scene repeats exactly")
    if args.sample_seed is not None and not args.sample:
        return fail(f"--sample-seed {args.sample_seed} without --sample: a greedy episode draws nothing")
    sample_seed = args.sample_seed or 0
    try:
        check_checkpoint_dir(args.checkpoint)
    except ModelLoadError as error:
        return fail(str(error), 1 if isinstance(error, DamagedCheckpointError) else 2)
    print(plan_line(tasks, args.episodes, args.seed, args.repeats), file=sys.stderr, flush=True)

    import torch
    from tqdm import tqdm

    from vlac.actor_eval import evaluate_policy_on_task
    from vlac_actor.policy import load_policy
    from vlac_core.jsonio import write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        policy = load_policy(args.checkpoint, device="cpu", dtype="fp32")
    except ValueError as error:  # ModelLoadError, or no value head (ValueHeadError)
        return fail(str(error), 1 if isinstance(error, DamagedCheckpointError) else 2)
    image_size = args.image_size or policy.loaded.image_size_px
    seeds = [seed for seed in range(args.seed, args.seed + args.episodes) for _ in range(args.repeats)]
    results = []
    began = time.perf_counter()
    with tqdm(total=len(tasks) * len(seeds), unit="episode", disable=args.no_progress, file=sys.stderr) as bar:
        for task in tasks:
            bar.set_description(task)
            evaluation = evaluate_policy_on_task(
                policy,
                task,
                seeds,
                max_steps=args.max_steps,
                parallel=args.parallel,
                image_size_px=image_size,
                greedy=not args.sample,
                sample_seed=sample_seed,
                on_episode=lambda _outcome: bar.update(1),
            )
            results.append(evaluation)
    print(f"{'task':<12} {'episodes':>8} {'successes':>9} {'rate':>6}")
    for r in results:
        print(f"{r.task:<12} {len(r.outcomes):>8} {sum(o.success for o in r.outcomes):>9} {r.success_rate:>6.2f}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "checkpoint": str(args.checkpoint),
        "seeds": [seeds[0], seeds[-1]],
        "repeats": args.repeats,
        "max_steps": args.max_steps,
        "decoding": "sample" if args.sample else "greedy",
        **({"sample_seed": sample_seed} if args.sample else {}),
        "image_size_px": image_size,
        "seconds": round(time.perf_counter() - began, 1),
        "tasks": [r.summary() for r in results],
    }
    write_json(out_dir / "results.json", summary, indent=1)
    plots = [out_dir / "actor_success.png"] + ([Path(args.plot)] if args.plot else [])
    title = f"{Path(args.checkpoint).name}, {summary['decoding']}, held-out seeds"
    for path in plots:
        _plot(results, path, title)
    print(f"results.json and actor_success.png written to {out_dir}")
    return 0


def _plot(results, path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = [r.task for r in results]
    rates = [100.0 * r.success_rate for r in results]
    bars = ax.bar(names, rates, color="tab:blue")
    for bar, r in zip(bars, results, strict=True):
        ax.annotate(
            f"{sum(o.success for o in r.outcomes)}/{len(r.outcomes)}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
        )
    ax.set_ylim(0, 100)
    ax.set_ylabel("success rate (%)")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
