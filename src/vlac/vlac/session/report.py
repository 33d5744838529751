"""What a session leaves besides its bags: the success-rate curve (PNG) and ``summary.json``.

Both are built from ``episodes.jsonl`` (one line per finished episode) and the evaluation records,
so they can be rebuilt after a crash from what is on disk. Both are written whole or not at all,
and ``summary.json`` is strict JSON (``vlac_core.jsonio.write_json``: a NaN loss is ``null``).
Success is the policy's own (``policy_succeeded``): ``EpisodeSummary.succeeded``, the simulator's ground
truth where it has one (never the reward), in an episode nobody helped.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from vlac.episode.return_explore import is_frontier_state_id


def is_training_episode(row: dict[str, Any]) -> bool:
    """A training episode that ran to its end: Ctrl-C'd (``shutdown``) ones and those a crash cut short
    (``recovered``: rebuilt from an unfinished bag as ``aborted``) are kept but not counted.

    The session's episode count, its evaluation schedule and these reports all count this way, so a
    resumed session's numbering goes on where the finished episodes left off.
    """
    return row["phase"] == "train" and row["termination"] != "shutdown" and not row.get("recovered", False)


def judges_the_whole_task(row: dict[str, Any]) -> bool:
    """A finished episode whose success says whether the policy did the whole task: it ran to an end (not
    aborted) from a scene's start, not from a return-and-explore frontier (mid-task, ``return_to: frontier``)."""
    return row["termination"] != "aborted" and not is_frontier_state_id(row.get("start_state_id"))


def policy_succeeded(row: dict[str, Any], key: str = "succeeded") -> bool:
    """Success of the policy on its own, ``Episode.policy_succeeded``'s rule on an episodes.jsonl row: an episode a
    person (or the scripted operator) helped is a failure of the policy; ``key`` "success" reads the simulator's
    verdict alone."""
    return bool(row[key]) and not row.get("human_steps")


def rolling_success(rows: list[dict[str, Any]], window: int) -> list[tuple[int, float]]:
    """(training episodes so far, success rate over the last ``window`` training episodes that judge the whole
    task, ``judges_the_whole_task``); the others count in the numbering only."""
    points, recent, count = [], [], 0
    for row in rows:
        if not is_training_episode(row):
            continue
        count += 1
        if not judges_the_whole_task(row):
            continue
        recent = [*recent, policy_succeeded(row)][-window:]
        points.append((count, sum(recent) / len(recent)))
    return points


def plot_success(
    path: str | Path, rows: list[dict[str, Any]], evaluations: list[dict[str, Any]], window: int, title: str
) -> Path:
    """Success rate against training episodes: greedy evaluations (markers) and the rolling training rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    rolling = rolling_success(rows, window)
    if rolling:
        ax.plot(*zip(*rolling, strict=True), color="tab:blue", alpha=0.6, label=f"training, rolling {window}")
    evals = [e for e in evaluations if e.get("success_rate") is not None]
    if evals:
        ax.plot(
            [e["after_episodes"] for e in evals],
            [e["success_rate"] for e in evals],
            "o-",
            color="tab:orange",
            label=f"greedy evaluation ({evals[0]['trials']} trials)",
        )
    ax.set_xlabel("training episodes (all arms)")
    ax.set_ylabel("success rate (ground truth)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if rolling or evals:
        ax.legend(loc="best")
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.tight_layout()
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)  # a crash never leaves half a PNG
    return path


def summarize(rows: list[dict[str, Any]], evaluations: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Counts per phase, termination and arm; success rates; the evaluations; and the caller's extra facts."""
    train = [r for r in rows if is_training_episode(r)]
    counted = [r for r in train if judges_the_whole_task(r)]
    per_arm: dict[str, dict[str, int]] = {}
    for r in train:
        arm = per_arm.setdefault(r["robot_id"], {"episodes": 0, "successes": 0, "human_episodes": 0})
        arm["episodes"] += 1
        arm["successes"] += int(policy_succeeded(r) and judges_the_whole_task(r))
        arm["human_episodes"] += int(r["human_steps"] > 0)
    return {
        "training_episodes": len(train),
        "evaluation_episodes": sum(r["phase"] == "eval" for r in rows),
        "aborted_episodes": sum(r["termination"] == "aborted" for r in rows),
        "recovered_episodes": sum(bool(r.get("recovered", False)) for r in rows),
        "terminations": dict(Counter(r["termination"] for r in rows if r["phase"] == "train")),
        "training_success_rate": (sum(map(policy_succeeded, counted)) / len(counted)) if counted else None,
        "steps": sum(r["length"] for r in rows),
        "human_steps": sum(r["human_steps"] for r in train),
        "unparsable_progress_answers": sum(r["unparsable_progress"] for r in rows),
        "unparsable_done_answers": sum(r["unparsable_done"] for r in rows),
        "per_arm": per_arm,
        "evaluations": evaluations,
        **extra,
    }
