"""Headless OpenGL selection for MuJoCo rendering: EGL, then OSMesa, else a clear error.

MuJoCo reads ``MUJOCO_GL`` once, when ``mujoco`` is first imported, so the choice has to
be made before that import. A user's explicit ``MUJOCO_GL`` always wins. Otherwise each
backend is probed in a short subprocess (a failed GL initialisation can abort a process,
so it is not tried in ours) and the first that renders is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys

GL_BACKENDS = ("egl", "osmesa")

_PROBE = (
    "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); "
    "r = mujoco.Renderer(m, 8, 8); d = mujoco.MjData(m); r.update_scene(d); r.render()"
)


class RenderingUnavailable(RuntimeError):
    """No headless OpenGL backend works; the message says what was tried and how to fix it."""


def probe_backend(backend: str, timeout_s: float = 60.0) -> str | None:
    """None if ``backend`` renders in a fresh interpreter, else the reason it does not."""
    env = {**os.environ, "MUJOCO_GL": backend}
    if backend == "osmesa":
        env.setdefault("PYOPENGL_PLATFORM", "osmesa")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:.0f} s"
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def configure_headless_gl() -> str:
    """Set ``MUJOCO_GL`` to a working headless backend (before mujoco is imported) and return it."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        return chosen
    if "mujoco" in sys.modules:
        # Too late to choose: mujoco picked its backend at import. Rendering will say if it fails.
        return ""
    reasons = []
    for backend in GL_BACKENDS:
        reason = probe_backend(backend)
        if reason is None:
            os.environ["MUJOCO_GL"] = backend
            if backend == "osmesa":
                os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
            return backend
        reasons.append(f"{backend}: {reason}")
    raise RenderingUnavailable(
        "no headless OpenGL backend for MuJoCo works ("
        + "; ".join(reasons)
        + "). Install Mesa EGL (libegl1, libgl1-mesa-dri) or OSMesa (libosmesa6), or set MUJOCO_GL yourself."
    )
