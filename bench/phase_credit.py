"""Where per-phase credit moves the group advantage: `gg`'s advantages against `group_phase`'s on a run's episodes.

``trainer_node.advantage: group`` gives every step its episode's leave-one-out advantage; ``group_phase``
(``group_baseline.phase_matched_advantages``) judges each run of steps in one simulator phase against the group's
other episodes from where they reached that phase. Both are computed here on the same recorded groups, whichever
the run trained with, so a run's result can be read against how much its credit differed from gg's. For each run
folder (``<out>/<variant>/seed<k>``): the trainer's groups (``rl_report.scene_groups``), each episode's per-step
rewards and phases from its bag (``bags/train/<episode id>``), and over the groups whose advantages are not all
zero under either rule:
- ``steps``; ``sign_flipped``: the share of steps whose two advantages have strictly opposite signs;
  ``changed``: the share whose advantages differ by more than ``CHANGED`` (return units: a potential of 1 is the task);
- per phase (the phase at the step's start): steps, mean advantage under each rule, mean |advantage| under each;
- per outcome (the simulator's success): the same for the steps of successful and of failed episodes;
- ``phase_only_groups``: the groups whose returns tie (gg's advantages all zero) while group_phase's are not, and
  ``phase_only_mean_abs``, the mean |advantage| of their steps: with a potential-difference reward the return to go
  from a phase's entry is 1 - potential at entry for a success, so successes that entered a phase at different
  potentials (where in the plate's radius the bowl came in, a re-entry) differ by that alone.

Usage: ``.venv/bin/python bench/phase_credit.py out/rl44/ggph/seed0 out/rl44/ggph/seed1``; the last line of output
is one JSON object: {run folder: figures}. Reads bags only (no model): seconds per run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from vlac_trainer.online.group_baseline import leave_one_out_advantages, phase_matched_advantages

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_report import read_jsonl, scene_groups

#: Two advantages of a step further apart than this (return units) count as changed.
CHANGED = 0.05


@dataclass(frozen=True)
class RecordedEpisode:
    """What the two credit rules read of one episode."""

    rewards: tuple[float, ...]
    phases: tuple[str, ...]
    success: bool


def step_credits(group: list[RecordedEpisode]) -> list[tuple[str, bool, float, float]]:
    """(phase, episode succeeded, gg's advantage, group_phase's) of every step of one group."""
    keys = ["group"] * len(group)
    per_episode = leave_one_out_advantages(keys, [sum(e.rewards) for e in group])
    per_phase = phase_matched_advantages(keys, [e.rewards for e in group], [e.phases for e in group])
    return [
        (phase, episode.success, episode_advantage, step_advantage)
        for episode, episode_advantage, steps in zip(group, per_episode, per_phase, strict=True)
        for phase, step_advantage in zip(episode.phases, steps, strict=True)
    ]


def _summary(rows: list[tuple[float, float]]) -> dict:
    n = len(rows)
    return {
        "steps": n,
        "mean_gg": sum(a for a, _ in rows) / n,
        "mean_phase": sum(b for _, b in rows) / n,
        "mean_abs_gg": sum(abs(a) for a, _ in rows) / n,
        "mean_abs_phase": sum(abs(b) for _, b in rows) / n,
    }


def credit_figures(groups: list[list[RecordedEpisode]]) -> dict:
    """The module docstring's figures over ``groups`` (those with any nonzero advantage under either rule)."""
    credited = [step_credits(group) for group in groups]
    with_signal = [c for c in credited if any(a != 0.0 or b != 0.0 for _, _, a, b in c)]
    phase_only = [c for c in with_signal if all(a == 0.0 for _, _, a, _ in c)]
    phase_only_steps = [b for c in phase_only for _, _, _, b in c]
    steps = [s for c in with_signal for s in c]
    if not steps:
        return {"groups": len(groups), "groups_with_signal": 0, "steps": 0}
    by_phase: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_outcome: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for phase, success, a, b in steps:
        by_phase[phase].append((a, b))
        by_outcome["success" if success else "failure"].append((a, b))
    return {
        "groups": len(groups),
        "groups_with_signal": len(with_signal),
        "steps": len(steps),
        "sign_flipped": sum(a * b < 0 for _, _, a, b in steps) / len(steps),
        "changed": sum(abs(a - b) > CHANGED for _, _, a, b in steps) / len(steps),
        "by_phase": {phase: _summary(rows) for phase, rows in sorted(by_phase.items())},
        "by_outcome": {kind: _summary(rows) for kind, rows in sorted(by_outcome.items())},
        "phase_only_groups": len(phase_only),
        "phase_only_mean_abs": sum(map(abs, phase_only_steps)) / len(phase_only_steps) if phase_only_steps else None,
    }


def recorded(run: Path, episode_id: str) -> RecordedEpisode:
    """An episode's rewards, phases and success from its bag; an episode without the simulator's phase is refused."""
    from vlac_core.bag import read_episode

    episode = read_episode(run / "bags" / "train" / episode_id)
    phases = tuple(t.gt_phase for t in episode.transitions)
    if not all(phases):
        raise ValueError(f"{run}: episode {episode_id} has steps without the simulator's phase (gt_phase)")
    return RecordedEpisode(tuple(t.reward for t in episode.transitions), phases, bool(episode.success))


def run_credit(run: Path, group_size: int) -> dict:
    groups = [
        [recorded(run, row["episode_id"]) for row in group]
        for group in scene_groups(read_jsonl(run / "episodes.jsonl"), group_size)
    ]
    return credit_figures(groups)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders: <out>/<variant>/seed<k>")
    parser.add_argument("--group-size", type=int, default=4, help="episodes per trainer group (4)")
    args = parser.parse_args(argv)
    result = {}
    for run in args.runs:
        if not (run / "episodes.jsonl").is_file():
            parser.error(f"{run}: no episodes.jsonl (not a run folder of rl_experiment)")
        result[str(run)] = run_credit(run, args.group_size)
        print(f"{run}: {json.dumps(result[str(run)], indent=1)}", file=sys.stderr)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
