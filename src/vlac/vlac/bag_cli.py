"""`vlac bag info|recover|export`: look at, repair and watch recorded episode bags without Python.

    vlac bag info PATH... [--json]         steps, duration, task, outcome, policy versions, human steps,
                                           whether complete (one line per bag, or one JSON object per line)
    vlac bag recover PATH...               rewrite bags whose writer crashed as complete, aborted episodes
    vlac bag export PATH --mp4 OUT.mp4 [--sheet OUT.png] [--latest]
                                           the episode's frames with step, action, critic progress, reward,
                                           done probability and value drawn beside them; with --latest,
                                           PATH is a folder of bags and the one written last is exported
                                           (e.g. a session's last evaluation: out/demo/bags/eval --latest)

Exit status: 0 done, 1 a bag could not be read (each named on stderr, one line; the others are still
handled), 2 a usage error. Only argument checks run before the bag reader (rosbags) is imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace


def _add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="episode bag directories")
    parser.add_argument("--json", action="store_true", help="one JSON object per bag instead of a line of text")


def _add_recover_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="episode bag directories")


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, metavar="PATH", help="episode bag directory (an unfinished one is read)")
    parser.add_argument(
        "--latest", action="store_true", help="PATH is a folder of bags: export the one whose file was written last"
    )
    parser.add_argument("--mp4", type=Path, metavar="OUT", help="write the annotated frames as an MP4 video")
    parser.add_argument("--sheet", type=Path, metavar="OUT", help="write a PNG contact sheet of evenly spaced steps")
    parser.add_argument("--fps", type=float, default=5.0, help="video frames per second (default 5: one step each)")
    parser.add_argument("--height", type=int, default=256, help="drawn camera frame height in px (default 256)")
    parser.add_argument("--tiles", type=int, default=12, help="pictures on the contact sheet (default 12)")
    parser.add_argument("--columns", type=int, default=3, help="columns of the contact sheet (default 3)")


def _usage_error(command: str, message: str) -> int:
    print(f"vlac bag {command}: error: {message}", file=sys.stderr)
    return 2


def _data_error(command: str, message: str) -> None:
    print(f"vlac bag {command}: {message}", file=sys.stderr)


def format_info(info) -> str:
    """One line: what a bag holds and whether it is complete."""
    ep = info.episode
    versions = info.policy_versions
    policy = f"v{versions[0]}" if len(versions) == 1 else f"v{versions[0]}-v{versions[-1]} ({len(versions)} versions)"
    state = "complete" if info.complete else f"INCOMPLETE ({info.problem})"
    return (
        f"{info.bag_dir}: {ep.length} steps, {info.duration_s:.1f} s, task {ep.task!r}, {info.outcome}, "
        f"policy {policy}, {ep.human_steps} human steps, return {ep.episode_return:+.3f}, {state}"
    )


def _run_info(args: argparse.Namespace) -> int:
    from vlac_core.bag import BagError, inspect_bag

    status = 0
    for path in args.paths:
        try:
            info = inspect_bag(path)
        except BagError as error:
            _data_error("info", str(error))
            status = 1
            continue
        print(json.dumps(info.summary()) if args.json else format_info(info), flush=True)
    return status


def _run_recover(args: argparse.Namespace) -> int:
    from vlac_core.bag import BagError, recover_bag

    status = 0
    for path in args.paths:
        try:
            result = recover_bag(path)
        except (BagError, OSError) as error:
            _data_error("recover", str(error))
            status = 1
            continue
        if not result.rewritten:
            print(f"{path}: complete already ({result.info.episode.length} steps), left as it is")
            continue
        kept = f"; the damaged original is kept as {result.kept_original}" if result.kept_original else ""
        problem = f" ({result.info.problem})" if result.info.problem else ""
        steps = result.info.episode.length
        print(f"{path}: rewritten as a complete bag: {steps} steps, {result.info.outcome}{problem}{kept}", flush=True)
    return status


def _run_export(args: argparse.Namespace) -> int:
    if args.mp4 is None and args.sheet is None:
        return _usage_error("export", "nothing to write: give --mp4 OUT.mp4 and/or --sheet OUT.png")
    if args.mp4 is not None and args.mp4.suffix.lower() != ".mp4":
        return _usage_error("export", f"--mp4 {args.mp4}: the file name must end in .mp4")
    if args.sheet is not None and args.sheet.suffix.lower() != ".png":
        return _usage_error("export", f"--sheet {args.sheet}: the file name must end in .png")
    if not args.fps > 0 or args.height < 32 or args.tiles < 1 or args.columns < 1:
        return _usage_error("export", "--fps must be > 0, --height >= 32, --tiles and --columns >= 1")
    if args.latest:
        bag_dirs = latest_bags(args.path)
        if not bag_dirs:
            _data_error("export", f"{args.path}: --latest: no episode bag (a folder holding a .mcap file) in it")
            return 1
        args.path = bag_dirs[-1]
        print(f"{args.path}: the bag written last in its folder", file=sys.stderr)
    from vlac.episode_render import EpisodeRenderer, write_mp4, write_sheet
    from vlac_core.bag import BagError, inspect_bag

    try:
        info = inspect_bag(args.path)
        renderer = EpisodeRenderer(info.episode, frame_height_px=args.height)
    except (BagError, ValueError) as error:
        _data_error("export", str(error))
        return 1
    if not info.complete:
        print(f"{args.path}: incomplete bag, exporting its {info.episode.length} readable steps", file=sys.stderr)
    if args.mp4 is not None:
        write_mp4(renderer, args.mp4, fps=args.fps)
        print(f"{args.mp4}: {len(renderer)} frames at {args.fps:g} fps ({renderer.size_px[0]}x{renderer.size_px[1]})")
    if args.sheet is not None:
        write_sheet(renderer, args.sheet, tiles=args.tiles, columns=args.columns)
        print(f"{args.sheet}: contact sheet of {min(args.tiles, len(renderer))} of {len(renderer)} pictures")
    return 0


def latest_bags(folder: Path) -> list[Path]:
    """Bag directories directly under ``folder``, oldest first by when their .mcap file was last written."""
    if not folder.is_dir():
        return []
    written = []
    for bag_dir in folder.iterdir():
        files = list(bag_dir.glob("*.mcap")) if bag_dir.is_dir() and not bag_dir.name.startswith(".") else []
        if files:
            written.append((max(f.stat().st_mtime_ns for f in files), bag_dir.name, bag_dir))
    return [bag_dir for _, _, bag_dir in sorted(written)]


#: The `vlac bag` commands, each with the add_arguments/run pair the `vlac` router expects.
info = SimpleNamespace(add_arguments=_add_info_arguments, run=_run_info)
recover = SimpleNamespace(add_arguments=_add_recover_arguments, run=_run_recover)
export = SimpleNamespace(add_arguments=_add_export_arguments, run=_run_export)
