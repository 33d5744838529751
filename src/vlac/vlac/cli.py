"""The `vlac` command line: the stack's tools without ROS.

Each command lives in the package that owns its logic and exposes two functions,
``add_arguments(parser)`` and ``run(args) -> int``; this module only routes to them.
Command modules keep their heavy imports (torch, mujoco) inside ``run`` so that
`vlac --help` stays fast and one command's missing optional dependency cannot break
another command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command words -> (module implementing it, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("collect-demos",): ("piper_driver.collect_cli", "record scripted-expert (or failure) episodes in simulation"),
    ("critic", "eval"): ("vlac_critic.eval_cli", "score trajectories with a critic: VOC, VROC, VOC-F1, NR and plots"),
    ("train", "critic"): (
        "vlac_trainer.train_critic_cli",
        "fine-tune a critic on recorded episodes (pair-wise progress, done)",
    ),
    ("train", "actor"): ("vlac_trainer.train_actor_cli", "behaviour-clone an actor policy from expert demonstrations"),
    ("actor", "eval"): ("vlac_trainer.eval_actor_cli", "success rate of a policy in the simulator on held-out seeds"),
    ("session",): ("vlac.session.cli", "run the RL loop without ROS: simulated arms, actor pool, critic, PPO trainer"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlac", description="VLAC real-world RL stack: tools that need no ROS.")
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): parser.add_subparsers(dest="command")}
    for words, (module_name, help_text) in sorted(COMMANDS.items()):
        for depth in range(1, len(words)):
            prefix = words[:depth]
            if prefix not in groups:
                group_parser = groups[words[: depth - 1]].add_parser(prefix[-1], help=f"{' '.join(prefix)} commands")
                groups[prefix] = group_parser.add_subparsers(dest=f"command_{depth}")
        sub = groups[words[:-1]].add_parser(words[-1], help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module_name = getattr(args, "_module", None)
    if module_name is None:
        parser.print_help()
        return 2
    return int(importlib.import_module(module_name).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
