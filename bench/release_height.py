"""Where letting go of the bowl places it: the scripted expert's pick_bowl plan with the release done from a
set height, centred over the plate; success per height over a set of scenes.

Why: the ground-truth phase "release" (piper_driver.sim.tasks.pick_bowl) labels the states where opening the
gripper places the bowl, which the open-decision teaching (vlac train actor, open_data) and the RL analyses
read; its height limit, RELEASE_MAX_DROP_M, comes from this measurement.

    MUJOCO_GL=egl python bench/release_height.py --scenes 12
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from piper_driver.safety import SafetyConfig
from piper_driver.sim.arm import SimArm, SnapshotStore
from piper_driver.sim.backend import SimConfig
from piper_driver.sim.experts import ScriptedExpert
from piper_driver.sim.rollout import rollout
from piper_driver.sim.tasks.pick_bowl import RELEASE_MAX_DROP_M
from piper_driver.sim.tasks.pick_bowl_expert import SET_DOWN_ABOVE_SURFACE_M, release_from_height_plan


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=12, help="scenes (seeds from --seed) per height")
    parser.add_argument("--seed", type=int, default=30000, help="first scene seed (held out of training data)")
    parser.add_argument(
        "--extra-heights-mm", type=float, nargs="+", default=[0, 10, 20, 30, 40, 50, 60, 80], help="above set-down"
    )
    args = parser.parse_args(argv)
    if args.scenes < 1:
        parser.error(f"--scenes must be >= 1, got {args.scenes}")
    arm = SimArm(
        "arm_0", "pick_bowl", SimConfig(image_size_px=64), SafetyConfig(), first_seed=0, snapshots=SnapshotStore(1)
    )
    start = time.monotonic()
    rows = []
    for extra_mm in args.extra_heights_mm:
        successes = 0
        for k in range(args.scenes):
            expert = ScriptedExpert(release_from_height_plan(extra_mm / 1000), np.random.default_rng(k))
            record = rollout(arm, expert, seed=args.seed + k, max_steps=120, render=False)
            successes += bool(record.success_steps[-1])
        drop_mm = round(extra_mm + SET_DOWN_ABOVE_SURFACE_M * 1000, 1)
        rows.append({"drop_mm": drop_mm, "successes": successes, "scenes": args.scenes})
        print(f"let go with the bowl's base {drop_mm} mm above the plate: {successes}/{args.scenes}", flush=True)
    print(
        json.dumps(
            {
                "bench": "release_height",
                "release_max_drop_mm": RELEASE_MAX_DROP_M * 1000,
                "rows": rows,
                "wall_s": round(time.monotonic() - start, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
