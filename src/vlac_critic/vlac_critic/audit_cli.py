"""`vlac critic audit`: the critic against ground truth on a session's recorded episodes (``audit``).

Inputs are session output folders (every episode bag under them: ``bags/train`` and ``bags/eval``),
folders of bags, or single episode bag directories. Writes ``critic_audit.json`` and
``critic_audit.png`` to ``--out`` (default: ``<first input>/critic_audit``) and prints the headline
figures. Bags that cannot be read (a crashed writer: see ``vlac bag``) are listed and skipped. ``--block N`` adds
the figures per N episodes in the order a session recorded them, where a critic hacked late in a run shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

JSON_NAME = "critic_audit.json"
PNG_NAME = "critic_audit.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="session output folders, folders of episode bags, or bag directories")
    parser.add_argument("--out", help="output folder for critic_audit.json/.png (default: <first input>/critic_audit)")
    parser.add_argument(
        "--episodes", choices=("all", "train", "eval"), default="all", help="which of a session's bags (default all)"
    )
    parser.add_argument(
        "--block",
        type=int,
        default=0,
        metavar="N",
        help="also the figures per block of N episodes in the order the session recorded them (session folders "
        "only: their episodes.jsonl gives the order; default 0: none)",
    )


def find_bags(root: Path, which: str = "all") -> list[Path]:
    """Episode bag directories under ``root`` (a directory holding ``metadata.yaml`` or an ``.mcap``)."""
    if _is_bag(root):
        return [root]
    bags = sorted({p.parent for p in root.rglob("*.mcap")})
    if which != "all":
        bags = [b for b in bags if which in b.relative_to(root).parts]
    return bags


def _is_bag(path: Path) -> bool:
    return path.is_dir() and ((path / "metadata.yaml").exists() or any(path.glob("*.mcap")))


def run(args: argparse.Namespace) -> int:
    roots = [Path(p) for p in args.inputs]
    missing = [str(p) for p in roots if not p.exists()]
    if missing:
        return _fail(f"no such folder: {', '.join(missing)}")
    if args.block < 0:
        return _fail(f"--block must be 0 (off) or a number of episodes, got {args.block}")
    try:
        report, out = write_audit(roots, Path(args.out) if args.out else None, args.episodes, args.block)
    except AuditInputError as error:
        return _fail(str(error))
    print(headline(report))
    for note in report["notes"]:
        print(f"note: {note}")
    if report["unreadable_bags"]:
        print(f"{len(report['unreadable_bags'])} bag(s) could not be read and were skipped (listed in {JSON_NAME})")
    print(f"written: {out / JSON_NAME}, {out / PNG_NAME}")
    return 0


class AuditInputError(ValueError):
    """Nothing to audit: no bag, or no readable bag; the message names the folders."""


def recorded_order(root: Path, which: str = "all") -> list[Path]:
    """A session's episode bags in the order it recorded them (its ``episodes.jsonl``, read as every reader of it
    does: a line a crash cut short is skipped), ``which`` phase only."""
    from vlac_core.jsonio import read_jsonl

    log = root / "episodes.jsonl"
    if not log.is_file():
        raise AuditInputError(f"--block needs session folders (their episodes.jsonl gives the order): {root} has none")
    return [root / row["bag_path"] for row in read_jsonl(log) if which == "all" or row.get("phase") == which]


def write_audit(roots: list[Path], out: Path | None = None, which: str = "all", block: int = 0) -> tuple[dict, Path]:
    """Audit the bags under ``roots``; writes the JSON and PNG to ``out`` (default <roots[0]>/critic_audit).
    With ``block``, the report's ``blocks`` gives the figures per ``block`` episodes in recorded order.

    The embedded session can call this on its output folder when it ends (a simulated session's report).
    """
    from vlac_core.bag import BagError, read_episode
    from vlac_core.jsonio import write_json

    from .audit import audit, audit_blocks, figure_data

    if block:
        bags = [bag for root in roots for bag in recorded_order(root, which)]
    else:
        bags = [bag for root in roots for bag in find_bags(root, which)]
    if not bags:
        raise AuditInputError(f"no episode bag under {', '.join(map(str, roots))}")
    numbered, unreadable = [], []
    for number, bag in enumerate(bags, start=1):
        try:
            numbered.append((number, read_episode(bag)))
        except (BagError, ValueError) as error:  # a BagError also for a bag the log names and the disk lacks
            unreadable.append(f"{bag}: {error}")
    episodes = [episode for _, episode in numbered]
    if not episodes:
        raise AuditInputError(f"none of the {len(bags)} bag(s) could be read; first: {unreadable[0]}")
    report = audit(episodes)
    report["inputs"] = [str(p) for p in roots]
    report["unreadable_bags"] = unreadable
    if block:
        report["blocks"] = audit_blocks(numbered, block, total=len(bags))
    out = out or roots[0] / "critic_audit"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / JSON_NAME, report)
    plot_audit(figure_data(episodes), report, out / PNG_NAME)
    return report, out


def _fail(message: str) -> int:
    print(f"vlac critic audit: error: {message}", file=sys.stderr)
    return 2


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def headline(report: dict) -> str:
    """The figures issue 11 asks a critic to meet, one line each."""
    lines = [
        f"episodes {report['episodes']} ({report['successful_episodes']} successful), steps {report['steps']}, "
        f"with ground truth {report['steps_with_ground_truth']}",
        f"return AUC (success vs failure): {_fmt(report['return_auc'])}; "
        f"successes' return up to their first true done: {_fmt(report['return_auc_to_success'])}",
    ]
    overall = report.get("overall")
    if overall:
        done = overall["done"]
        timing = report["done_timing"]
        lines += [
            f"per-step Spearman (critic progress vs ground-truth potential change): {_fmt(overall['step_spearman'])}",
            f"done precision {_fmt(done['precision'])} at recall {_fmt(done['recall'])}; first done vs first success: "
            f"median {_fmt(timing['median_offset_steps'])} steps, {timing['early']} early, {timing['late']} late, "
            f"{timing['fired_without_success']} fired without success, {timing['silent_on_success']} silent on success",
        ]
        for phase, scores in report["by_phase"].items():
            lines.append(
                f"  {phase:>10}: {scores['steps']:5d} steps, Spearman {_fmt(scores['step_spearman'])}, sign agreement "
                f"{_fmt(scores['sign_agreement'])}, critic {_fmt(scores['critic_progress_mean'])} vs truth "
                f"{_fmt(scores['gt_progress_mean'])} per step, done rate {_fmt(scores['critic_done_rate'])}"
            )
    for b in report.get("blocks", []):
        lines.append(
            f"episodes {b['first']}-{b['last']}: {b['episodes']} ({b['successful']} successful), return AUC "
            f"{_fmt(b['return_auc'])} ({_fmt(b['return_auc_to_success'])} to the first true done), Spearman "
            f"{_fmt(b['step_spearman'])}, done precision {_fmt(b['done_precision'])}, "
            f"{b['fired_without_success']} fired without success, {b['silent_on_success']} silent on success"
        )
    return "\n".join(lines)


def plot_audit(data: dict, report: dict, path: Path) -> Path:
    """Four panels: per-step critic vs truth by phase, return by outcome, per-phase agreement, done timing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    for phase in dict.fromkeys(data["phase"].tolist()):
        mask = data["phase"] == phase
        ax.scatter(data["gt_progress"][mask], data["critic_progress"][mask], s=6, alpha=0.5, label=phase)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("ground-truth potential change per step")
    ax.set_ylabel("critic progress per step (fraction)")
    ax.set_title(f"per step: Spearman {_fmt(report.get('overall', {}).get('step_spearman'))}")
    if data["phase"].size:
        ax.legend(fontsize=7, markerscale=2)

    ax = axes[0, 1]
    success = data["success"]
    for label, flag in (("success", True), ("failure", False)):
        values = data["episode_return"][np.array([s is flag for s in success], dtype=bool)]
        if values.size:
            ax.hist(values, bins=20, alpha=0.6, label=f"{label} ({values.size})")
    ax.set_xlabel("critic episode return (sum of progress, fraction)")
    ax.set_ylabel("episodes")
    ax.set_title(f"return AUC {_fmt(report['return_auc'])}")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    phases = list(report.get("by_phase", {}))
    if phases:
        x = np.arange(len(phases))
        scores = report["by_phase"]
        ax.bar(x - 0.3, [scores[p]["step_spearman"] or 0.0 for p in phases], 0.3, label="Spearman")
        ax.bar(x, [scores[p]["sign_agreement"] or 0.0 for p in phases], 0.3, label="sign agreement")
        ax.bar(x + 0.3, [scores[p]["done"]["precision"] or 0.0 for p in phases], 0.3, label="done precision")
        ax.set_xticks(x, phases)
        ax.legend(fontsize=8)
    ax.set_title("by task phase (phase at the step's start)")

    ax = axes[1, 1]
    timing = report.get("done_timing")
    if timing and timing["offsets_steps"]:
        ax.hist(timing["offsets_steps"], bins=30)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("first critic done - first true success (steps; < 0 early)")
    ax.set_ylabel("episodes")
    done = report.get("overall", {}).get("done", {})
    ax.set_title(f"done precision {_fmt(done.get('precision'))}, recall {_fmt(done.get('recall'))}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
