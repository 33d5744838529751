"""PiPER kinematics in the SDK's own convention: DH table, forward kinematics, Jacobian, Euler angles.

The simulated arm must report the end pose a real PiPER reports, so the numbers here are
piper_sdk's ``C_PiperForwardKinematics`` (modified/Craig DH, with the firmware's 2 degree
offset on joints 2 and 3, ``dh_is_offset=0x01``) and its Euler convention (Z-Y-X:
``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``). The end pose is the flange frame (link 6), in mm
and degrees in the base frame. Both MuJoCo models (ours and Menagerie's) report their pose
through this module, so what the actor sees does not depend on the mesh set.
"""

from __future__ import annotations

import math

import numpy as np

#: Modified DH table of piper_sdk 0.6 (``dh_is_offset=0x01``): per joint i, the transform from
#: frame i-1 is RotX(alpha) TransX(a) RotZ(theta_offset + q_i) TransZ(d).
DH_A_MM = (0.0, 0.0, 285.03, -21.98, 0.0, 0.0)
DH_ALPHA_RAD = (0.0, -math.pi / 2, 0.0, math.pi / 2, -math.pi / 2, math.pi / 2)
DH_THETA_OFFSET_RAD = (0.0, -math.pi * 172.22 / 180, -102.78 / 180 * math.pi, 0.0, 0.0, 0.0)
DH_D_MM = (123.0, 0.0, 0.0, 250.75, 0.0, 91.0)

#: Hardware joint limits of the PiPER (PIPER_REFERENCE.md), radians.
JOINT_LIMITS_RAD = (
    (math.radians(-150.0), math.radians(150.0)),
    (0.0, math.radians(180.0)),
    (math.radians(-170.0), 0.0),
    (math.radians(-100.0), math.radians(100.0)),
    (math.radians(-70.0), math.radians(70.0)),
    (math.radians(-120.0), math.radians(120.0)),
)


def rot_x(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_deg_to_matrix(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """Rotation matrix of the PiPER's (roll, pitch, yaw): Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    return rot_z(math.radians(yaw_deg)) @ rot_y(math.radians(pitch_deg)) @ rot_x(math.radians(roll_deg))


def matrix_to_euler_deg(rotation: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in degrees, matching piper_sdk's ``__MatrixToeula`` including its gimbal cases."""
    r = rotation
    if r[2, 0] < -1 + 1e-4:
        return math.degrees(math.atan2(r[0, 1], r[1, 1])), 90.0, 0.0
    if r[2, 0] > 1 - 1e-4:
        return -math.degrees(math.atan2(r[0, 1], r[1, 1])), -90.0, 0.0
    pitch = math.atan2(-r[2, 0], math.hypot(r[0, 0], r[1, 0]))
    yaw = math.atan2(r[1, 0] / math.cos(pitch), r[0, 0] / math.cos(pitch))
    roll = math.atan2(r[2, 1] / math.cos(pitch), r[2, 2] / math.cos(pitch))
    return math.degrees(roll), math.degrees(pitch), math.degrees(yaw)


def dh_link_transform(i: int, q_rad: float) -> np.ndarray:
    """4x4 transform of frame i+1 in frame i (mm) for joint index i (0-based) at angle ``q_rad``."""
    transform = np.eye(4)
    transform[:3, :3] = rot_x(DH_ALPHA_RAD[i]) @ rot_z(DH_THETA_OFFSET_RAD[i] + q_rad)
    transform[:3, 3] = rot_x(DH_ALPHA_RAD[i]) @ np.array([DH_A_MM[i], 0.0, 0.0]) + rot_x(DH_ALPHA_RAD[i]) @ np.array(
        [0.0, 0.0, DH_D_MM[i]]
    )
    return transform


def joint_frames(joints_rad: np.ndarray | tuple[float, ...]) -> list[np.ndarray]:
    """World (base) transforms of frames 1..6 in mm; the last one is the flange."""
    q = np.asarray(joints_rad, dtype=np.float64)
    if q.shape != (6,) or not np.all(np.isfinite(q)):
        raise ValueError(f"joints_rad: expected 6 finite joint angles in radians, got {joints_rad!r}")
    frames = []
    current = np.eye(4)
    for i in range(6):
        current = current @ dh_link_transform(i, float(q[i]))
        frames.append(current)
    return frames


def flange_transform(joints_rad: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """4x4 base-frame transform of the flange (link 6), translation in mm."""
    return joint_frames(joints_rad)[-1]


def forward_kinematics(joints_rad: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """End pose [x_mm, y_mm, z_mm, roll_deg, pitch_deg, yaw_deg] as the PiPER reports it."""
    transform = flange_transform(joints_rad)
    return np.array([*transform[:3, 3], *matrix_to_euler_deg(transform[:3, :3])])


def geometric_jacobian(joints_rad: np.ndarray | tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(6x6 Jacobian [linear mm/rad; angular rad/rad] in the base frame, flange transform)."""
    frames = joint_frames(joints_rad)
    p_end = frames[-1][:3, 3]
    jac = np.zeros((6, 6))
    for i, frame in enumerate(frames):
        z_axis, origin = frame[:3, 2], frame[:3, 3]  # joint i rotates about z of frame i+1 (modified DH)
        jac[:3, i] = np.cross(z_axis, p_end - origin)
        jac[3:, i] = z_axis
    return jac, frames[-1]
