"""Scene variation switches: lighting, table appearance, camera pose jitter.

They mirror the paper's transfer tests (the same task under other lighting, on another
table/scene). A variation is sampled from the episode seed, applied to the compiled model
at run time (no recompilation), and kept in snapshots so a restored state renders the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from piper_driver.sim.model import TABLE_MATERIALS

_DEFAULT_TABLE_RGBA = (0.62, 0.52, 0.40, 1.0)


@dataclass(frozen=True)
class VariationSwitches:
    """Which aspects of the scene a seed may change (all off: the canonical scene)."""

    lighting: bool = False
    table: bool = False
    camera: bool = False

    @classmethod
    def parse(cls, text: str) -> VariationSwitches:
        """From a comma list such as ``"lighting,table"``; ``""``/``"none"`` is none, ``"all"`` is all."""
        words = {w.strip().lower() for w in text.split(",") if w.strip()} - {"none"}
        if "all" in words:
            return cls(True, True, True)
        unknown = words - {"lighting", "table", "camera"}
        if unknown:
            raise ValueError(f"variation: unknown switch(es) {sorted(unknown)}; allowed: lighting, table, camera, all")
        return cls("lighting" in words, "table" in words, "camera" in words)


@dataclass(frozen=True)
class SceneVariation:
    """Concrete appearance of one episode's scene."""

    light_diffuse: float = 0.6  # key light intensity, 0..1 per channel
    light_dir: tuple[float, float, float] = (-0.3, -0.2, -1.0)
    ambient: float = 0.35  # headlight ambient
    table_material: int = 0  # index into model.TABLE_MATERIALS
    table_rgba: tuple[float, float, float, float] = _DEFAULT_TABLE_RGBA
    camera_offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_rotation_deg: tuple[float, float] = (0.0, 0.0)  # extra yaw, pitch of the front camera
    extras: dict = field(default_factory=dict)

    @classmethod
    def sample(cls, rng: np.random.Generator, switches: VariationSwitches) -> SceneVariation:
        kwargs: dict = {}
        if switches.lighting:
            kwargs["light_diffuse"] = float(rng.uniform(0.15, 1.0))
            kwargs["ambient"] = float(rng.uniform(0.1, 0.55))
            direction = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), -1.0])
            kwargs["light_dir"] = tuple(float(v) for v in direction)
        if switches.table:
            kwargs["table_material"] = int(rng.integers(len(TABLE_MATERIALS)))
            kwargs["table_rgba"] = (*(float(v) for v in rng.uniform(0.15, 0.95, size=3)), 1.0)
        if switches.camera:
            kwargs["camera_offset_m"] = tuple(float(v) for v in rng.uniform(-0.04, 0.04, size=3))
            kwargs["camera_rotation_deg"] = tuple(float(v) for v in rng.uniform(-4.0, 4.0, size=2))
        return cls(**kwargs)


class VariationApplier:
    """Remembers the model's canonical values and applies a ``SceneVariation`` on top of them."""

    def __init__(self, model) -> None:
        import mujoco

        self._model = model
        self._light = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_LIGHT, "key")
        self._table = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "table")
        self._camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "front")
        self._materials = tuple(
            mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, name) for name in TABLE_MATERIALS
        )
        self._camera_pos = model.cam_pos[self._camera].copy()
        self._camera_quat = model.cam_quat[self._camera].copy()

    def apply(self, variation: SceneVariation) -> None:
        import mujoco

        model = self._model
        model.light_diffuse[self._light] = variation.light_diffuse
        direction = np.asarray(variation.light_dir, dtype=np.float64)
        model.light_dir[self._light] = direction / np.linalg.norm(direction)
        model.vis.headlight.ambient[:] = variation.ambient
        material = self._materials[variation.table_material]
        model.geom_matid[self._table] = material
        model.mat_rgba[material] = variation.table_rgba
        model.cam_pos[self._camera] = self._camera_pos + np.asarray(variation.camera_offset_m)
        yaw_deg, pitch_deg = variation.camera_rotation_deg
        turn = np.zeros(4)
        # Yaw about world z, then pitch about the camera's own x axis.
        yaw_q = np.zeros(4)
        mujoco.mju_axisAngle2Quat(yaw_q, np.array([0.0, 0.0, 1.0]), np.radians(yaw_deg))
        pitch_q = np.zeros(4)
        mujoco.mju_axisAngle2Quat(pitch_q, np.array([1.0, 0.0, 0.0]), np.radians(pitch_deg))
        mujoco.mju_mulQuat(turn, yaw_q, self._camera_quat)
        result = np.zeros(4)
        mujoco.mju_mulQuat(result, turn, pitch_q)
        model.cam_quat[self._camera] = result
