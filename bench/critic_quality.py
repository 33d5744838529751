"""Quality of a critic checkpoint on held-out simulated episodes: the figures of the README's critic table.

For every task folder written by ``vlac collect-demos --failures`` (held-out seeds) it measures:

- VOC, VROC, VOC-F1, NR on expert episodes and on failure episodes (stall / wrong_target / undo),
  with ``vlac_critic.evaluation.evaluate_trajectory`` — the code `vlac critic eval` runs;
- progress with a mismatched task text (another task's instruction) on the expert episodes' forward
  pairs: mean |progress| against the matched text;
- done detection: the critic's done decision (done_prob > threshold) on every frame against the
  simulator's ground-truth success after that step; precision and recall, per frame and on each
  episode's last frame;
- done rules as the episode loop applies them (``vlac_critic.done_rule``: over a threshold on N steps
  in a row), per episode, judged at the frame where the rule first fires (where the loop would end the
  episode): on time, early, false, missed or quiet (``--done-rules``).

Prints one JSON document and writes plots (docs/critic_*.png by default).

    MUJOCO_GL=egl .venv/bin/python bench/critic_quality.py --checkpoint models/sim_critic \
        out/data/eval_pick_bowl out/data/eval_sweep
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from vlac_critic.done_rule import DoneRule, rule_argument, score_rules


def _mean(values) -> float | None:
    finite = [float(v) for v in values if v is not None and not math.isnan(v)]
    return round(float(np.mean(finite)), 4) if finite else None


def _metrics(results) -> dict:
    """Means over episodes (NaN left out, as `vlac critic eval`'s Mean row) and VOC-F1 of the mean VOC/VROC.

    A per-episode VOC-F1 is unstable when VOC and VROC have opposite signs (the harmonic mean's
    denominator nears 0, e.g. VOC 0.5 / VROC -0.4 gives -4), so its mean can leave [-1, 1]; the F1 of
    the mean VOC and VROC is the robust summary of a set of failure episodes.
    """
    from vlac_critic.metrics import voc_f1

    voc, vroc = _mean([r.voc for r in results]), _mean([r.vroc for r in results])
    return {
        "episodes": len(results),
        "voc": voc,
        "vroc": vroc,
        "voc_f1": _mean([r.voc_f1 for r in results]),
        "voc_f1_of_means": None if voc is None or vroc is None else round(voc_f1(voc, vroc), 4),
        "nr": _mean([r.nr for r in results]),
        "voc_f1_nan": sum(1 for r in results if math.isnan(r.voc_f1)),
        "parse_failures": sum(r.parse_failures for r in results),
    }


def _precision_recall(predicted: np.ndarray, truth: np.ndarray) -> dict:
    tp = int(np.sum(predicted & truth))
    fp = int(np.sum(predicted & ~truth))
    fn = int(np.sum(~predicted & truth))
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "frames": int(predicted.size),
        "positive_frames": int(truth.sum()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="collect-demos output folders (held-out seeds, with --failures)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--skip", type=int, default=5, help="frames between the frames of a pair (default 5)")
    parser.add_argument("--done-threshold", type=float, default=0.9)
    parser.add_argument(
        "--done-rules",
        nargs="+",
        type=rule_argument,
        default=[DoneRule(0.9, 1), DoneRule(0.8, 2), DoneRule(0.8, 3), DoneRule(0.7, 3)],
        metavar="THRESHOLD:STEPS",
        help="episode-level done rules to score (default 0.9:1 0.8:2 0.8:3 0.7:3; 0.9:1 is the release's)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--docs", default="docs", help="folder for the critic_*.png plots")
    parser.add_argument("--json", default=None, help="also write the JSON document here")
    args = parser.parse_args(argv)

    import torch

    from piper_driver.sim.demo_format import iter_episodes
    from vlac_critic.backends import make_backend
    from vlac_critic.critic import Critic
    from vlac_critic.evaluation import evaluate_trajectory
    from vlac_critic.trajectory import pair_indices

    if args.threads:
        torch.set_num_threads(args.threads)
    critic = Critic(make_backend("torch", args.checkpoint, device="cpu", dtype="fp32"), batch_size=args.batch_size)
    episodes = {folder: list(iter_episodes(folder)) for folder in args.folders}
    texts = sorted({r.text for records in episodes.values() for r in records})
    report: dict = {"checkpoint": args.checkpoint, "skip": args.skip, "tasks": {}}
    examples = {}
    all_pred, all_truth, last_pred, last_truth = [], [], [], []
    rule_episodes = []  # (done probabilities, success) per episode, for the done rules
    for records in episodes.values():
        task = records[0].task
        text = records[0].text
        other_texts = [t for t in texts if t != text] or ["Open the drawer"]
        by_variant: dict[str, list] = {}
        matched, mismatched = [], []
        for record in records:
            frames = list(record.front_images)
            name = f"{record.task}_{record.variant}_s{record.seed}"
            result = evaluate_trajectory(critic, name, text, frames, skip=args.skip)
            by_variant.setdefault(record.variant, []).append(result)
            examples.setdefault((task, record.variant), (result, record))
            if record.variant == "expert":
                pairs = pair_indices(len(frames), args.skip)
                earlier, later = [frames[a] for a, _ in pairs], [frames[b] for _, b in pairs]
                wrong = critic.progress(other_texts[record.seed % len(other_texts)], earlier, later)
                matched += [abs(c) for c in result.critics_pct if c is not None]
                mismatched += [abs(s.progress_pct) for s in wrong if s.parsed]
            done = critic.done(text, frames)
            predicted = np.array([d.done_prob is not None and d.done_prob > args.done_threshold for d in done])
            truth = np.asarray(record.success_steps, dtype=bool)
            all_pred.append(predicted)
            all_truth.append(truth)
            last_pred.append(predicted[-1])
            last_truth.append(truth[-1])
            rule_episodes.append(([d.done_prob for d in done], truth))
            if record.variant == "expert" and (task, "done") not in examples:
                examples[(task, "done")] = ([d.done_prob for d in done], truth)
        failures = [r for v, rs in by_variant.items() if v != "expert" for r in rs]
        entry = {
            "text": text,
            "expert": _metrics(by_variant.get("expert", [])),
            "failure": _metrics(failures),
            "failure_by_variant": {v: _metrics(rs) for v, rs in sorted(by_variant.items()) if v != "expert"},
            "mismatched_text": {
                "text": other_texts[0] if len(other_texts) == 1 else other_texts,
                "mean_abs_progress_matched_pct": _mean(matched),
                "mean_abs_progress_mismatched_pct": _mean(mismatched),
            },
        }
        report["tasks"][task] = entry
    report["done_detection_per_frame"] = _precision_recall(np.concatenate(all_pred), np.concatenate(all_truth))
    report["done_detection_last_frame"] = _precision_recall(np.array(last_pred), np.array(last_truth))
    report["done_threshold"] = args.done_threshold
    report["done_rules_per_episode"] = score_rules(rule_episodes, args.done_rules)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:  # its folder made here: a missing one must not lose the report after the scoring
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    _plots(report, examples, Path(args.docs))
    return 0


def _plots(report: dict, examples: dict, docs: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs.mkdir(parents=True, exist_ok=True)
    tasks = list(report["tasks"])
    # VOC-F1 and NR, expert vs failure, per task
    fig, (ax_f1, ax_mm) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(tasks))
    for k, (group, color) in enumerate((("expert", "tab:green"), ("failure", "tab:red"))):
        values = [report["tasks"][t][group]["voc_f1_of_means"] or 0.0 for t in tasks]
        bars = ax_f1.bar(x + (k - 0.5) * 0.38, values, 0.38, color=color, label=group)
        ax_f1.bar_label(bars, fmt="%.2f")
    ax_f1.set_xticks(x, tasks)
    ax_f1.set_ylim(min(0, ax_f1.get_ylim()[0]), 1.3)
    ax_f1.set_ylabel("VOC-F1 of mean VOC, VROC")
    ax_f1.set_title("held-out episodes")
    ax_f1.legend(loc="upper center", ncols=2, fontsize=8)
    for k, (key, color, label) in enumerate(
        (
            ("mean_abs_progress_matched_pct", "tab:blue", "matched task"),
            ("mean_abs_progress_mismatched_pct", "tab:gray", "mismatched task"),
        )
    ):
        values = [report["tasks"][t]["mismatched_text"][key] or 0.0 for t in tasks]
        bars = ax_mm.bar(x + (k - 0.5) * 0.38, values, 0.38, color=color, label=label)
        ax_mm.bar_label(bars, fmt="%.1f")
    ax_mm.set_xticks(x, tasks)
    ax_mm.set_ylabel("mean |progress| (%)")
    ax_mm.set_title("expert pairs, task text")
    ax_mm.set_ylim(0, ax_mm.get_ylim()[1] * 1.2)
    ax_mm.legend(loc="upper center", ncols=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(docs / "critic_metrics.png", dpi=80)
    plt.close(fig)

    # value curves: expert and each failure variant, per task
    variants = ("expert", "stall", "wrong_target", "undo")
    fig, axes = plt.subplots(len(tasks), len(variants), figsize=(12, 2.8 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        for col, variant in enumerate(variants):
            ax = axes[row][col]
            if (task, variant) not in examples:
                ax.set_axis_off()
                continue
            result, _record = examples[(task, variant)]
            ax.plot(result.values_pct, marker="o", label="forward")
            ax.plot(result.reversed_values_pct, marker="x", label="reversed")
            ax.set_title(f"{task} {variant}\nVOC {result.voc:.2f} VROC {result.vroc:.2f}", fontsize=9)
            ax.set_xlabel("pair")
            if col == 0:
                ax.set_ylabel("value (%)")
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(docs / "critic_value_curves.png", dpi=80)
    plt.close(fig)

    # done probability along one expert episode per task, with ground truth
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3), squeeze=False)
    for col, task in enumerate(tasks):
        ax = axes[0][col]
        if (task, "done") not in examples:
            continue
        probs, truth = examples[(task, "done")]
        ax.plot([math.nan if p is None else p for p in probs], label="done_prob")
        ax.plot(truth.astype(float), "--", label="ground truth")
        ax.axhline(report["done_threshold"], color="grey", linewidth=0.8)
        ax.set_title(f"{task} expert episode")
        ax.set_xlabel("frame")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(docs / "critic_done.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
