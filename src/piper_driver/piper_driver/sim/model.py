"""The MuJoCo scene: the project's own PiPER model, a table, cameras, lights and a task's objects.

Our PiPER is built from primitive geometry (capsules, cylinders, boxes) on piper_sdk's DH
table, so each link body's frame *is* the SDK's DH frame and the joint angles mean what the
real arm's encoders mean (same zero, same limits). Only the gripper and the wrist collide:
the upper links are visual, which keeps contacts cheap and avoids arm-table snags that a
coarse primitive model would invent. Links are gravity-compensated, as the real arm's
controller is, so position tracking does not sag.

``MENAGERIE_ENV`` names a folder holding MuJoCo Menagerie's ``agilex_piper`` model; when it
is set the arm is loaded from there instead (meshes, its own inertias) and attached to the same
scene. That path is only lightly exercised here (the Menagerie model is not available on the
project's CI machines; the test attaches our own arm written out as a stand-in file): it relies on
Menagerie's joint names joint1..joint8, body ``link6`` and position actuators on those joints.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from piper_driver.sim.kinematics import (
    DH_A_MM,
    DH_ALPHA_RAD,
    DH_D_MM,
    DH_THETA_OFFSET_RAD,
    JOINT_LIMITS_RAD,
    rot_x,
    rot_z,
)

#: Environment variable naming a folder with Menagerie's ``agilex_piper`` (holding ``piper.xml``).
MENAGERIE_ENV = "VLAC_PIPER_MENAGERIE_DIR"

#: Each finger slides 0..35 mm, so the opening is 0..70 mm (the real PiPER's stroke is ~0-80 mm).
FINGER_TRAVEL_M = 0.035
#: Flange (link 6 origin) to the point between the fingertips, along the flange's z axis.
TCP_OFFSET_M = 0.118
#: Physics time step; 100 steps make the default 0.2 s control period.
TIMESTEP_S = 0.002

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 7))
FINGER_JOINTS = ("joint7", "joint8")

# Contact bits: the arm (bit 2) touches objects and table (bit 1) but never itself.
_ARM_CONTACT = 'contype="2" conaffinity="1"'
_OBJECT_CONTACT = 'contype="1" conaffinity="3"'
_KP = (400, 400, 300, 120, 120, 60)


@dataclass(frozen=True)
class TaskXml:
    """What a task adds to the scene: bodies in the world body, assets, equality constraints."""

    worldbody: str = ""
    assets: str = ""
    equality: str = ""


def _fmt(values: np.ndarray | tuple[float, ...]) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _matrix_to_quat(rotation: np.ndarray) -> np.ndarray:
    import mujoco

    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.asarray(rotation, dtype=np.float64).reshape(9))
    return quat


def look_at_xyaxes(eye: np.ndarray, target: np.ndarray) -> str:
    """MJCF ``xyaxes`` of a camera at ``eye`` looking at ``target`` with world z up."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return _fmt(np.concatenate([right, up]))


#: Front camera: in front of the arm, looking back at the workspace (the paper's third-person view).
FRONT_CAMERA_EYE_M = np.array([0.88, -0.42, 0.72])
FRONT_CAMERA_TARGET_M = np.array([0.24, 0.0, 0.1])


def _link_child_offset_m(i: int) -> np.ndarray:
    """Origin of DH frame i+1 in frame i, metres (the offset part of the link transform)."""
    alpha = DH_ALPHA_RAD[i]
    return (np.array([DH_A_MM[i], 0.0, 0.0]) + rot_x(alpha) @ np.array([0.0, 0.0, DH_D_MM[i]])) / 1000.0


def _link_quat(i: int) -> np.ndarray:
    return _matrix_to_quat(rot_x(DH_ALPHA_RAD[i]) @ rot_z(DH_THETA_OFFSET_RAD[i]))


_LINK_RADIUS_M = (0.04, 0.032, 0.028, 0.026, 0.024, 0.022)


def _gripper_xml() -> str:
    """Palm and two fingers sliding along the flange's x axis, plus the TCP site and wrist camera."""
    travel = FINGER_TRAVEL_M
    finger = (
        '<geom type="box" size="0.005 0.011 0.027" pos="{x} 0 0.091" material="finger" '
        f'{_ARM_CONTACT} friction="1.5 0.02 0.001" condim="4" mass="0.03"/>'
    )
    return f"""
        <geom name="flange" type="cylinder" size="0.032 0.01" pos="0 0 0.01" material="joint"
              contype="0" conaffinity="0"/>
        <geom name="palm" type="box" size="0.046 0.022 0.022" pos="0 0 0.042" material="arm" {_ARM_CONTACT} mass="0.2"/>
        <site name="tcp" pos="0 0 {TCP_OFFSET_M}" size="0.004" rgba="1 0 0 0" group="4"/>
        <camera name="wrist" pos="0.0 -0.055 0.035" xyaxes="-1 0 0 0 1 -0.35" fovy="75"/>
        <body name="link7" pos="0 0 0">
          <joint name="joint7" type="slide" axis="1 0 0" range="0 {travel}" armature="0.01" damping="2"/>
          {finger.format(x=0.006)}
        </body>
        <body name="link8" pos="0 0 0">
          <joint name="joint8" type="slide" axis="-1 0 0" range="0 {travel}" armature="0.01" damping="2"/>
          {finger.format(x=-0.006)}
        </body>"""


def own_arm_xml() -> str:
    """The PiPER kinematic chain: one body per DH frame, so MuJoCo's link6 pose equals the SDK's FK."""
    base = """
    <body name="base_link" pos="0 0 0">
      <geom type="cylinder" size="0.05 0.05" pos="0 0 0.05" material="arm" contype="0" conaffinity="0"/>"""
    closing = ["    </body>"]
    body_xml = [base]
    indent = "      "
    for i in range(6):
        offset_parent = _link_child_offset_m(i)
        lo, hi = JOINT_LIMITS_RAD[i]
        child_offset = _link_child_offset_m(i + 1) if i < 5 else np.zeros(3)
        geoms = [
            f'<geom type="cylinder" size="{_LINK_RADIUS_M[i]} {_LINK_RADIUS_M[i] * 0.9:.4f}" material="joint" '
            'contype="0" conaffinity="0" mass="0.2"/>'
        ]
        if np.linalg.norm(child_offset) > 1e-6:
            geoms.append(
                f'<geom type="capsule" fromto="0 0 0 {_fmt(child_offset)}" size="{_LINK_RADIUS_M[i] * 0.8:.4f}" '
                'material="arm" contype="0" conaffinity="0" mass="0.4"/>'
            )
        extra = _gripper_xml() if i == 5 else ""
        body_xml.append(
            f'{indent}<body name="link{i + 1}" pos="{_fmt(offset_parent)}" quat="{_fmt(_link_quat(i))}" gravcomp="1">\n'
            f'{indent}  <joint name="joint{i + 1}" axis="0 0 1" range="{lo:.6f} {hi:.6f}" '
            'armature="0.05" damping="1"/>\n' + "".join(f"{indent}  {g}\n" for g in geoms) + extra
        )
        closing.insert(0, f"{indent}</body>")
        indent += "  "
    return "\n".join(body_xml) + "\n" + "\n".join(closing)


def actuators_xml() -> str:
    lines = []
    for i, kp in enumerate(_KP):
        lo, hi = JOINT_LIMITS_RAD[i]
        lines.append(
            f'<position name="act{i + 1}" joint="joint{i + 1}" kp="{kp}" dampratio="1" ctrlrange="{lo:.6f} {hi:.6f}"/>'
        )
    for name in FINGER_JOINTS:
        lines.append(
            f'<position name="act_{name}" joint="{name}" kp="300" dampratio="1" ctrlrange="0 {FINGER_TRAVEL_M}" '
            'forcerange="-25 25"/>'
        )
    return "\n    ".join(lines)


_ASSETS = """
    <texture name="tex_checker" type="2d" builtin="checker" width="256" height="256"
             rgb1="1 1 1" rgb2="0.75 0.75 0.75"/>
    <texture name="tex_grain" type="2d" builtin="gradient" width="256" height="256" rgb1="1 1 1" rgb2="0.7 0.7 0.7"/>
    <texture name="tex_noise" type="2d" builtin="flat" mark="random" random="0.08" width="256" height="256"
             rgb1="1 1 1" markrgb="0.8 0.8 0.8"/>
    <material name="table_plain" rgba="0.62 0.52 0.40 1"/>
    <material name="table_checker" texture="tex_checker" texrepeat="8 8" rgba="0.62 0.52 0.40 1"/>
    <material name="table_grain" texture="tex_grain" texrepeat="1 6" rgba="0.62 0.52 0.40 1"/>
    <material name="table_noise" texture="tex_noise" texrepeat="4 4" rgba="0.62 0.52 0.40 1"/>
    <material name="wall" rgba="0.86 0.88 0.90 1"/>"""
#: Materials of our own arm (left out when a Menagerie arm brings its own, to avoid name clashes).
_ARM_ASSETS = """
    <material name="arm" rgba="0.78 0.78 0.80 1" specular="0.3"/>
    <material name="joint" rgba="0.12 0.12 0.13 1"/>
    <material name="finger" rgba="0.2 0.2 0.22 1"/>"""

#: Table materials a scene variation can pick from (index into this tuple).
TABLE_MATERIALS = ("table_plain", "table_checker", "table_grain", "table_noise")


def scene_xml(task: TaskXml, *, with_own_arm: bool = True) -> str:
    """Complete MJCF of the scene; without our arm when a Menagerie arm is attached afterwards."""
    arm = own_arm_xml() if with_own_arm else ""
    actuators = actuators_xml() if with_own_arm else ""
    arm_assets = _ARM_ASSETS if with_own_arm else ""
    return f"""<mujoco model="vlac_piper_scene">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP_S}" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <visual>
    <global offwidth="640" offheight="480"/>
    <quality shadowsize="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.3 0.3 0.3" specular="0 0 0"/>
  </visual>
  <asset>{_ASSETS}{arm_assets}
    {task.assets}
  </asset>
  <worldbody>
    <light name="key" directional="true" pos="0.4 0.3 1.5" dir="-0.3 -0.2 -1" diffuse="0.6 0.6 0.6" castshadow="false"/>
    <geom name="table" type="box" size="0.5 0.6 0.02" pos="0.3 0 -0.02" material="table_plain" {_OBJECT_CONTACT}
          friction="0.6 0.005 0.0001"/>
    <geom name="backdrop" type="box" size="0.02 3.0 1.5" pos="-0.35 0 0.75" material="wall"
          contype="0" conaffinity="0"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" rgba="0.35 0.36 0.38 1" contype="0" conaffinity="0"/>
    <camera name="front" pos="{_fmt(FRONT_CAMERA_EYE_M)}" fovy="50"
            xyaxes="{look_at_xyaxes(FRONT_CAMERA_EYE_M, FRONT_CAMERA_TARGET_M)}"/>
    {arm}
    {task.worldbody}
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
  <equality>
    {task.equality}
  </equality>
</mujoco>
"""


def menagerie_dir() -> Path | None:
    """The Menagerie ``agilex_piper`` folder named by ``VLAC_PIPER_MENAGERIE_DIR``, or None when unset."""
    value = os.environ.get(MENAGERIE_ENV, "").strip()
    if not value:
        return None
    path = Path(value)
    if not (path / "piper.xml").is_file():
        raise FileNotFoundError(f"{MENAGERIE_ENV}={value!r}: no piper.xml there (expected Menagerie's agilex_piper)")
    return path


def build_model(task: TaskXml, *, menagerie: Path | None = None):
    """Compile the scene to an ``mujoco.MjModel``; with ``menagerie`` the arm comes from that folder."""
    import mujoco

    if menagerie is None:
        return mujoco.MjModel.from_xml_string(scene_xml(task))
    # Menagerie arm: attach its base body to our scene and add what our backend needs (TCP, wrist camera).
    scene = mujoco.MjSpec.from_string(scene_xml(task, with_own_arm=False))
    arm = mujoco.MjSpec.from_file(str(menagerie / "piper.xml"))
    frame = scene.worldbody.add_frame()
    frame.attach_body(arm.worldbody.first_body(), "", "")
    link6 = scene.body("link6")
    link6.add_site(name="tcp", pos=[0, 0, TCP_OFFSET_M], size=[0.004, 0, 0])
    link6.add_camera(name="wrist", pos=[0.0, -0.055, 0.035], fovy=75.0)
    with warnings.catch_warnings():
        # Names are kept unprefixed on purpose (the backend finds joint1..joint8, link6 by name);
        # MuJoCo warns that such a model may not save back to XML, which we never do.
        warnings.filterwarnings("ignore", message="Attaching a spec with an empty prefix")
        return scene.compile()


def table_material_ids(model) -> tuple[int, ...]:
    import mujoco

    return tuple(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, name) for name in TABLE_MATERIALS)
