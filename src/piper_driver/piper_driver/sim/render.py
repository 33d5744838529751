"""RGB rendering of the scene's cameras (front, wrist) as HxWx3 uint8 arrays.

One ``mujoco.Renderer`` per image size; shadows and reflections are off in the scene so a
frame costs tens of milliseconds on one CPU core with Mesa's software rasteriser.
"""

from __future__ import annotations

import os

import numpy as np

from piper_driver.sim.gl import RenderingUnavailable

MIN_IMAGE_SIZE_PX = 32
MAX_IMAGE_SIZE_PX = 640


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
        self._renderer.update_scene(data, camera=camera)
        return np.ascontiguousarray(self._renderer.render(), dtype=np.uint8)

    def close(self) -> None:
        self._renderer.close()
