"""Desktop sweep (paper appendix): push a piece of trash into the dustpan.

The dustpan is a dark floor patch with low walls on three sides, open toward the trash, so
the trash is pushed in along the table (no grasping: contacts and friction only). Success is
the trash's centre inside the dustpan's floor patch, resting on the table.
"""

from __future__ import annotations

import math

import numpy as np

from piper_driver.sim.model import TaskXml
from piper_driver.sim.tasks.base import SimTask, closeness
from vlac_core.types import TaskTruth

BIN_HALF_M = 0.06  # half side of the dustpan's floor patch
WALL_HEIGHT_M = 0.03
TRASH_HALF_M = (0.016, 0.016, 0.012)
#: Task-phase potential (``SweepTask.truth``): weights of the two shaping terms and their distances.
REACH_WEIGHT = 0.2  # TCP to the trash (horizontal), over REACH_SCALE_M
PUSH_WEIGHT = 0.6  # trash to the dustpan's centre (horizontal), over PUSH_SCALE_M
REACH_SCALE_M = 0.25
PUSH_SCALE_M = 0.35
#: The TCP counts as at the trash (phase ``push``) within this horizontal distance of its centre.
PUSH_CONTACT_M = 0.05


class SweepTask(SimTask):
    """Trash into the dustpan. Potential (``truth``): 1.0 at ``success`` (phase ``done``), else
    0.2 * closeness(TCP to trash, 0.25 m) + 0.6 * closeness(trash to dustpan centre, 0.35 m), at most
    0.8; phase ``push`` while the TCP is within 5 cm of the trash (horizontally), else ``reach``.
    """

    name = "sweep"
    text = "Sweep the trash into the dustpan"
    phases = ("reach", "push", "done")
    object_key = "trash_m"
    goal_key = "bin_m"

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def xml(self) -> TaskXml:
        contact = 'contype="1" conaffinity="3" friction="0.5 0.01 0.0001" condim="4"'
        h, w = BIN_HALF_M, WALL_HEIGHT_M / 2
        worldbody = f"""
    <body name="bin" mocap="true" pos="0.3 0.18 0">
      <geom name="bin_floor" type="box" size="{h} {h} 0.0008" pos="0 0 0.0008" material="bin_floor"
            contype="0" conaffinity="0"/>
      <geom name="bin_back" type="box" size="0.004 {h + 0.008} {w}" pos="{h + 0.004} 0 {w}" material="bin" {contact}/>
      <geom name="bin_left" type="box" size="{h} 0.004 {w}" pos="0 {h + 0.004} {w}" material="bin" {contact}/>
      <geom name="bin_right" type="box" size="{h} 0.004 {w}" pos="0 {-h - 0.004} {w}" material="bin" {contact}/>
    </body>
    <body name="trash" pos="0.3 -0.05 {TRASH_HALF_M[2]}">
      <freejoint name="trash_joint"/>
      <geom name="trash" type="box" size="{TRASH_HALF_M[0]} {TRASH_HALF_M[1]} {TRASH_HALF_M[2]}" material="trash"
            mass="0.03" {contact}/>
    </body>"""
        assets = """
    <material name="bin" rgba="0.20 0.55 0.30 1"/>
    <material name="bin_floor" rgba="0.12 0.30 0.16 1"/>
    <material name="trash" rgba="0.93 0.90 0.78 1"/>"""
        return TaskXml(worldbody=worldbody, assets=assets)

    def bind(self, model) -> None:
        import mujoco

        def find(kind, name):
            index = mujoco.mj_name2id(model, kind, name)
            if index < 0:
                raise ValueError(f"sweep: the scene has no {name!r}")
            return index

        body = mujoco.mjtObj.mjOBJ_BODY
        joint = find(mujoco.mjtObj.mjOBJ_JOINT, "trash_joint")
        self._ids = {
            "trash": find(body, "trash"),
            "tcp": find(mujoco.mjtObj.mjOBJ_SITE, "tcp"),
            "bin_mocap": int(model.body_mocapid[find(body, "bin")]),
            "trash_qpos": int(model.jnt_qposadr[joint]),
            "trash_dof": int(model.jnt_dofadr[joint]),
        }

    def reset(self, model, data, rng: np.random.Generator) -> None:
        side = 1.0 if rng.random() < 0.5 else -1.0
        bin_xy = np.array([rng.uniform(0.27, 0.34), side * rng.uniform(0.15, 0.21)])
        trash_xy = np.array([rng.uniform(0.23, 0.34), -side * rng.uniform(0.0, 0.08)])
        direction = bin_xy - trash_xy
        yaw = math.atan2(direction[1], direction[0])  # open side (local -x) faces the trash
        data.mocap_pos[self._ids["bin_mocap"]] = (*bin_xy, 0.0)
        data.mocap_quat[self._ids["bin_mocap"]] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        trash_yaw = rng.uniform(-math.pi, math.pi)
        adr = self._ids["trash_qpos"]
        data.qpos[adr : adr + 3] = (*trash_xy, TRASH_HALF_M[2])
        data.qpos[adr + 3 : adr + 7] = (math.cos(trash_yaw / 2), 0.0, 0.0, math.sin(trash_yaw / 2))
        data.qvel[self._ids["trash_dof"] : self._ids["trash_dof"] + 6] = 0.0

    def _bin_frame(self, data) -> tuple[np.ndarray, float]:
        quat = data.mocap_quat[self._ids["bin_mocap"]]
        yaw = 2.0 * math.atan2(quat[3], quat[0])
        return data.mocap_pos[self._ids["bin_mocap"]].copy(), yaw

    def trash_in_bin_frame(self, data) -> np.ndarray:
        """Trash centre in the dustpan's frame (x toward the back wall), metres."""
        centre, yaw = self._bin_frame(data)
        offset = data.xpos[self._ids["trash"]] - centre
        c, s = math.cos(yaw), math.sin(yaw)
        return np.array([c * offset[0] + s * offset[1], -s * offset[0] + c * offset[1], offset[2]])

    def success(self, model, data) -> bool:
        local = self.trash_in_bin_frame(data)
        return bool(abs(local[0]) < BIN_HALF_M and abs(local[1]) < BIN_HALF_M and local[2] < 0.03)

    def truth(self, model, data) -> TaskTruth:
        if self.success(model, data):
            return TaskTruth(1.0, True, "done")
        trash, tcp = data.xpos[self._ids["trash"]], data.site_xpos[self._ids["tcp"]]
        centre, _ = self._bin_frame(data)
        reach_m = math.hypot(tcp[0] - trash[0], tcp[1] - trash[1])
        push_m = math.hypot(trash[0] - centre[0], trash[1] - centre[1])
        potential = REACH_WEIGHT * closeness(reach_m, REACH_SCALE_M) + PUSH_WEIGHT * closeness(push_m, PUSH_SCALE_M)
        return TaskTruth(potential, False, "push" if reach_m <= PUSH_CONTACT_M else "reach")

    def describe(self, model, data) -> dict:
        centre, yaw = self._bin_frame(data)
        return {
            "trash_m": data.xpos[self._ids["trash"]].copy(),
            "bin_m": centre,
            "bin_dir": np.array([math.cos(yaw), math.sin(yaw)]),
            "trash_in_bin_m": self.trash_in_bin_frame(data),
        }
