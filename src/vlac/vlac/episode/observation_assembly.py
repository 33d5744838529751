"""An Observation from the latest topic values of a driver/sim node and a camera (no ROS types).

The episode manager node keeps the newest front image, end pose (geometry_msgs/PoseStamped: metres
and a quaternion) and joint state (joint1..6 in rad, then ``gripper`` opening in m, as piper_ros
publishes it) and hands their numbers here. ``observation`` refuses a front image older than
``max_image_age_s`` (the arm would act on the past) and anything not yet received, naming what is
missing, so a dead camera aborts the episode instead of replaying a frozen frame.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

from piper_driver.robot import RobotBackend
from vlac_core.types import EndPose, Observation, check_image


class ObservationUnavailable(RuntimeError):
    """A topic the observation needs has not been received (or is too old); the message names it."""


def rpy_deg_from_quaternion(qx: float, qy: float, qz: float, qw: float) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in degrees of R = Rz(yaw) Ry(pitch) Rx(roll): inverse of the driver's quaternion."""
    norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if not norm > 0 or not math.isfinite(norm):
        raise ValueError(f"quaternion ({qx}, {qy}, {qz}, {qw}): not a rotation")
    qx, qy, qz, qw = qx / norm, qy / norm, qz / norm, qw / norm
    roll = math.atan2(2 * (qw * qx + qy * qz), 1 - 2 * (qx * qx + qy * qy))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (qw * qy - qz * qx))))
    yaw = math.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
    return math.degrees(roll), math.degrees(pitch), math.degrees(yaw)


def end_pose_from_ros(position_m: Sequence[float], quaternion_xyzw: Sequence[float]) -> EndPose:
    """geometry_msgs/Pose numbers -> EndPose in mm and degrees."""
    x, y, z = (float(v) * 1000.0 for v in position_m)
    return EndPose(x, y, z, *rpy_deg_from_quaternion(*quaternion_xyzw))


class ObservationAssembler:
    """Latest values per topic; thread-safe (subscription callbacks write, the episode thread reads)."""

    def __init__(self, robot_id: str, task: str, max_image_age_s: float = 1.0) -> None:
        self.robot_id = robot_id
        self.task = task
        self.max_image_age_s = max_image_age_s
        self._lock = threading.Lock()
        self._image: tuple[np.ndarray, float] | None = None
        self._pose: EndPose | None = None
        self._joints: tuple[tuple[float, ...], float] | None = None
        self._seq = 0
        self.ground_truth_success: bool | None = None

    def on_image(self, image: np.ndarray, stamp_s: float) -> None:
        check_image(image, "front image")
        with self._lock:
            self._image = (image, float(stamp_s))

    def on_pose(self, position_m: Sequence[float], quaternion_xyzw: Sequence[float]) -> None:
        pose = end_pose_from_ros(position_m, quaternion_xyzw)
        with self._lock:
            self._pose = pose

    def on_joints(self, names: Sequence[str], positions: Sequence[float]) -> None:
        values = dict(zip(names, (float(p) for p in positions), strict=True))
        joints = tuple(values.get(f"joint{i}", 0.0) for i in range(1, 7))
        gripper_mm = values.get("gripper", 0.0) * 1000.0
        with self._lock:
            self._joints = (joints, gripper_mm)

    def on_status_value(self, key: str, value: str) -> None:
        """A diagnostic key/value of the arm (the sim node reports ``ground_truth_success``)."""
        if key == "ground_truth_success":
            with self._lock:
                self.ground_truth_success = value.strip().lower() == "true"

    def reset_seq(self) -> None:
        with self._lock:
            self._seq = 0

    def latest_image_stamp_s(self) -> float | None:
        with self._lock:
            return None if self._image is None else self._image[1]

    def observation(self, now_s: float) -> Observation:
        with self._lock:
            missing = [
                name
                for name, v in (("front image", self._image), ("end pose", self._pose), ("joint state", self._joints))
                if v is None
            ]
            if missing:
                raise ObservationUnavailable(f"{self.robot_id}: no {', '.join(missing)} received yet")
            image, stamp_s = self._image
            age_s = now_s - stamp_s
            if age_s > self.max_image_age_s:
                raise ObservationUnavailable(
                    f"{self.robot_id}: the newest front image is {age_s:.2f} s old (limit {self.max_image_age_s} s)"
                )
            joints, gripper_mm = self._joints
            self._seq += 1
            return Observation(
                robot_id=self.robot_id,
                task=self.task,
                images=(image,),
                end_pose=self._pose,
                gripper_open=gripper_mm >= RobotBackend.GRIPPER_OPEN_THRESHOLD_MM,
                gripper_mm=gripper_mm,
                joints_rad=joints,
                stamp_s=stamp_s,
                seq=self._seq,
            )
