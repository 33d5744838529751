"""Which decisions of an action carry the group lessons, and do those parts agree across scenes?

Why: an action is about a dozen sampled decisions (the digits of x, y, z, roll, pitch, yaw and the gripper's
open/close), and PPO pushes every decision's log-probability by its episode's advantage. A group's lesson
(``gradient_agreement``: sum_i A_i s_i, s_i the gradient of episode i's summed log-probabilities) is therefore a
sum of one part per kind of decision. A part whose decisions did not decide the outcome adds noise in proportion
to its score's size; a part that did may agree across scenes where the whole lesson does not. This script splits
each episode's score gradient by the field each decision chooses (``ActionGrammar.decision_fields``) into
classes (``SPLITS``: by kind, translation x, y, z / rotation roll, pitch, yaw / gripper open; or ``--split field``, each
of the seven fields its own class) and reports, per class:

- the decisions' mean sampled surprisal (-log p of the recorded choice) and entropy per decision and per step, at
  the policy the gradients are taken at (how much randomness the class's sampling carries);
- its share of the lessons' squared norm (as trained), the whole lesson's being the sum of the parts;
- the cross-group agreement of the class's lessons: ``gradient_agreement.agreement_figures`` on the class's score
  gradients (cosines of pairs from the same and from other scenes, each against its null of permuted advantages;
  as trained and length-balanced), and the same for the whole lesson, so a class can be set against the whole.

Cost: one teacher-forced forward pass and one backward pass per class per recorded step (3x
``gradient_agreement``'s backward work by kind, 7x by field: 9-14 min for a 48-60-episode run by kind on one thread),
and each episode's score gradient per class in memory (17.6 MB per class and episode for the 4.39 M-parameter actor:
about 2.5 GB by kind for a 48-episode run, 6 GB by field).

Usage: ``MUJOCO_GL=egl .venv/bin/python bench/decision_lessons.py out/rl45/gg/seed0 [--split kind|field]
[--policy DIR] [--group-size 4] [--null-draws 20] [--seed 0] [--threads 1] [--max-groups N]``; the last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vlac_core.types import ACTION_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gradient_agreement import (
    SCORE_CHUNK,
    add_lesson_arguments,
    agreement_figures,
    group_episodes,
    lesson_policy,
    scoring_policy,
    training_groups,
)
from rl_report import read_jsonl, scene_sides

#: Decision classes by the action field (index into ``vlac_core.types.ACTION_FIELDS``) the decision chooses.
SPLITS = {
    "kind": {"translation": (0, 1, 2), "rotation": (3, 4, 5), "gripper": (6,)},
    "field": {name: (k,) for k, name in enumerate(ACTION_FIELDS)},
}


def class_masks(policy, actions, mask: torch.Tensor, classes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Per class, a (steps, decisions) bool mask of ``mask``'s decision slots that choose one of its fields."""
    owner = {field: name for name, fields in classes.items() for field in fields}
    out = {name: torch.zeros_like(mask, dtype=torch.bool) for name in classes}
    for row, action in enumerate(actions):
        fields = policy.grammar.decision_fields(policy.grammar.token_ids(action))
        if len(fields) != int(mask[row].sum()):
            raise RuntimeError(f"step {row}: {len(fields)} decisions by the grammar, {int(mask[row].sum())} scored")
        for slot, field in enumerate(fields):
            out[owner[field]][row, slot] = True
    return out


def class_score_gradients(
    policy, episode, input_limits, classes: dict[str, tuple[int, ...]], tallies: dict[str, dict[str, float]]
) -> dict[str, torch.Tensor]:
    """Per class, d/dtheta of the summed log-probabilities of ``episode``'s own recorded decisions of that class (an
    operator's steps left out), over the model's trainable parameters, flattened (float32); the classes' gradients
    sum to ``gradient_agreement.score_gradient``. Adds each class's decisions, surprisal and entropy to
    ``tallies``."""
    from vlac_actor.inputs import actor_content
    from vlac_actor.scoring import score_actions

    trainable = [p for p in policy.loaded.model.parameters() if p.requires_grad]
    totals = {name: [torch.zeros(p.shape, dtype=torch.float32) for p in trainable] for name in classes}
    steps = [t for t in episode.transitions if not t.human]
    for name in classes:
        tallies[name]["steps"] += len(steps)
    for lo in range(0, len(steps), SCORE_CHUNK):
        chunk = steps[lo : lo + SCORE_CHUNK]
        prompts = [actor_content(t.observation, input_limits) for t in chunk]
        actions = [t.action.delta for t in chunk]
        scores = score_actions(policy, [c for c, _ in prompts], [list(i) for _, i in prompts], actions, with_grad=True)
        masks = class_masks(policy, actions, scores.mask, classes)
        for k, name in enumerate(classes):
            chosen = scores.token_logprobs[masks[name]]
            tallies[name]["decisions"] += chosen.numel()
            tallies[name]["surprisal"] += float(-chosen.detach().sum())
            tallies[name]["entropy"] += float(scores.entropies[masks[name]].detach().sum())
            if chosen.numel() == 0:
                continue
            grads = torch.autograd.grad(chosen.sum(), trainable, retain_graph=k < len(classes) - 1, allow_unused=True)
            for acc, grad in zip(totals[name], grads, strict=True):
                if grad is not None:
                    acc += grad.float()
    return {name: torch.cat([t.flatten() for t in total]) for name, total in totals.items()}


def norm_shares(scores: dict[str, list[torch.Tensor]], advantages: list[np.ndarray]) -> dict[str, float]:
    """Each class's share of the lessons' summed squared norm (as trained: lesson = sum_i A_i s_i per group)."""
    squares = {
        name: sum(float((torch.from_numpy(a).float() @ s).pow(2).sum()) for s, a in zip(rows, advantages, strict=True))
        for name, rows in scores.items()
    }
    total = sum(squares.values())
    return {name: (value / total if total > 0 else 0.0) for name, value in squares.items()}


def run_decision_lessons(
    run: Path,
    policy_dir: Path,
    *,
    classes: dict[str, tuple[int, ...]],
    group_size: int,
    null_draws: int,
    seed: int,
    max_groups: int | None,
) -> dict:
    started = time.monotonic()
    groups = training_groups(read_jsonl(run / "episodes.jsonl"), group_size)[:max_groups]
    if len(groups) < 2:
        raise ValueError(f"{len(groups)} group(s) with a lesson: at least 2 are needed for a pair")
    policy, limits = scoring_policy(policy_dir)
    tallies = {name: {"steps": 0, "decisions": 0, "surprisal": 0.0, "entropy": 0.0} for name in classes}
    scores: dict[str, list[torch.Tensor]] = {name: [] for name in classes}
    lengths = []
    for group in groups:
        episodes, steps = group_episodes(run, group)
        per_episode = [class_score_gradients(policy, episode, limits, classes, tallies) for episode in episodes]
        for name in classes:
            scores[name].append(torch.stack([s[name] for s in per_episode]))
        lengths.append(steps)
    advantages = [np.asarray(g.advantages) for g in groups]
    sides = scene_sides([g.scene for g in groups])
    whole = [sum(scores[name][g] for name in classes) for g in range(len(groups))]
    shares = norm_shares(scores, advantages)
    figures = {"run": str(run), "policy": str(policy_dir), "classes": classes, "groups": len(groups)}
    figures["whole"] = agreement_figures(
        whole, groups, lengths, null_draws=null_draws, rng=np.random.default_rng(seed), sides=sides
    )
    for name, tally in tallies.items():
        decisions = max(tally["decisions"], 1)
        figures[name] = {
            "decisions_per_step": round(tally["decisions"] / max(tally["steps"], 1), 3),
            "surprisal_per_decision": round(tally["surprisal"] / decisions, 4),
            "entropy_per_decision": round(tally["entropy"] / decisions, 4),
            "entropy_per_step": round(tally["entropy"] / max(tally["steps"], 1), 4),
            "lesson_norm_share": round(shares[name], 4),
            **agreement_figures(
                scores[name], groups, lengths, null_draws=null_draws, rng=np.random.default_rng(seed), sides=sides
            ),
        }
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def _line(name: str, figures: dict) -> str:
    """One class's mean cosines per pair class and weighting, each beside its null's mean and spread."""
    cells = []
    for weighting in ("as_trained", "length_balanced"):
        for pairs in ("same_scene", "other_scene"):
            real, null = figures[weighting][pairs], figures[weighting][f"null_{pairs}"]
            if real is not None and null is not None:
                cells.append(f"{weighting} {pairs} {real['mean']:+.4f} (null {null['mean']:+.4f}, "
                             f"sd {null['sd_of_mean']:.4f})")  # fmt: skip
    return f"{name}: " + "; ".join(cells)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lesson_arguments(parser)
    parser.add_argument("--split", choices=list(SPLITS), default="kind", help="decision classes (kind)")
    parser.add_argument("--max-groups", type=int, help="the run's first N groups with a lesson only (default: all)")
    args = parser.parse_args(argv)
    if args.max_groups is not None and args.max_groups < 2:
        raise SystemExit(f"decision_lessons: --max-groups {args.max_groups}: must be >= 2")
    policy_dir = lesson_policy("decision_lessons", args)
    try:
        figures = run_decision_lessons(
            args.run,
            policy_dir,
            classes=SPLITS[args.split],
            group_size=args.group_size,
            null_draws=args.null_draws,
            seed=args.seed,
            max_groups=args.max_groups,
        )
    except ValueError as error:
        raise SystemExit(f"decision_lessons: {args.run}: {error}") from None
    print(f"groups {figures['groups']}")
    print(_line("whole", figures["whole"]))
    for name in SPLITS[args.split]:
        f = figures[name]
        print(f"{name}: {f['decisions_per_step']} decisions a step, entropy {f['entropy_per_step']} nats a step, "
              f"lesson norm share {f['lesson_norm_share']:.3f}")  # fmt: skip
        print(_line(name, f))
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
