"""The arm's state in the units and layouts ROS messages use (no ROS import here).

ROS speaks SI: metres and quaternions, where the core speaks millimetres and degrees. The joint
names and the gripper's place in ``joint_states_single`` follow AgileX's piper_ros (joint1..joint6,
then ``gripper`` as an opening in metres), so tools written for it read ours.
"""

from __future__ import annotations

import math

from piper_driver.robot import ArmState
from vlac_core.types import EndPose

JOINT_NAMES = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6")
GRIPPER_JOINT = "gripper"


def joint_state_values(state: ArmState, gripper_exist: bool) -> tuple[list[str], list[float]]:
    """(names, positions): joints in rad, then the gripper opening in m when there is a gripper."""
    names, positions = list(JOINT_NAMES), [float(j) for j in state.joints_rad]
    if gripper_exist:
        names.append(GRIPPER_JOINT)
        positions.append(state.gripper_mm / 1000.0)
    return names, positions


def quaternion_from_rpy_deg(roll_deg: float, pitch_deg: float, yaw_deg: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of R = Rz(yaw) Ry(pitch) Rx(roll): the PiPER's RX RY RZ, as tf's quaternion_from_euler."""
    r, p, y = (math.radians(a) / 2.0 for a in (roll_deg, pitch_deg, yaw_deg))
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


def pose_in_metres(pose: EndPose) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
    """((x, y, z) in m, (qx, qy, qz, qw)) for geometry_msgs/Pose."""
    position = (pose.x_mm / 1000.0, pose.y_mm / 1000.0, pose.z_mm / 1000.0)
    return position, quaternion_from_rpy_deg(pose.roll_deg, pose.pitch_deg, pose.yaw_deg)


def to_ros_time_s(monotonic_stamp_s: float, monotonic_now_s: float, ros_now_s: float) -> float:
    """A monotonic-clock stamp (backends, camera) on the ROS clock, keeping its age.

    Backends stamp readings with ``time.monotonic`` (immune to clock jumps); message headers
    carry ROS time (wall or simulated), which is what other nodes compare against.
    """
    return ros_now_s - (monotonic_now_s - monotonic_stamp_s)
