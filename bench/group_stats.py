"""The group-advantage diagnostics of finished rl_experiment runs: how the groups ended and how PPO moved.

For each run folder (``<out>/<variant>/seed<k>``) it reads ``episodes.jsonl`` (the training episodes, in
the order they ran) and ``trainer/updates.jsonl`` (one row per PPO update) and reports:
- training successes per block of 40 episodes (the simulator's verdict);
- the groups (consecutive training episodes from one ``start_state_id``): how many were mixed, all
  succeeded, all failed; and the median length of successes and of failures (the length bias the
  "A group baseline from repeated scenes" found in docs/rl_experiments.md);
- the per-step balance of a mixed group's push had every step carried its episode's leave-one-out
  advantage (``unweighted_push``: sum over the group's episodes of A_i x length_i, in return units;
  negative = the failures' steps outweigh the successes'), whatever weighting the run trained with;
- over the updates: median approx. KL (largest), median clip fraction, and the median mean advantage
  per step over the updates with any signal (adv_std > SIGNAL_STD), with their count, plus the updates whose
  advantages were all zero and their median KL;
- the gradient before the clip: its median norm (mean over an update's minibatches) and the median share of
  minibatches the clip scaled (runs from before these stats: None); and, over the updates with signal, the rank
  correlation of an update's KL with its advantages' spread (does a step's length follow the signal's strength?).

Usage: ``.venv/bin/python bench/group_stats.py out/rl32/ggn/seed0 out/rl32/ggn/seed1``; the last line of
output is one JSON object: {run folder: figures}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from itertools import groupby
from pathlib import Path

from scipy.stats import spearmanr

from vlac.session.report import policy_succeeded
from vlac_trainer.online.group_baseline import leave_one_out_advantages

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_report import has_whole_task_verdict, read_jsonl

BLOCK = 40  # training episodes per success count
#: An update's advantages with a smaller spread are all zero but for float rounding (equal returns, or a
#: potential's differences summed in another order give ~1e-8).
SIGNAL_STD = 1e-6


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def group_figures(train_rows: list[dict]) -> dict:
    """Outcomes of the groups of consecutive training episodes from one start, and the unweighted pushes."""
    kinds = {"mixed": 0, "all_succeeded": 0, "all_failed": 0, "alone": 0}
    pushes = []
    for start, members in groupby(train_rows, key=lambda r: r["start_state_id"]):
        group = list(members)
        wins = [policy_succeeded(r, "success") for r in group]
        if len(group) < 2:
            kinds["alone"] += 1
            continue
        kinds["mixed" if any(wins) and not all(wins) else "all_succeeded" if all(wins) else "all_failed"] += 1
        if any(wins) and not all(wins):
            advantages = leave_one_out_advantages([start] * len(group), [r["episode_return"] for r in group])
            pushes.append(sum(a * r["length"] for a, r in zip(advantages, group, strict=True)))
    return {**kinds, "median_unweighted_push_mixed": _median(pushes)}


def _logged(updates: list[dict], key: str) -> list[float]:
    """``key``'s values over the updates that logged it (runs from before a stat existed lack it)."""
    return [u[key] for u in updates if u.get(key) is not None]


def update_figures(updates: list[dict]) -> dict:
    """PPO's step sizes and the advantage balance per update."""
    trained = [u for u in updates if not u.get("warmup")]
    signal = [u for u in trained if (u.get("adv_std") or 0.0) > SIGNAL_STD]
    silent = [u for u in trained if (u.get("adv_std") or 0.0) <= SIGNAL_STD]
    kls = _logged(trained, "approx_kl")
    return {
        "updates": len(trained),
        "median_kl": _median(kls),
        "max_kl": max(kls) if kls else None,
        "median_clipfrac": _median(_logged(trained, "clipfrac")),
        "updates_with_signal": len(signal),
        "median_adv_mean_with_signal": _median([u["adv_mean"] for u in signal]),
        "updates_all_zero": len(silent),
        "median_kl_all_zero": _median(_logged(silent, "approx_kl")),
        "median_grad_norm": _median(_logged(trained, "grad_norm")),
        "median_grad_clipped_share": _median(_logged(trained, "grad_clipped_share")),
        "kl_vs_adv_std_spearman_with_signal": _kl_vs_spread(signal),
    }


def _kl_vs_spread(signal: list[dict]) -> float | None:
    """Rank correlation of an update's KL with its advantages' spread (None under 3 updates or no variation);
    over the updates with signal, since an all-zero batch has no policy gradient and a near-zero KL anyway."""
    pairs = [(u["approx_kl"], u["adv_std"]) for u in signal if u.get("approx_kl") is not None]
    if len(pairs) < 3 or len({kl for kl, _ in pairs}) < 2 or len({std for _, std in pairs}) < 2:
        return None
    return float(spearmanr([kl for kl, _ in pairs], [std for _, std in pairs]).statistic)


def run_figures(run: Path) -> dict:
    rows = read_jsonl(run / "episodes.jsonl")
    # The report's rules (rl_report.training_outcomes): finished training episodes from a scene's start, the
    # simulator's verdict, an episode a person helped a failure of the policy.
    train = [r for r in rows if has_whole_task_verdict(r)]
    if not train:
        raise SystemExit(f"group_stats: {run / 'episodes.jsonl'} has no training episode with a ground-truth verdict")
    wins = [policy_succeeded(r, "success") for r in train]
    successes = [sum(wins[i : i + BLOCK]) for i in range(0, len(train), BLOCK)]
    lengths = {k: [r["length"] for r, won in zip(train, wins, strict=True) if won is k] for k in (True, False)}
    return {
        "training_episodes": len(train),
        f"successes_per_{BLOCK}": successes,
        "median_length_success": _median(lengths[True]),
        "median_length_failure": _median(lengths[False]),
        **group_figures(train),
        **update_figures(read_jsonl(run / "trainer" / "updates.jsonl")),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders: <out>/<variant>/seed<k>")
    args = parser.parse_args(argv)
    figures = {}
    for run in args.runs:
        figures[str(run)] = run_figures(run)
        print(f"{run}: {figures[str(run)]}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
