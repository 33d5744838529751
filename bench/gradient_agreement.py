"""Do the scenes' lessons agree? Each training group's policy gradient, and how alike those of one scene and of
different scenes are.

Why: trained on one scene throughout, the group-baseline update climbs (``gg1``); on a new scene every group
(``gg`` and its changes) or a pool of five (``ggp5``) it does not move the sampled policy beyond what the scenes
explain (the scene control). Two readings remain: the groups' lessons share a direction that their noise hides
(then smaller steps over more episodes climb), or a scene's lesson is its own and points nowhere for another scene
(then no step size carries it). The gradients tell them apart: at the parameters the run started from, the
lesson of a group of episodes from one scene is g = sum_i A_i s_i, with A_i the leave-one-out advantage of episode
i's return (``vlac_trainer.online.group_baseline``) and s_i = d/dtheta sum_t log pi(a_t | o_t) the score
gradient of the episode's own recorded actions (teacher-forced, over the model's trainable parameters, the value
head left out). At the parameters that sampled the episodes, PPO's clipped surrogate has this gradient up to a
positive scale, so the cosine of two groups' lessons says whether a step on one helps the other, to first order.

Figures, for a run folder (``<out>/<variant>/seed<k>``) and a policy (``--policy``; default the run's prior):
- groups: consecutive training episodes with a verdict from one scene start (``rl_report.scene_groups``), cut into
  ``--group-size`` (the trainer's groups of 4); a group whose returns all tie has no lesson and is left out;
- the cosine of every pair of lessons, split into pairs from the same scene (a pool's groups meet their scene
  again) and pairs from different scenes: mean, standard deviation and count; the pairs from different scenes
  split again by the scenes' layout (``scene_sides``): both goals on the same side of the table (``same_side``)
  or mirrored (``mirrored``). Why: a scene seed puts the goal (plate, bin) on the arm's left or right with the
  start (tray, trash) across from it, so the same carry is a move to +y in one layout and to -y in the other; if
  lessons agree within a layout and cancel across the mirror, the whole task's agreement hides that;
- the null: the same cosines with each group's advantages permuted among its episodes (``--null-draws`` draws):
  lessons that carry only what the episodes' score gradients share (the grammar's common tokens, one scene's
  look), not which episode did better; a mean cosine is a shared lesson only where it stands above its null;
- ``sum_gain``: |sum of the unit lessons| / sqrt(groups): 1 for mutually orthogonal lessons, sqrt(groups) for
  identical ones (how much of many groups' lessons survives their sum);
- each for the lessons as trained (every step carries its episode's advantage) and length-balanced (each episode's
  advantage x mean length / its length, variant gge's weighting), which cancels whatever every step's score
  gradient shares: with the gradients taken at the prior, the later episodes of a run come from policies that
  moved away from it, and that drift pushes every step alike, so long failures against short successes make the
  lessons as trained agree on it (``agreement_figures``).

The episodes were sampled by the run's policies as they changed, and the gradients are taken at one policy: the
figures describe the lessons as seen from it (from the prior: the update's first steps). Cost: one teacher-forced
forward and backward pass per recorded step (about 4,800 for a 120-episode run; minutes on CPU) and one float32
gradient per episode in memory (17.6 MB each for the 4.39 M-parameter actor).

Usage: ``MUJOCO_GL=egl .venv/bin/python bench/gradient_agreement.py out/rl40/ggp10/seed0 [--policy DIR]
[--group-size 4] [--null-draws 20] [--seed 0] [--threads 2]``; the last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vlac_trainer.online.group_baseline import leave_one_out_advantages, length_balanced

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_report import read_jsonl, run_prior, scene_groups, scene_sides

#: Steps teacher-forced in one forward pass (memory, not the result: the gradient is a sum over steps).
SCORE_CHUNK = 16


@dataclass(frozen=True)
class Group:
    """One trainer group: its scene's start id, its episodes' ids and leave-one-out advantages (in run order)."""

    scene: str
    episode_ids: tuple[str, ...]
    advantages: tuple[float, ...]


def training_groups(rows: list[dict], group_size: int) -> list[Group]:
    """The groups of a run's episodes.jsonl ``rows`` (see the module's docstring), those with a lesson only."""
    groups = []
    for group in scene_groups(rows, group_size):
        scene = group[0]["start_state_id"]
        advantages = leave_one_out_advantages([scene] * group_size, [r["episode_return"] for r in group])
        if any(a != 0.0 for a in advantages):  # a tie is exactly zero (group_baseline.RETURN_TIE)
            groups.append(Group(scene, tuple(r["episode_id"] for r in group), tuple(advantages)))
    return groups


def score_gradient(policy, episode, input_limits) -> torch.Tensor:
    """d/dtheta of the summed log-probability of ``episode``'s own recorded actions (an operator's steps left out),
    over the model's trainable parameters, flattened (float32)."""
    from vlac_actor.inputs import actor_content
    from vlac_trainer.online.ppo_trainer import logprob_gradient

    steps = [t for t in episode.transitions if not t.human]
    prompts = [actor_content(t.observation, input_limits) for t in steps]
    return logprob_gradient(policy, prompts, [t.action.delta for t in steps], torch.ones(len(steps)), SCORE_CHUNK)


def lessons(scores: list[torch.Tensor], advantages: list[np.ndarray]) -> torch.Tensor:
    """(groups, params): each group's sum_i A_i s_i, from its episodes' score gradients (episodes, params)."""
    return torch.stack([torch.from_numpy(a).float() @ s for s, a in zip(scores, advantages, strict=True)])


def _unit(lesson_rows: torch.Tensor) -> torch.Tensor:
    """Each lesson scaled to length 1 (a zero one stays zero)."""
    return lesson_rows / lesson_rows.norm(dim=1, keepdim=True).clamp_min(1e-30)


#: The pair classes of ``pair_cosines``: a pair of one scene, and pairs of two scenes, all of them and split by
#: whether the two goals lie on the same side of the table.
PAIR_CLASSES = ("same_scene", "other_scene", "same_side", "mirrored")


def pair_cosines(lesson_rows: torch.Tensor, scenes: list[str], sides: dict[str, str]) -> dict[str, list[float]]:
    """The cosines of every pair of lessons by ``PAIR_CLASSES``; ``sides`` gives each scene's layout (a scene
    missing from it, a return-and-explore start say, counts in ``other_scene`` only)."""
    unit = _unit(lesson_rows)
    cos = (unit @ unit.T).tolist()
    pairs: dict[str, list[float]] = {name: [] for name in PAIR_CLASSES}
    for i in range(len(scenes)):
        for j in range(i + 1, len(scenes)):
            if scenes[i] == scenes[j]:
                pairs["same_scene"].append(cos[i][j])
                continue
            pairs["other_scene"].append(cos[i][j])
            side_i, side_j = sides.get(scenes[i]), sides.get(scenes[j])
            if side_i is not None and side_j is not None:
                pairs["same_side" if side_i == side_j else "mirrored"].append(cos[i][j])
    return pairs


def sum_gain(lesson_rows: torch.Tensor) -> float:
    """|sum of the unit lessons| / sqrt(groups): 1 when they are mutually orthogonal, sqrt(groups) when alike."""
    return float(_unit(lesson_rows).sum(dim=0).norm() / math.sqrt(len(lesson_rows)))


def _summary(values: list[float]) -> dict | None:
    if not values:
        return None
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "sd": round(sd, 4), "pairs": len(values)}


def _null(draw_means: list[float]) -> dict | None:
    """The null's mean cosine over its draws, and the spread of one draw's mean (what a real mean is set against)."""
    if not draw_means:
        return None
    sd = statistics.stdev(draw_means) if len(draw_means) > 1 else 0.0
    return {"mean": round(statistics.fmean(draw_means), 4), "sd_of_mean": round(sd, 4), "draws": len(draw_means)}


def _weighted(advantages: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """The advantages as the lesson weighs the episodes: as trained (per step, ``lengths`` None), or each scaled by
    mean length / its length (``group_baseline.length_balanced``, variant gge's weighting)."""
    return advantages if lengths is None else np.asarray(length_balanced(advantages.tolist(), lengths.tolist()))


def _cosine_figures(
    scores: list[torch.Tensor],
    scenes: list[str],
    sides: dict[str, str],
    advantages: list[np.ndarray],
    lengths: list[np.ndarray] | None,
    null_draws: int,
    rng: np.random.Generator,
) -> dict:
    """The lessons' cosines per pair class, their null (advantages permuted among a group's episodes, each
    episode keeping its length), and the sum gain, for one weighting."""
    lengths = lengths or [None] * len(scores)
    lesson_rows = lessons(scores, [_weighted(a, n) for a, n in zip(advantages, lengths, strict=True)])
    real = pair_cosines(lesson_rows, scenes, sides)
    null: dict[str, list[float]] = {name: [] for name in PAIR_CLASSES}
    for _ in range(null_draws):
        permuted = [_weighted(rng.permutation(a), n) for a, n in zip(advantages, lengths, strict=True)]
        for name, values in pair_cosines(lessons(scores, permuted), scenes, sides).items():
            if values:
                null[name].append(statistics.fmean(values))
    figures = {}
    for name in PAIR_CLASSES:
        figures[name] = _summary(real[name])
        figures[f"null_{name}"] = _null(null[name])
    figures["sum_gain"] = round(sum_gain(lesson_rows), 3)
    return figures


def agreement_figures(
    scores: list[torch.Tensor],
    groups: list[Group],
    lengths: list[np.ndarray],
    *,
    null_draws: int,
    rng: np.random.Generator,
    sides: dict[str, str] | None = None,
) -> dict:
    """The figures of the module's docstring from the groups' score gradients (one (episodes, params) per group)
    and their episodes' policy steps (``lengths``), for the lessons as trained (``as_trained``: every step its
    episode's advantage) and length-balanced (``length_balanced``).

    Why both: failures run to the step limit and successes end early, so a lesson as trained weighs a failure's
    steps more, and whatever every long episode's score gradient shares (a policy that drifted from the one the
    gradient is taken at pushes every step alike) survives in the contrast; length-balanced, a part common to every
    step cancels, since a group's advantages sum to zero. ``sides``: each scene's layout (``scene_sides``); None
    leaves the same-side / mirrored split empty."""
    if len(groups) < 2:
        raise ValueError(f"{len(groups)} group(s) with a lesson: at least 2 are needed for a pair")
    scenes = [g.scene for g in groups]
    sides = sides or {}
    advantages = [np.asarray(g.advantages) for g in groups]
    return {
        "groups": len(groups),
        "scenes": len(set(scenes)),
        "scenes_per_side": {side: sum(sides.get(s) == side for s in set(scenes)) for side in ("left", "right")},
        "as_trained": _cosine_figures(scores, scenes, sides, advantages, None, null_draws, rng),
        "length_balanced": _cosine_figures(scores, scenes, sides, advantages, lengths, null_draws, rng),
    }


def scoring_policy(policy_dir: Path):
    """(policy, input limits) the recorded steps are scored with: fp32 on the CPU, in eval mode (no dropout: the
    gradient of the log-probabilities the policy sampled with), the trainer's default input checks."""
    from vlac_actor.policy import load_policy
    from vlac_trainer.online.trainer_config import TrainerConfig

    policy = load_policy(policy_dir, device="cpu", dtype="fp32")
    policy.loaded.model.eval()
    defaults = TrainerConfig()
    return policy, policy.settings.input_limits(defaults.max_task_chars, defaults.max_abs_position_mm)


def group_episodes(run: Path, group: Group) -> tuple[list, np.ndarray]:
    """``group``'s episodes read from the run's training bags, and each one's policy steps (an operator's left out)."""
    from vlac_core.bag import read_episode

    episodes = [read_episode(run / "bags" / "train" / episode_id) for episode_id in group.episode_ids]
    return episodes, np.array([sum(not t.human for t in episode.transitions) for episode in episodes])


def run_agreement(run: Path, policy_dir: Path, *, group_size: int, null_draws: int, seed: int) -> dict:
    started = time.monotonic()
    groups = training_groups(read_jsonl(run / "episodes.jsonl"), group_size)
    policy, limits = scoring_policy(policy_dir)
    scores, lengths = [], []
    for group in groups:
        episodes, steps = group_episodes(run, group)
        scores.append(torch.stack([score_gradient(policy, episode, limits) for episode in episodes]))
        lengths.append(steps)
    sides = scene_sides([g.scene for g in groups])
    figures = agreement_figures(
        scores, groups, lengths, null_draws=null_draws, rng=np.random.default_rng(seed), sides=sides
    )
    return {
        "run": str(run),
        "policy": str(policy_dir),
        "parameters": int(scores[0].shape[1]) if scores else 0,
        **figures,
        "seconds": round(time.monotonic() - started, 1),
    }


def add_lesson_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a script that measures a run's group lessons (this one, ``decision_lessons``)."""
    parser.add_argument("run", type=Path, help="run folder: <out>/<variant>/seed<k> (episodes.jsonl, bags/train)")
    parser.add_argument("--policy", type=Path, help="checkpoint the gradients are taken at (default: the run's prior)")
    parser.add_argument("--group-size", type=int, default=4, help="episodes per trainer group (4)")
    parser.add_argument("--null-draws", type=int, default=20, help="permutations of each group's advantages (20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the null's permutations")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def lesson_policy(script: str, args: argparse.Namespace) -> Path:
    """The checkpoint the gradients are taken at (``--policy``, else the run's prior), after checking
    ``add_lesson_arguments``' values and setting torch's threads; a bad value exits naming ``script``."""
    if args.null_draws < 0:
        raise SystemExit(f"{script}: --null-draws {args.null_draws}: must be >= 0")
    policy_dir = args.policy or run_prior(args.run)
    if policy_dir is None:
        raise SystemExit(f"{script}: {args.run} has no experiment_config.yaml to read its prior from; give --policy")
    if args.threads:
        torch.set_num_threads(args.threads)
    return policy_dir


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_lesson_arguments(parser)
    args = parser.parse_args(argv)
    policy_dir = lesson_policy("gradient_agreement", args)
    try:
        figures = run_agreement(
            args.run, policy_dir, group_size=args.group_size, null_draws=args.null_draws, seed=args.seed
        )
    except ValueError as error:
        raise SystemExit(f"gradient_agreement: {args.run}: {error}") from None
    print(f"groups {figures['groups']} on {figures['scenes']} scenes (goal left / right: "
          f"{figures['scenes_per_side']['left']} / {figures['scenes_per_side']['right']})")  # fmt: skip
    for weighting in ("as_trained", "length_balanced"):
        for name, value in figures[weighting].items():
            print(f"{weighting} {name}: {value}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
