"""Lifecycle node for one PiPER arm over CAN (the ROS shell around ``SafeArm(SdkBackend)``).

Transitions (as in ros2/demos lifecycle_py): configure opens the CAN bus and waits for the arm's
feedback (FAILURE, with the reason logged, when it is not there); activate enables the motors
when ``auto_enable`` is set and starts publishing; deactivate disables the motors; cleanup closes
the bus. Every action goes through the safety envelope; every refusal is logged and counted.

Interfaces (piper_ros names where they exist):
  publishes  joint_states_single (sensor_msgs/JointState: joint1..joint6 rad, gripper m)
             end_pose (geometry_msgs/Pose, m), end_pose_stamped (PoseStamped, frame ``frame_id``)
             arm_status (diagnostic_msgs/DiagnosticStatus), /diagnostics (DiagnosticArray)
  subscribes policy_action (vlac_msgs/PolicyAction), enable_flag (std_msgs/Bool)
  services   enable_srv (std_srvs/SetBool: true enables, false disables),
             emergency_stop, resume (std_srvs/Trigger)
  action     reset_arm (vlac_msgs/action/ResetArm; mode "home" only: a real arm has no scene to
             randomise; one goal at a time; a home move cannot be cancelled, use emergency_stop)
"""

from __future__ import annotations

import time

from rclpy.time import Time

from piper_driver.driver_config import DriverNodeConfig
from piper_driver.robot import MotionRefused
from piper_driver.ros.arm_node import ArmNode
from piper_driver.ros_units import to_ros_time_s
from piper_driver.safe_arm import SafeArm
from piper_driver.sdk_backend import SdkBackend
from vlac_core.ros.spin import run_node

_WATCHDOG_PERIOD_S = 0.05


class DriverNode(ArmNode):
    config_type = DriverNodeConfig

    def __init__(self, node_name: str = "piper_driver", **kwargs) -> None:
        super().__init__(node_name, **kwargs)

    def _open_arm(self) -> SafeArm | None:
        """Open the CAN bus and wait for the arm's feedback; None (logged) when it does not answer."""
        arm = SafeArm(SdkBackend(self.config.sdk_config()), self.config.safety_config(), clock=self._ros_now_s)
        try:
            arm.connect()
        except ConnectionError as exc:
            self.get_logger().error(str(exc))
            return None
        return arm

    def _close_arm(self) -> None:
        self.arm.disconnect()

    def _create_extras(self) -> None:
        self._owned_timers.append(self.create_timer(_WATCHDOG_PERIOD_S, self._watchdog, callback_group=self._arm_group))

    def _configured_message(self) -> str:
        return f"connected to the PiPER on {self.config.can_port}"

    def _enable_arm(self) -> None:
        self.arm.enable(self.config.enable_timeout_s)

    def _state_stamp(self, state):
        """The SDK stamps feedback on the monotonic clock: mapped onto the node's ROS clock."""
        stamp_s = to_ros_time_s(state.stamp_s, time.monotonic(), self._ros_now_s())
        return Time(nanoseconds=int(stamp_s * 1e9)).to_msg()

    def _diagnostic_identity(self) -> tuple[str, str, dict[str, object]]:
        port = self.config.can_port
        return f"PiPER on {port}", port, {"can_port": port}

    def _watchdog(self) -> None:
        try:
            held = self._active and self.arm.tick()
        except (MotionRefused, ConnectionError) as exc:  # the link went between the check and the hold
            self.get_logger().error(f"watchdog could not hold the arm: {exc}", throttle_duration_sec=1.0)
            return
        self._warn_if_held(held)

    def _accepts_reset(self, goal) -> bool:
        return goal.mode == "home"  # a real arm has no scene to randomise

    def _reset(self, goal):
        try:
            self.arm.home()
        except (TimeoutError, MotionRefused, ConnectionError) as exc:
            return False, str(exc), None
        return True, "home", self.arm.observe().end_pose


def main(args: list[str] | None = None) -> None:
    run_node(DriverNode, args, threads=None, autostart_lifecycle=True)


if __name__ == "__main__":
    main()
