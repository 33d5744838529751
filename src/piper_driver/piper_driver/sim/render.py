"""RGB rendering of the scene's cameras (front, wrist) as HxWx3 uint8 arrays.

One ``mujoco.Renderer`` per image size; shadows and reflections are off in the scene so a
frame costs tens of milliseconds on one CPU core with Mesa's software rasteriser.

All GL work of a process (creating, rendering, freeing) runs under one lock, :data:`GL_LOCK`. Why: each
simulated arm has a GL context of its own on its own thread, and an embedded session evaluating on 10 arms
side by side (``session.eval_parallel``) had them render in lockstep; its process died with SIGSEGV inside
``mjr_readPixels``: 4 times in 55 minutes of sessions evaluating every 2 episodes, each time with 2 to 11
threads inside ``mjr_readPixels`` at once (Mesa's llvmpipe under EGL). The cause inside Mesa is not
established (11 arms rendering in lockstep with nothing else running did not crash in 120 s), but no crash
was seen without that overlap. A frame is ~8 ms and llvmpipe already spreads one frame over its own
threads, so serialising frames costs 20 % of the rendering throughput of 11 arms in lockstep (a few per
cent of a step; both figures: ``bench/render_lockstep.py``).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from piper_driver.sim.gl import RenderingUnavailable

MIN_IMAGE_SIZE_PX = 32
MAX_IMAGE_SIZE_PX = 640

#: Held around every GL call of this module: one GL context at work at a time in a process (module docstring).
GL_LOCK = threading.Lock()


def check_image_size(size_px: int, name: str = "image_size_px") -> int:
    if isinstance(size_px, bool) or not isinstance(size_px, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer number of pixels, got {size_px!r}")
    if not MIN_IMAGE_SIZE_PX <= size_px <= MAX_IMAGE_SIZE_PX:
        raise ValueError(f"{name}: expected {MIN_IMAGE_SIZE_PX}..{MAX_IMAGE_SIZE_PX} px, got {size_px}")
    return int(size_px)


class CameraRenderer:
    """Renders named cameras of one model at a fixed square size."""

    def __init__(self, model, size_px: int) -> None:
        import mujoco

        self.size_px = check_image_size(size_px)
        try:
            with GL_LOCK:
                self._renderer = mujoco.Renderer(model, self.size_px, self.size_px)
        except Exception as error:  # mujoco raises plain Exceptions from its GL context code
            raise RenderingUnavailable(
                f"MuJoCo could not open a {os.environ.get('MUJOCO_GL', '(default)')} GL context: {error}. "
                "Set MUJOCO_GL=egl (Mesa EGL) or MUJOCO_GL=osmesa (libosmesa6)."
            ) from error
        self._model = model

    def render(self, data, camera: str) -> np.ndarray:
        import mujoco

        if mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            raise ValueError(f"camera: no camera named {camera!r} in the scene")
        with GL_LOCK:
            self._renderer.update_scene(data, camera=camera)
            return np.ascontiguousarray(self._renderer.render(), dtype=np.uint8)

    def close(self) -> None:
        with GL_LOCK:
            self._renderer.close()
