"""The `vlac` command line: the stack's tools without ROS.

Each command lives in the package that owns its logic and exposes two functions,
``add_arguments(parser)`` and ``run(args) -> int`` (a module, or ``module:name`` for an object of a
module that holds several commands); this module only routes to them. Command modules keep their
heavy imports (torch, transformers, mujoco) inside ``run`` and check their arguments first, so that
`vlac --help` and a wrong flag answer at once and one command's missing optional dependency cannot
break another command.

Errors: a command reports what was wrong in one line naming the file and the problem; an exception
that escapes a command is shown the same way, as one line with exit status 1 (bad data), unless
``--debug`` asks for its traceback. argparse's usage errors exit with 2. SIGTERM and SIGHUP stop
a command the way Ctrl-C does, with 128 + the signal number as exit status (``stop_signals``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vlac.stop_signals import StopSignals, exit_code_of, ignore_stop_signals

#: command words -> (module implementing it, or "module:name", one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("collect-demos",): ("piper_driver.collect_cli", "record scripted-expert (or failure) episodes in simulation"),
    ("critic", "eval"): ("vlac_critic.eval_cli", "score trajectories with a critic: VOC, VROC, VOC-F1, NR and plots"),
    ("critic", "audit"): (
        "vlac_critic.audit_cli",
        "the critic against simulator ground truth on a session's episodes: rank correlation, return AUC, done",
    ),
    ("train", "critic"): (
        "vlac_trainer.offline.train_critic_cli",
        "fine-tune a critic on recorded episodes (pair-wise progress, done)",
    ),
    ("train", "actor"): (
        "vlac_trainer.offline.train_actor_cli",
        "behaviour-clone an actor policy from expert demonstrations",
    ),
    ("actor", "eval"): ("vlac.actor_eval_cli", "success rate of a policy in the simulator on held-out seeds"),
    ("session",): ("vlac.session.cli", "run the RL loop without ROS: simulated arms, actor pool, critic, PPO trainer"),
    ("bag", "info"): ("vlac.bag_cli:info", "what episode bags hold: steps, duration, task, outcome, completeness"),
    ("bag", "recover"): ("vlac.bag_cli:recover", "rewrite bags whose writer crashed as complete aborted episodes"),
    ("bag", "export"): ("vlac.bag_cli:export", "an episode as an annotated MP4 video or PNG contact sheet"),
}

_DEBUG_HELP = "on an error, show the Python traceback instead of the one-line message"


def command_object(target: str):
    """The object with ``add_arguments`` and ``run`` that a COMMANDS entry names."""
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vlac", description="VLAC real-world RL stack: tools that need no ROS.")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): parser.add_subparsers(dest="command")}
    for words, (target, help_text) in sorted(COMMANDS.items()):
        for depth in range(1, len(words)):
            prefix = words[:depth]
            if prefix not in groups:
                group_parser = groups[words[: depth - 1]].add_parser(prefix[-1], help=f"{' '.join(prefix)} commands")
                groups[prefix] = group_parser.add_subparsers(dest=f"command_{depth}")
        sub = groups[words[:-1]].add_parser(words[-1], help=help_text, description=help_text)
        sub.set_defaults(_command=target, _words=words)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
        command_object(target).add_arguments(sub)
    return parser


def one_line(error: BaseException) -> str:
    """An exception as one line: the project's errors by their message, others with their type too."""
    text = " ".join(str(error).split()) or repr(error)
    project = type(error).__module__.split(".")[0].startswith(("vlac", "piper_driver"))
    return text if project or isinstance(error, OSError) else f"{type(error).__name__}: {text}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    target = getattr(args, "_command", None)
    if target is None:
        parser.print_help()
        return 2
    name = "vlac " + " ".join(args._words)
    try:
        return int(command_object(target).run(args) or 0)
    except KeyboardInterrupt as stop:
        print(f"{name}: interrupted", file=sys.stderr)
        return exit_code_of(stop)
    except Exception as error:
        if getattr(args, "debug", False):
            raise
        print(f"{name}: error: {one_line(error)} (--debug shows the traceback)", file=sys.stderr)
        return 1


def console_main() -> None:
    """The ``vlac`` program: :func:`main` with the stop signals handled from its first line to its
    exit (see ``vlac.stop_signals``)."""
    signals = StopSignals(lambda text: print(text, file=sys.stderr), who="vlac")
    signals.install()
    try:
        try:
            code = main()
        finally:
            ignore_stop_signals()  # the command's work is written; the interpreter's exit is not cut short
    except KeyboardInterrupt:  # a stop signal between main's return and the line above
        code = signals.exit_code
    sys.exit(code)


if __name__ == "__main__":
    console_main()
