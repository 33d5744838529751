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

Per folder also ``first_open``: each episode's first open while holding the bowl, binned by the bowl's
horizontal distance to the plate centre then (read back from the ``carry`` potential, which is linear in it:
``pick_bowl.truth``; within the success radius the potential also pays height, so those are one bin), with how
many of those episodes succeeded; ``never_opened`` counts grasping episodes that never let go. Why: the
control's RL policies (issue 11) succeed by dropping the bowl from carry height; this says whether their
failures are drops beside the plate or drops that miss from right above it.

Why: the probe (bench/actor_probe.py) found the open decision blind to "over the plate"; a prior taught to
read it should open more over the plate without dropping more mid-carry, and still carry the bowl there.

Usage: python bench/prior_phases.py FOLDER [FOLDER ...]; prints a table, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from piper_driver.sim.demo_format import iter_episodes
from piper_driver.sim.tasks.pick_bowl import CARRY_BAND, CARRY_SCALE_M, SUCCESS_RADIUS_M

OPEN_FIELD = 6  # DeltaAction's ``open``, the last of ACTION_FIELDS
#: Upper edges (mm) of the first-open distance bins past the success radius; the last bin is open-ended.
FIRST_OPEN_EDGES_MM = (50.0, 70.0)


def carry_distance_mm(potential: float) -> float | None:
    """The held bowl's horizontal distance to the plate centre (mm) from its ``carry`` potential, the inverse of
    ``CARRY_BAND[0] + span * closeness(d, CARRY_SCALE_M)``; None within the success radius (height adds there)."""
    low, high = CARRY_BAND
    distance_m = CARRY_SCALE_M * (1.0 - (float(potential) - low) / (high - low))
    return None if distance_m <= SUCCESS_RADIUS_M + 1e-9 else 1000.0 * distance_m


def first_open_bins(records) -> dict:
    """Episodes by where they first let go of the held bowl (see the module docstring): per distance bin the
    opens and the successes among them, and the grasping episodes that never opened."""
    radius_mm = 1000.0 * SUCCESS_RADIUS_M
    edges = [radius_mm, *FIRST_OPEN_EDGES_MM]
    names = [f"<= {radius_mm:g} mm", *(f"{a:g}-{b:g} mm" for a, b in itertools.pairwise(edges)), f"> {edges[-1]:g} mm"]
    bins = {name: {"opens": 0, "succeeded": 0} for name in names}
    never = 0
    for record in records:
        phases, potential = record.meta["phase"], record.meta["potential"]
        held = [t for t in range(record.length) if phases[t] in ("carry", "release")]
        opens = [t for t in held if int(record.actions[t][OPEN_FIELD]) == 1]
        if not opens:
            never += bool(held)
            continue
        distance = carry_distance_mm(potential[opens[0]]) if phases[opens[0]] == "carry" else None
        index = 0 if distance is None else 1 + sum(distance > edge for edge in FIRST_OPEN_EDGES_MM)
        bins[names[index]]["opens"] += 1
        bins[names[index]]["succeeded"] += bool(record.success_steps.any())
    return {"bins": bins, "never_opened": never}


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
        records = list(iter_episodes(folder))  # read once for both (a folder is tens of short episodes)
        stats = phase_stats(records)
        stats["first_open"] = first_open_bins(records)
        results[str(folder)] = stats
        print(
            f"{folder}: success {stats['success']}/{stats['episodes']}, grasped {stats['grasped']}, over the plate "
            f"{stats['over_plate']}, open over the plate {stats['open_over_plate']} of {stats['release_steps']} steps, "
            f"mid-carry {stats['open_mid_carry']} of {stats['carry_steps']} ({stats['drop_episodes']} episodes)"
        )
        first = stats["first_open"]
        cells = ", ".join(f"{name} {b['succeeded']}/{b['opens']}" for name, b in first["bins"].items())
        print(f"  first open while holding, bowl to plate (succeeded/opens): {cells}; never {first['never_opened']}")
    print(json.dumps({"prior_phases": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
