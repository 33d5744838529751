"""Damped-least-squares inverse kinematics of the PiPER flange, within the joint limits.

Delta end-pose actions (the VLAC action) become joint position targets here. DLS rather
than an analytic solver because it degrades gracefully: near singularities or at a joint
limit it returns the closest reachable pose (and says it did not converge) instead of
jumping branches, which is what a position-controlled arm should do with a bad target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from piper_driver.sim.kinematics import JOINT_LIMITS_RAD, euler_deg_to_matrix, geometric_jacobian

_LOWER = np.array([lo for lo, _ in JOINT_LIMITS_RAD])
_UPPER = np.array([hi for _, hi in JOINT_LIMITS_RAD])


@dataclass(frozen=True)
class IkResult:
    joints_rad: np.ndarray
    converged: bool
    position_error_mm: float
    rotation_error_deg: float
    iterations: int


def rotation_error_vector(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Axis * angle (rad, base frame) that rotates ``current`` onto ``target``."""
    delta = target @ current.T
    cos_angle = np.clip((np.trace(delta) - 1.0) / 2.0, -1.0, 1.0)
    angle = math.acos(cos_angle)
    axis = np.array([delta[2, 1] - delta[1, 2], delta[0, 2] - delta[2, 0], delta[1, 0] - delta[0, 1]])
    norm = np.linalg.norm(axis)
    if angle < 1e-9:
        return np.zeros(3)
    if norm < 1e-9:  # angle ~ pi: axis from the symmetric part
        sym = (delta + np.eye(3)) / 2.0
        axis = sym[:, int(np.argmax(np.diag(sym)))]
        return axis / np.linalg.norm(axis) * angle
    return axis / norm * angle


def solve_ik(
    target_pose: np.ndarray,
    seed_joints_rad: np.ndarray,
    *,
    max_iterations: int = 60,
    damping: float = 0.02,
    tolerance_mm: float = 0.3,
    tolerance_deg: float = 0.3,
    max_step_rad: float = 0.3,
) -> IkResult:
    """Joints reaching ``target_pose`` [x_mm, y_mm, z_mm, roll_deg, pitch_deg, yaw_deg] from ``seed_joints_rad``.

    Position error is weighted in metres against rotation in radians (1 mm ~ 0.06 deg), which
    keeps both errors small for the tabletop scale of the PiPER.
    """
    target_pose = np.asarray(target_pose, dtype=np.float64)
    if target_pose.shape != (6,) or not np.all(np.isfinite(target_pose)):
        raise ValueError(f"target_pose: expected 6 finite numbers (mm, deg), got {target_pose!r}")
    target_pos_m = target_pose[:3] / 1000.0
    target_rot = euler_deg_to_matrix(*target_pose[3:])
    q = np.clip(np.asarray(seed_joints_rad, dtype=np.float64).copy(), _LOWER, _UPPER)
    pos_err_mm = rot_err_deg = float("inf")
    for iteration in range(1, max_iterations + 1):
        jac, flange = geometric_jacobian(q)
        jac[:3] /= 1000.0  # mm/rad -> m/rad
        rotation_error = rotation_error_vector(target_rot, flange[:3, :3])
        error = np.concatenate([target_pos_m - flange[:3, 3] / 1000.0, rotation_error])
        pos_err_mm = float(np.linalg.norm(error[:3]) * 1000.0)
        rot_err_deg = float(math.degrees(np.linalg.norm(error[3:])))
        if pos_err_mm < tolerance_mm and rot_err_deg < tolerance_deg:
            return IkResult(q, True, pos_err_mm, rot_err_deg, iteration)
        dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), error)
        largest = float(np.max(np.abs(dq)))
        if largest > max_step_rad:
            dq *= max_step_rad / largest
        q = np.clip(q + dq, _LOWER, _UPPER)
    return IkResult(q, False, pos_err_mm, rot_err_deg, max_iterations)
