"""`vlac session`: the whole RL loop without ROS (simulated arms, actor pool, critic, PPO trainer).

    vlac session --config config/sim_pick_bowl.yaml [--episodes N] [--out DIR] [--arms K]

The parameter file is the one the launch files use (sections sim_node, actor_node, critic_node,
trainer_node, episode_manager, and ``session`` for the settings only this command has); the flags
override ``session.episodes``, ``session.out_dir`` and ``session.arms``. Exit status: 0 done, 1 an
arm stopped on an error or a file's content is damaged (a checkpoint, bag or trainer state; one line
names it), 2 a configuration error (a flag, a value, a path that holds no checkpoint, an --out
another run holds), 128 + the signal when stopped by Ctrl-C (130), SIGTERM (143) or SIGHUP (129):
everything recorded so far is kept; running again with the same --out resumes, after a crash too.

The flags, the parameter file and the checkpoint folders it names are checked before torch,
transformers or MuJoCo are imported, so a mistake is reported at once and leaves no output folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="session parameter file (ROS parameter-file form)")
    parser.add_argument(
        "--episodes", type=int, help="training episodes in all, resumes included (overrides session.episodes)"
    )
    parser.add_argument("--out", type=Path, help="output folder (overrides session.out_dir)")
    parser.add_argument("--arms", type=int, help="simulated arms (overrides session.arms)")


def run(args: argparse.Namespace) -> int:
    from vlac.param_file import load_session_files
    from vlac_core.config import ConfigError

    if args.episodes is not None and args.episodes < 0:
        print(f"vlac session: --episodes: expected 0 or more, got {args.episodes}", file=sys.stderr)
        return 2
    if args.arms is not None and not 1 <= args.arms <= 64:
        print(f"vlac session: --arms: expected 1..64, got {args.arms}", file=sys.stderr)
        return 2
    import logging

    # One line per episode is the session's log; the critic's per-answer parse warnings would drown it
    # (they are counted per episode in episodes.jsonl and summed in summary.json).
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("vlac_trainer").setLevel(logging.INFO)  # one line per policy update
    logging.getLogger("vlac_critic").setLevel(logging.ERROR)
    try:
        files = load_session_files(args.config)
    except ConfigError as error:
        print(f"vlac session: {error}", file=sys.stderr)
        return 2
    problem, status = checkpoint_problem(files)
    if problem:
        print(f"vlac session: {problem}", file=sys.stderr)
        return status
    from vlac.session.runtime import main_session

    return main_session(files, episodes=args.episodes, arms=args.arms, out_dir=args.out)


def checkpoint_problem(files) -> tuple[str, int]:
    """Why a checkpoint folder the parameter file names cannot be loaded, from its files alone, and the exit
    status: ("", 0) when both can, 1 for a damaged file, 2 for a path that holds no checkpoint."""
    from vlac_core.model import DamagedCheckpointError, ModelLoadError, check_checkpoint_dir

    for key, path in (
        ("actor_node.checkpoint_path", files.actor.checkpoint_path),
        ("critic_node.checkpoint", files.critic.checkpoint),
    ):
        try:
            check_checkpoint_dir(path)
        except ModelLoadError as error:
            return f"{files.path}: {key}: {error}", 1 if isinstance(error, DamagedCheckpointError) else 2
    return "", 0
