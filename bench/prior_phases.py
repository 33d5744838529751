"""What a policy does with the bowl or the trash: per-phase behaviour on rollouts recorded with ground truth.

``vlac actor eval`` says how often a prior succeeds; this says where the others fail. Input: folders of
``python -m vlac_trainer.offline.critic_rollouts collect --variants policy [--greedy]`` (every frame carries the
simulator's phase, ``SimTask.truth``). Per folder:

- ``success``: episodes that reach ground-truth success at any step;
- ``grasped``: episodes that ever hold the bowl (phase ``carry`` or ``release``);
- ``over_plate``: episodes that ever hold it over the plate, low enough to let go (phase ``release``);
- ``open_over_plate``: the share of steps in ``release`` whose action opens the gripper (the release);
- ``open_mid_carry``: the share of steps in ``carry`` whose action opens it (a drop), and ``drop_episodes``,
  the episodes with at least one;
- ``still_carry``: the share of steps in ``carry`` whose action moves neither x, y nor z, and ``frozen_episodes``,
  the episodes whose last ``FROZEN_STEPS`` steps are all such steps: a greedy policy that repeats "hold still"
  after the grasp never leaves that state (the object-loss prior, README Models "Where the trash is").

Per folder also ``first_open``: each episode's first open while holding the bowl, binned by the bowl's
horizontal distance to the plate centre then (read back from the ``carry`` potential, which is linear in it:
``pick_bowl.truth``; within the success radius the potential also pays height, so those are one bin), with how
many of those episodes succeeded; ``never_opened`` counts grasping episodes that never let go. Why: the
control's RL policies (issue 11) succeed by dropping the bowl from carry height; this says whether their
failures are drops beside the plate or drops that miss from right above it.

Why: the probe (bench/actor_probe.py) found the open decision blind to "over the plate"; a prior taught to
read it should open more over the plate without dropping more mid-carry, and still carry the bowl there.

Sweep folders (``--task sweep`` rollouts) get ``sweep_stats`` instead: successes and the step of each, and of the
failures, how many pushed the trash on (the potential rose ``PUSHED_ON`` over its start at some step: at a constant
reach term, about 29 mm of the trash toward the dustpan), how many ended below their start (the pusher left the
trash), and how many never brought the TCP down to pushing height. Why: the shipped prior's sweep failures push the
trash part of the way and then lose it; DAgger (``vlac_trainer.offline.dagger.SweepLabeler``) aimed at that and did
not help (README, Models, "DAgger on the sweep").

Usage: python bench/prior_phases.py FOLDER [FOLDER ...]; prints a table, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from piper_driver.sim.demo_format import iter_episodes
from piper_driver.sim.experts import tcp_of
from piper_driver.sim.tasks.pick_bowl import CARRY_BAND, CARRY_SCALE_M, SUCCESS_RADIUS_M
from piper_driver.sim.tasks.sweep_expert import LOW_TCP_M

OPEN_FIELD = 6  # DeltaAction's ``open``, the last of ACTION_FIELDS
#: Upper edges (mm) of the first-open distance bins past the success radius; the last bin is open-ended.
FIRST_OPEN_EDGES_MM = (50.0, 70.0)
#: An episode is frozen when its last this many steps all carry the bowl without moving it.
FROZEN_STEPS = 10
#: sweep: a failure "pushed the trash on" when its potential rose this much over its start (sweep.truth).
PUSHED_ON = 0.05


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
    episodes = success = grasped = over_plate = drop_episodes = still_carry = frozen = 0
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
        still = [not np.any(record.actions[t][:3]) for t in range(record.length)]
        still_carry += sum(s and phases[t] == "carry" for t, s in enumerate(still))
        last = range(record.length - FROZEN_STEPS, record.length)
        frozen += record.length >= FROZEN_STEPS and all(still[t] and phases[t] == "carry" for t in last)
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
        "still_carry": round(still_carry / steps["carry"], 4) if steps["carry"] else None,
        "frozen_episodes": int(frozen),
    }


def sweep_stats(records) -> dict:
    """What a policy did with the trash (see the module docstring)."""
    episodes = 0
    first_success: list[int] = []
    pushed_on = left = never_low = push_steps = steps = 0
    for record in records:
        phases, potential = record.meta.get("phase"), record.meta.get("potential")
        if phases is None or potential is None:
            raise ValueError(f"episode {record.task} s{record.seed} ({record.variant}): no ground-truth phases")
        episodes += 1
        steps += record.length
        push_steps += sum(phase == "push" for phase in phases[: record.length])
        if record.success_steps.any():
            first_success.append(int(np.argmax(record.success_steps)))
            continue
        pushed_on += max(potential) >= potential[0] + PUSHED_ON
        left += potential[-1] < potential[0]
        never_low += min(tcp_of(pose)[2] for pose in record.end_poses) > LOW_TCP_M
    if not episodes:
        raise ValueError("no episodes")
    return {
        "episodes": episodes,
        "success": len(first_success),
        "first_success_step_median": float(np.median(first_success)) if first_success else None,
        "failures": episodes - len(first_success),
        "failures_pushed_on": int(pushed_on),
        "failures_ended_below_start": int(left),
        "failures_never_low": int(never_low),
        "push_phase_share": round(push_steps / steps, 4) if steps else None,
    }


def _print_sweep(folder: Path, stats: dict) -> None:
    print(
        f"{folder}: success {stats['success']}/{stats['episodes']} (median step {stats['first_success_step_median']}); "
        f"of {stats['failures']} failures, pushed the trash on {stats['failures_pushed_on']}, ended below their start "
        f"{stats['failures_ended_below_start']}, never down to pushing height {stats['failures_never_low']}"
    )


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
        if records and records[0].task == "sweep":
            results[str(folder)] = stats = sweep_stats(records)
            _print_sweep(folder, stats)
            continue
        stats = phase_stats(records)
        stats["first_open"] = first_open_bins(records)
        results[str(folder)] = stats
        print(
            f"{folder}: success {stats['success']}/{stats['episodes']}, grasped {stats['grasped']}, over the plate "
            f"{stats['over_plate']}, open over the plate {stats['open_over_plate']} of {stats['release_steps']} steps, "
            f"mid-carry {stats['open_mid_carry']} of {stats['carry_steps']} ({stats['drop_episodes']} episodes); "
            f"still in carry {stats['still_carry']}, frozen episodes {stats['frozen_episodes']}"
        )
        first = stats["first_open"]
        cells = ", ".join(f"{name} {b['succeeded']}/{b['opens']}" for name, b in first["bins"].items())
        print(f"  first open while holding, bowl to plate (succeeded/opens): {cells}; never {first['never_opened']}")
    print(json.dumps({"prior_phases": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
