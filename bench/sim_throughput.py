"""Simulation throughput: steps per second of the MuJoCo PiPER (physics for one control period + render).

One step = one VLAC action: the scripted expert's DeltaAction is executed (IK + 0.2 s of physics)
and the front camera is rendered, as in data collection and embedded RL sessions. Episodes are
reset (untimed) when the expert finishes. Prints a human-readable line per size and, as its last
line, one JSON object. Usage: MUJOCO_GL=egl python bench/sim_throughput.py [--steps 150] [--sizes 128 224]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def measure(task: str, size_px: int, steps: int, wrist: bool) -> dict:
    from piper_driver.sim.backend import SimBackend, SimConfig
    from piper_driver.sim.tasks import make_expert, make_task

    backend = SimBackend(make_task(task), SimConfig(image_size_px=size_px, wrist_camera=wrist))
    backend.connect()
    seed = 0

    def new_episode():
        nonlocal seed
        seed += 1
        backend.reset(seed)
        backend.enable()
        return make_expert(task, "expert", np.random.default_rng(seed), noise_mm=1.0, noise_deg=0.5)

    expert = new_episode()
    backend.images()  # first render opens the GL context: not part of the steady state
    physics_s = render_s = 0.0
    done = 0
    while done < steps:
        action = expert.act(backend.observe(), backend.describe())
        if action is None:
            expert = new_episode()
            continue
        t0 = time.perf_counter()
        backend.execute(action)
        t1 = time.perf_counter()
        backend.images()
        t2 = time.perf_counter()
        physics_s += t1 - t0
        render_s += t2 - t1
        done += 1
    total = physics_s + render_s
    return {
        "size_px": size_px,
        "steps": steps,
        "steps_per_s": steps / total,
        "physics_ms_per_step": 1000 * physics_s / steps,
        "render_ms_per_step": 1000 * render_s / steps,
        "realtime_factor": steps * backend.config.control_period_s / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick_bowl")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--wrist", action="store_true", help="render the wrist camera too")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    results = []
    for size in args.sizes:
        result = measure(args.task, size, args.steps, args.wrist)
        results.append(result)
        print(
            f"{size:>4} px: {result['steps_per_s']:.1f} steps/s "
            f"(physics {result['physics_ms_per_step']:.1f} ms, render {result['render_ms_per_step']:.1f} ms)"
        )
    import mujoco

    print(
        json.dumps(
            {
                "bench": "sim_throughput",
                "task": args.task,
                "control_period_s": 0.2,
                "cameras": 2 if args.wrist else 1,
                "mujoco": mujoco.__version__,
                "gl": os.environ.get("MUJOCO_GL"),
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
