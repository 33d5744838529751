"""Rendering of K simulated arms in lockstep, each on a thread of its own, with and without the GL lock.

Why: an embedded session evaluating on K arms side by side (``session.eval_parallel``) has every arm
render at the same moment (their actor and critic answers come back in one batch). Concurrent GL reads
of several contexts were present in every crash of such sessions, so ``piper_driver.sim.render.GL_LOCK``
serialises all GL work of a process. This measures what the lock costs: frames per second of K arms, a
barrier before every frame (as batched steps line them up), first with the lock, then with it swapped
for a no-op (the unlocked way the crashes happened; a crash here shows as a signal exit).

Each arm is built, renders and is closed on its own thread (its GL context lives there), as the
session's evaluation arms are. Prints a line per mode and, as its last line, one JSON object.
Usage: MUJOCO_GL=egl python bench/render_lockstep.py [--arms 11] [--seconds 30] [--size 64]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def measure(arms: int, seconds: float, size_px: int, locked: bool) -> dict:
    from piper_driver.sim import render
    from piper_driver.sim.backend import SimBackend, SimConfig
    from piper_driver.sim.tasks import make_task

    threads = [ThreadPoolExecutor(1, thread_name_prefix=f"arm{k}") for k in range(arms)]
    backends = [
        t.submit(SimBackend, make_task("pick_bowl"), SimConfig(image_size_px=size_px)).result() for t in threads
    ]
    for thread, backend, k in zip(threads, backends, range(arms), strict=True):
        thread.submit(backend.connect).result()
        thread.submit(backend.reset, k).result()
        thread.submit(backend.images).result()  # first frame opens the GL context: not timed
    end = None
    stop = threading.Event()

    def due() -> None:  # the barrier's action: one decision per round, so every arm leaves together
        if time.monotonic() > end:
            stop.set()

    barrier = threading.Barrier(arms, action=due)
    frames = [0] * arms

    def run(k: int, backend) -> None:
        while True:
            barrier.wait()
            if stop.is_set():
                return
            backend.images()
            frames[k] += 1

    saved = render.GL_LOCK
    if not locked:
        render.GL_LOCK = contextlib.nullcontext()
    try:
        started = time.monotonic()
        end = started + seconds
        for future in [t.submit(run, k, b) for k, (t, b) in enumerate(zip(threads, backends, strict=True))]:
            future.result()
        wall_s = time.monotonic() - started
    finally:
        render.GL_LOCK = saved
        for thread, backend in zip(threads, backends, strict=True):
            thread.submit(backend.disconnect).result()
            thread.shutdown()
    total = sum(frames)
    return {"locked": locked, "frames": total, "wall_s": round(wall_s, 2), "frames_per_s": round(total / wall_s, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arms", type=int, default=11, help="arms rendering in lockstep (a session: 10 eval + 1 training)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per mode")
    p.add_argument("--size", type=int, default=64, help="image size in pixels (the experiment's: 64)")
    args = p.parse_args()
    if args.arms < 1 or args.seconds <= 0:
        p.error("--arms must be >= 1 and --seconds > 0")
    results = []
    for locked in (True, False):
        r = measure(args.arms, args.seconds, args.size, locked)
        mode = "with" if locked else "without"
        print(f"{mode} GL_LOCK: {r['frames_per_s']} frames/s ({r['frames']} in {r['wall_s']} s)", flush=True)
        results.append(r)
    print(
        json.dumps(
            {
                "bench": "render_lockstep",
                "arms": args.arms,
                "size_px": args.size,
                "seconds_per_mode": args.seconds,
                "mujoco_gl": os.environ.get("MUJOCO_GL"),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "modes": results,
                "locked_over_unlocked": round(results[0]["frames_per_s"] / results[1]["frames_per_s"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
