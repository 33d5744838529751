"""`vlac critic eval`: score trajectories with the critic and report VOC, VROC, VOC-F1 and NR.

Inputs are folders of frames, videos (sampled at 5 fps) and rosbag2 episode directories. Prints a
table in the paper's Table 1 layout, writes per-trajectory PNG plots of value and critic curves and
a ``results.json`` under ``--out``. Heavy imports (torch, transformers, av) happen inside ``run``.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_OUT = "critic_eval"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="frame folders, video files or rosbag2 episode directories")
    parser.add_argument("--task", help="task text (required unless every input is a bag that carries one)")
    parser.add_argument("--checkpoint", required=True, help="local InternVL checkpoint directory (transformers format)")
    parser.add_argument("--reference", help="reference trajectory (folder, video or bag) for the in-context mode")
    parser.add_argument("--n-reference", type=int, default=6, help="reference frames picked from it (2-11)")
    parser.add_argument("--skip", type=int, default=5, help="frames between the two frames of a pair (default 5)")
    parser.add_argument(
        "--no-frame-skipping",
        action="store_true",
        help="pair every frame i >= skip with i - skip and divide the critic by skip",
    )
    parser.add_argument("--value-rule", choices=("release", "signed"), default="release", help="value-curve update")
    parser.add_argument("--fps", type=float, default=5.0, help="video sampling rate in frames per second")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder for plots and results.json ({DEFAULT_OUT})")
    parser.add_argument("--backend", choices=("torch", "vllm"), default="torch")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default=None, help="bf16, fp16 or fp32 (default: bf16 on cuda, fp32 on cpu)")
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per forward pass")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vlac_core.model import DamagedCheckpointError, ModelLoadError, check_checkpoint_dir

    def fail(message: str, status: int = 2) -> int:
        """One line; status 1 for damaged data (a bag, a weights file), 2 for a wrong flag or path."""
        print(f"vlac critic eval: error: {message}", file=sys.stderr)
        return status

    if args.task is not None and not args.task.strip():
        return fail("--task is empty")
    if args.skip < 1:
        return fail(f"--skip must be >= 1, got {args.skip}")
    if args.batch_size < 1 or not args.fps > 0:
        return fail(f"--batch-size must be >= 1 and --fps > 0, got {args.batch_size} and {args.fps}")
    try:  # the checkpoint's files before the (slow) frame reading, and long before torch
        check_checkpoint_dir(args.checkpoint)
    except ModelLoadError as error:
        return fail(str(error), 1 if isinstance(error, DamagedCheckpointError) else 2)

    # Only now the heavier modules (rosbags, scipy, matplotlib; torch comes with the backend).
    from tqdm import tqdm

    from vlac_core.bag import BagError
    from vlac_core.jsonio import write_json

    from .backends import BackendUnavailableError, make_backend
    from .critic import Critic, CriticInputError, reference_from_trajectory
    from .evaluation import evaluate_trajectory
    from .frames_io import TrajectoryReadError, read_trajectory
    from .report import format_table, mean_metrics, plot_curves
    from .trajectory import pair_indices

    try:
        trajectories = [read_trajectory(path, fps=args.fps) for path in args.inputs]
        reference = None
        if args.reference:
            reference = reference_from_trajectory(
                read_trajectory(args.reference, fps=args.fps).frames, args.n_reference
            )
    except BagError as error:
        return fail(str(error), 1)
    except (TrajectoryReadError, CriticInputError, ValueError) as error:
        return fail(str(error))
    for trajectory in trajectories:
        task = args.task or trajectory.task
        if not task:
            return fail(f"{trajectory.name}: no task text: pass --task")
        try:
            pair_indices(len(trajectory.frames), args.skip, not args.no_frame_skipping)
        except ValueError as error:
            return fail(f"{trajectory.name}: {error}")
    try:
        backend = make_backend(args.backend, args.checkpoint, device=args.device, dtype=args.dtype)
    except (ModelLoadError, BackendUnavailableError, ValueError) as error:
        return fail(str(error), 1 if isinstance(error, DamagedCheckpointError) else 2)
    critic = Critic(backend, batch_size=args.batch_size)

    frame_skipping = not args.no_frame_skipping
    total_pairs = sum(2 * len(pair_indices(len(t.frames), args.skip, frame_skipping)) for t in trajectories)
    results = []
    out_dir = Path(args.out)
    with tqdm(total=total_pairs, unit="pair", disable=args.no_progress, file=sys.stderr) as bar:
        for trajectory in trajectories:
            try:
                result = evaluate_trajectory(
                    critic,
                    trajectory.name,
                    args.task or trajectory.task,
                    trajectory.frames,
                    skip=args.skip,
                    frame_skipping=frame_skipping,
                    value_rule=args.value_rule,
                    reference=reference,
                    on_batch=bar.update,
                )
            except CriticInputError as error:
                return fail(f"{trajectory.name}: {error}")
            results.append(result)
            plot_curves(result, out_dir / f"{trajectory.name}_curves.png")
    print(format_table(results))
    failures = sum(r.parse_failures for r in results)
    if failures:
        print(f"{failures} critic answer(s) could not be parsed and gave no value update", file=sys.stderr)
    summary = {
        "checkpoint": str(args.checkpoint),
        "skip": args.skip,
        "frame_skipping": frame_skipping,
        "value_rule": args.value_rule,
        "reference": args.reference,
        "trajectories": [r.summary() for r in results],
        "mean": mean_metrics(results),  # the table's Mean row (NaN: null)
    }
    write_json(out_dir / "results.json", summary)
    print(f"plots and results.json written to {out_dir}")
    return 0
