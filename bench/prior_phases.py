"""What a policy does with the bowl: per-phase behaviour on rollouts recorded with ground truth (pick_bowl).

``vlac actor eval`` says how often a prior succeeds; this says where the others fail. Input: folders of
``python -m vlac_trainer.offline.critic_rollouts collect --variants policy [--greedy]`` (every frame carries the
simulator's phase, ``SimTask.truth``). Per folder:

- ``success``: episodes that reach ground-truth success at any step;
- ``grasped``: episodes that ever hold the bowl (phase ``carry`` or ``release``);
- ``over_plate``: episodes that ever hold it over the plate, low enough to let go (phase ``release``);
- ``open_over_plate``: the share of steps in ``release`` whose action opens the gripper (the release);
- ``open_mid_carry``: the share of steps in ``carry`` whose action opens it (a drop), and ``drop_episodes``,
  the episodes with at least one.

Why: the probe (bench/actor_probe.py) found the open decision blind to "over the plate"; a prior taught to
read it should open more over the plate without dropping more mid-carry, and still carry the bowl there.

Usage: python bench/prior_phases.py FOLDER [FOLDER ...]; prints a table, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from piper_driver.sim.demo_format import iter_episodes

OPEN_FIELD = 6  # DeltaAction's ``open``, the last of ACTION_FIELDS


def phase_stats(records) -> dict:
    """The per-phase counts of one folder's episodes (see the module docstring)."""
    episodes = success = grasped = over_plate = drop_episodes = 0
    steps = {"carry": 0, "release": 0}
    opens = {"carry": 0, "release": 0}
    for record in records:
        phases = record.meta.get("phase")
        if phases is None:
            raise ValueError(f"episode {record.task} s{record.seed} ({record.variant}): no ground-truth phases")
        episodes += 1
        success += bool(record.success_steps.any())
        seen = set(phases[: record.length])
        grasped += bool(seen & {"carry", "release"})
        over_plate += "release" in seen
        dropped = False
        for t in range(record.length):
            if phases[t] in steps:
                steps[phases[t]] += 1
                opened = int(record.actions[t][OPEN_FIELD]) == 1
                opens[phases[t]] += opened
                dropped |= opened and phases[t] == "carry"
        drop_episodes += dropped
    if not episodes:
        raise ValueError("no episodes")

    def share(k: str) -> float | None:
        return round(opens[k] / steps[k], 4) if steps[k] else None

    return {
        "episodes": episodes,
        "success": success,
        "grasped": grasped,
        "over_plate": over_plate,
        "carry_steps": steps["carry"],
        "release_steps": steps["release"],
        "open_over_plate": share("release"),
        "open_mid_carry": share("carry"),
        "drop_episodes": drop_episodes,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    results = {}
    for folder in args.folders:
        if not folder.is_dir():
            print(f"prior_phases: {folder} is not a directory", file=sys.stderr)
            return 2
        stats = phase_stats(iter_episodes(folder))
        results[str(folder)] = stats
        print(
            f"{folder}: success {stats['success']}/{stats['episodes']}, grasped {stats['grasped']}, over the plate "
            f"{stats['over_plate']}, open over the plate {stats['open_over_plate']} of {stats['release_steps']} steps, "
            f"mid-carry {stats['open_mid_carry']} of {stats['carry_steps']} ({stats['drop_episodes']} episodes)"
        )
    print(json.dumps({"prior_phases": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
