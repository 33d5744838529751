"""The critic against ground truth on the policy's own episodes: is its reward worth climbing?

Reward hacking is the known failure of learned rewards: a policy finds the states a critic overpays
(the bowl held over the plate) and the actions it underpays (the release that completes the task).
This audit measures that from the recorded episodes of a simulated session, where every step carries
the critic's answers and the simulator's ground truth (``vlac_core.types.Transition``):

- ``step_spearman``: Spearman rank correlation of the critic's per-step progress with the change of
  the task-phase potential (``gt_progress``), over all steps and per task phase; ``sign_agreement``:
  share of steps with a non-zero ground-truth change where the critic's progress has the same sign.
- ``return_auc``: AUC of the critic's episode return (sum of its progress, fraction of the task) for
  successful against failed episodes (ground-truth success): 1 when every success out-scores every
  failure, 0.5 for a coin.
- done: per-step precision and recall of the critic's done (``critic_done``, the loop's rule) against
  ground-truth success after the step, overall and per phase; per episode, how many steps early
  (negative) or late (positive) its first done fires relative to the first true success, and how
  often it fires in an episode that never succeeds or stays silent in one that does.

Bags without per-step ground truth (a real arm, or recorded before it existed) still give the
return AUC where the episode's success is known and the critic's own statistics; the report says
which parts are missing and why (``notes``). Pure functions over ``Episode`` objects; reading bags,
JSON and the PNG are in ``audit_cli``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata, spearmanr

from vlac_core.types import Episode


@dataclass(frozen=True)
class StepRow:
    """One scored step of a policy episode, flattened for the audit."""

    episode: int  # index into the audited episodes
    step: int
    critic_progress: float  # critic progress as a fraction of the task (percent / 100); NaN when unparsable
    critic_done: bool
    gt_progress: float  # NaN without ground truth
    gt_done: bool | None
    phase: str  # "" without ground truth


def step_rows(episodes: Sequence[Episode]) -> list[StepRow]:
    """Every autonomous step of ``episodes`` (teleoperated steps are a person's, not the policy's)."""
    rows = []
    for e, episode in enumerate(episodes):
        for s, t in enumerate(episode.transitions):
            if t.human:
                continue
            rows.append(
                StepRow(
                    episode=e,
                    step=s,
                    critic_progress=math.nan if t.progress_pct is None else t.progress_pct / 100.0,
                    critic_done=bool(t.critic_done),
                    gt_progress=math.nan if t.gt_progress is None else float(t.gt_progress),
                    gt_done=t.gt_done,
                    phase=t.gt_phase,
                )
            )
    return rows


def rank_auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a positive scores above a negative) + 0.5 P(tie) (Mann-Whitney); NaN when a class is empty."""
    if len(positive) == 0 or len(negative) == 0:
        return math.nan
    ranks = rankdata(np.concatenate([np.asarray(positive, float), np.asarray(negative, float)]))
    n_pos, n_neg = len(positive), len(negative)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when undefined (< 3 points or constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> dict[str, float | int]:
    predicted, actual = np.asarray(predicted, bool), np.asarray(actual, bool)
    tp = int((predicted & actual).sum())
    fp = int((predicted & ~actual).sum())
    fn = int((~predicted & actual).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "true_positive": tp,
        "false_positive": fp,
        "false_negative": fn,
    }


def _step_scores(rows: Sequence[StepRow]) -> dict:
    """Reward and done agreement of a set of steps that all carry ground truth."""
    scored = [r for r in rows if not math.isnan(r.critic_progress)]
    critic = np.array([r.critic_progress for r in scored])
    truth = np.array([r.gt_progress for r in scored])
    moved = truth != 0
    return {
        "steps": len(rows),
        "step_spearman": spearman(critic, truth),
        "sign_agreement": float(np.mean(np.sign(critic[moved]) == np.sign(truth[moved]))) if moved.any() else math.nan,
        "critic_progress_mean": float(critic.mean()) if critic.size else math.nan,
        "gt_progress_mean": float(truth.mean()) if truth.size else math.nan,
        "critic_done_rate": float(np.mean([r.critic_done for r in rows])) if rows else math.nan,
        "done": precision_recall([r.critic_done for r in rows], [bool(r.gt_done) for r in rows]),
    }


def done_timing(episodes: Sequence[Episode]) -> dict:
    """Per episode with ground truth: first critic done minus first true success, in steps."""
    offsets, false_fires, missed, both_silent = [], 0, 0, 0
    for episode in episodes:
        steps = [t for t in episode.transitions if not t.human]
        if not steps or not all(t.has_ground_truth for t in steps):
            continue
        critic = next((i for i, t in enumerate(steps) if t.critic_done), None)
        truth = next((i for i, t in enumerate(steps) if t.gt_done), None)
        if critic is not None and truth is not None:
            offsets.append(critic - truth)
        elif critic is not None:
            false_fires += 1
        elif truth is not None:
            missed += 1
        else:
            both_silent += 1
    array = np.array(offsets, dtype=float)
    return {
        "offsets_steps": offsets,  # negative: the critic fired before the task was done
        "median_offset_steps": float(np.median(array)) if array.size else math.nan,
        "early": int((array < 0).sum()),
        "on_time": int((array == 0).sum()),
        "late": int((array > 0).sum()),
        "fired_without_success": false_fires,
        "silent_on_success": missed,
        "neither": both_silent,
    }


def _critic_return(transitions: Sequence) -> float:
    """The critic's return over ``transitions``: its progress summed, as a fraction of the task (unparsed left out)."""
    return sum(t.progress_pct / 100.0 for t in transitions if t.progress_pct is not None)


def _return_to_success(episode: Episode) -> float:
    """The critic's return up to and including the first step after which the task is truly done (NaN: none)."""
    done = next((i for i, t in enumerate(episode.transitions) if t.gt_done), None)
    return math.nan if done is None else _critic_return(episode.transitions[: done + 1])


def audit(episodes: Sequence[Episode]) -> dict:
    """The audit report (JSON-able; NaN where a figure is undefined) over ``episodes``."""
    notes = []
    rows = step_rows(episodes)
    with_truth = [r for r in rows if not math.isnan(r.gt_progress)]
    report: dict = {
        "episodes": len(episodes),
        "steps": len(rows),
        "steps_with_ground_truth": len(with_truth),
        "ground_truth": bool(rows) and len(with_truth) == len(rows),
        "unparsable_progress": sum(math.isnan(r.critic_progress) for r in rows),
    }
    if not rows:
        notes.append("no autonomous step to audit")
    elif not with_truth:
        notes.append(
            "no step carries ground truth (a real arm, or bags recorded before it was recorded): "
            "step correlation, done precision/recall and timing are not computed"
        )
    elif len(with_truth) < len(rows):
        notes.append(f"{len(rows) - len(with_truth)} of {len(rows)} steps carry no ground truth and are left out")

    returns = [_critic_return(ep.transitions) for ep in episodes]
    known = [(r, ep.success) for r, ep in zip(returns, episodes, strict=True) if ep.success is not None]
    successes = [r for r, s in known if s]
    failures = [r for r, s in known if not s]
    report["return_auc"] = rank_auc(successes, failures)
    report["successful_episodes"] = len(successes)
    report["failed_episodes"] = len(failures)
    report["critic_return_mean_success"] = float(np.mean(successes)) if successes else math.nan
    report["critic_return_mean_failure"] = float(np.mean(failures)) if failures else math.nan
    if len(known) < len(episodes):
        notes.append(f"{len(episodes) - len(known)} episode(s) without ground-truth success are left out of the AUC")
    if not successes or not failures:
        notes.append("the return AUC needs successful and failed episodes; one class is empty")
    report["critic_done_rate"] = float(np.mean([r.critic_done for r in rows])) if rows else math.nan
    to_success = [_return_to_success(ep) for ep in episodes if ep.success]
    report["return_auc_to_success"] = (
        rank_auc(to_success, failures) if to_success and all(not math.isnan(r) for r in to_success) else math.nan
    )

    if with_truth:
        report["overall"] = _step_scores(with_truth)
        phases = sorted({r.phase for r in with_truth}, key=[r.phase for r in with_truth].index)
        report["by_phase"] = {p: _step_scores([r for r in with_truth if r.phase == p]) for p in phases}
        report["done_timing"] = done_timing(episodes)
    report["notes"] = notes
    return report


def audit_blocks(numbered: Sequence[tuple[int, Episode]], size: int, total: int | None = None) -> list[dict]:
    """The headline figures per block of ``size`` episodes in the order a session recorded them (1-based numbers
    up to ``total``, default the last one given; a block whose bags could not all be read counts fewer episodes).
    Why: a learned reward is hacked as the policy moves, so the figures of a whole run can hide a critic that held
    early and broke late."""
    if size < 1:
        raise ValueError(f"block size must be at least 1, got {size}")
    total = total if total is not None else max((number for number, _ in numbered), default=0)
    blocks: dict[int, list[Episode]] = {}
    for number, episode in numbered:
        blocks.setdefault((number - 1) // size, []).append(episode)
    rows = []
    for index in sorted(blocks):
        report = audit(blocks[index])
        overall = report.get("overall", {})
        timing = report.get("done_timing", {})
        rows.append(
            {
                "first": index * size + 1,
                "last": min((index + 1) * size, total),
                "episodes": report["episodes"],
                "successful": report["successful_episodes"],
                "return_auc": report["return_auc"],
                "return_auc_to_success": report["return_auc_to_success"],
                "step_spearman": overall.get("step_spearman", math.nan),
                "done_precision": overall.get("done", {}).get("precision", math.nan),
                "fired_without_success": timing.get("fired_without_success"),
                "silent_on_success": timing.get("silent_on_success"),
            }
        )
    return rows


def figure_data(episodes: Sequence[Episode]) -> dict[str, np.ndarray]:
    """Arrays the PNG plots: per-step critic vs ground-truth progress and phase, per-episode return/success."""
    rows = [r for r in step_rows(episodes) if not math.isnan(r.gt_progress) and not math.isnan(r.critic_progress)]
    return {
        "critic_progress": np.array([r.critic_progress for r in rows]),
        "gt_progress": np.array([r.gt_progress for r in rows]),
        "phase": np.array([r.phase for r in rows]),
        "episode_return": np.array([_critic_return(ep.transitions) for ep in episodes]),
        "success": np.array([ep.success for ep in episodes], dtype=object),
    }
