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

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import Node, State, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from piper_driver.diagnostics import diagnostic_report
from piper_driver.driver_config import DriverNodeConfig
from piper_driver.robot import MotionRefused
from piper_driver.ros_units import joint_state_values, pose_in_metres, to_ros_time_s
from piper_driver.safe_arm import SafeArm
from piper_driver.sdk_backend import SdkBackend
from vlac_core.convert import ConversionError, end_pose_to_msg, policy_action_from_msg
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.spin import run_node
from vlac_core.types import ValidationError
from vlac_msgs.action import ResetArm
from vlac_msgs.msg import PolicyAction

_WATCHDOG_PERIOD_S = 0.05


class DriverNode(Node):
    def __init__(self, node_name: str = "piper_driver", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config: DriverNodeConfig = declare_config(self, DriverNodeConfig)
        self.msgs = rclpy_message_set()
        self.arm: SafeArm | None = None
        self._active = False
        self._arm_group = MutuallyExclusiveCallbackGroup()  # commands, timers: one at a time
        self._reset_group = ReentrantCallbackGroup()  # a home move blocks; it must not block the rest
        self._estop_group = MutuallyExclusiveCallbackGroup()  # never queued behind commands or a home move
        # What on_configure creates and on_cleanup destroys.
        self._owned_publishers: list = []
        self._owned_timers: list = []
        self._owned_subscriptions: list = []
        self._owned_services: list = []
        self._reset_server: ActionServer | None = None

    # --- the ROS clock -----------------------------------------------------------------------

    def _ros_now_s(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    def _ros_stamp(self, monotonic_stamp_s: float):
        stamp_s = to_ros_time_s(monotonic_stamp_s, time.monotonic(), self._ros_now_s())
        return Time(nanoseconds=int(stamp_s * 1e9)).to_msg()

    # --- lifecycle ---------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Open the CAN bus; FAILURE (and back to unconfigured) when the arm does not answer."""
        arm = SafeArm(SdkBackend(self.config.sdk_config()), self.config.safety_config(), clock=self._ros_now_s)
        try:
            arm.connect()
        except ConnectionError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        self.arm = arm
        qos, group = 10, self._arm_group
        self.joint_pub = self.create_lifecycle_publisher(JointState, "joint_states_single", qos)
        self.pose_pub = self.create_lifecycle_publisher(Pose, "end_pose", qos)
        self.pose_stamped_pub = self.create_lifecycle_publisher(PoseStamped, "end_pose_stamped", qos)
        self.status_pub = self.create_lifecycle_publisher(DiagnosticStatus, "arm_status", qos)
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", qos)
        self._owned_publishers = [self.joint_pub, self.pose_pub, self.pose_stamped_pub, self.status_pub, self.diag_pub]
        self._owned_timers = [
            self.create_timer(1.0 / self.config.publish_rate_hz, self._publish_state, callback_group=group),
            self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics, callback_group=group),
            self.create_timer(_WATCHDOG_PERIOD_S, self._watchdog, callback_group=group),
        ]
        self._owned_subscriptions = [
            self.create_subscription(PolicyAction, "policy_action", self._on_policy_action, qos, callback_group=group),
            self.create_subscription(Bool, "enable_flag", self._on_enable_flag, qos, callback_group=group),
        ]
        self._owned_services = [
            self.create_service(SetBool, "enable_srv", self._on_enable_srv, callback_group=group),
            self.create_service(Trigger, "emergency_stop", self._on_estop, callback_group=self._estop_group),
            self.create_service(Trigger, "resume", self._on_resume, callback_group=group),
        ]
        self._reset_server = ActionServer(
            self,
            ResetArm,
            "reset_arm",
            execute_callback=self._execute_reset,
            goal_callback=self._on_reset_goal,
            cancel_callback=lambda _goal: CancelResponse.REJECT,
            callback_group=self._reset_group,
        )
        self.get_logger().info(f"connected to the PiPER on {self.config.can_port}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        if self.config.auto_enable:
            error = self._enable(True)
            if error:
                self.get_logger().error(error)
                return TransitionCallbackReturn.FAILURE
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._active = False
        self._enable(False)
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        """Undo on_configure: interfaces first (no callback may reach a closed bus), then the bus."""
        self._active = False
        if self._reset_server is not None:
            self._reset_server.destroy()
            self._reset_server = None
        for timer in self._owned_timers:
            self.destroy_timer(timer)
        for subscription in self._owned_subscriptions:
            self.destroy_subscription(subscription)
        for service in self._owned_services:
            self.destroy_service(service)
        for publisher in self._owned_publishers:
            self.destroy_lifecycle_publisher(publisher)
        self._owned_timers, self._owned_subscriptions, self._owned_services, self._owned_publishers = [], [], [], []
        if self.arm is not None:
            self.arm.disconnect()
            self.arm = None

    # --- publishing --------------------------------------------------------------------------

    def _publish_state(self) -> None:
        if not self._active:
            return
        try:
            state = self.arm.observe()
        except ConnectionError:
            return  # no feedback yet; diagnostics say why
        stamp = self._ros_stamp(state.stamp_s)
        names, positions = joint_state_values(state, self.config.gripper_exist)
        joints = JointState(name=names, position=positions)
        joints.header.stamp = stamp
        self.joint_pub.publish(joints)
        (x, y, z), (qx, qy, qz, qw) = pose_in_metres(state.end_pose)
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = x, y, z
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = qx, qy, qz, qw
        self.pose_pub.publish(pose)
        stamped = PoseStamped(pose=pose)
        stamped.header.stamp, stamped.header.frame_id = stamp, self.config.frame_id
        self.pose_stamped_pub.publish(stamped)

    def _publish_diagnostics(self) -> None:
        report = diagnostic_report(self.arm.status(), extra={"can_port": self.config.can_port})
        status = DiagnosticStatus(
            level=bytes([report.level]),
            name=f"{self.get_fully_qualified_name()}: PiPER on {self.config.can_port}",
            message=report.message,
            hardware_id=self.config.can_port,
            values=[KeyValue(key=key, value=value) for key, value in report.values],
        )
        self.status_pub.publish(status)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def _watchdog(self) -> None:
        try:
            held = self._active and self.arm.tick()
        except (MotionRefused, ConnectionError) as exc:  # the link went between the check and the hold
            self.get_logger().error(f"watchdog could not hold the arm: {exc}", throttle_duration_sec=1.0)
            return
        if held:
            self.get_logger().warning(f"no command for {self.config.watchdog_timeout_s} s: holding the arm where it is")

    # --- commands ----------------------------------------------------------------------------

    def _on_policy_action(self, msg: PolicyAction) -> None:
        if not self._active:
            self.get_logger().warning("policy_action ignored: node is not active", throttle_duration_sec=5.0)
            return
        try:
            action = policy_action_from_msg(msg)
            self.arm.execute(action.delta, obs_stamp_s=action.obs_stamp_s)
        except (ConversionError, ValidationError, ValueError) as exc:
            self.get_logger().error(f"policy_action rejected, malformed message: {exc}")
        except (MotionRefused, ConnectionError) as exc:
            self.get_logger().warning(f"policy_action refused: {exc}", throttle_duration_sec=1.0)

    def _enable(self, on: bool) -> str:
        """'' on success, else why not."""
        try:
            if on:
                self.arm.enable(self.config.enable_timeout_s)
            else:
                self.arm.disable()
        except (TimeoutError, MotionRefused, ConnectionError) as exc:
            return str(exc)
        return ""

    def _on_enable_flag(self, msg: Bool) -> None:
        error = self._enable(bool(msg.data))
        if error:
            self.get_logger().error(error)

    def _on_enable_srv(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        error = self._enable(bool(request.data))
        response.success = not error
        response.message = error or ("enabled" if request.data else "disabled")
        return response

    def _on_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.arm.emergency_stop()
        response.success, response.message = True, self.arm.status().message
        self.get_logger().warning("emergency stop")
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            self.arm.resume()
        except (TimeoutError, MotionRefused, ConnectionError) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, self.arm.status().message
        return response

    # --- reset action ------------------------------------------------------------------------

    def _on_reset_goal(self, goal: ResetArm.Goal) -> GoalResponse:
        if not self._active or goal.mode != "home" or self.arm.homing:
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_reset(self, goal_handle) -> ResetArm.Result:
        result = ResetArm.Result()
        goal_handle.publish_feedback(ResetArm.Feedback(fraction=0.0))
        try:
            self.arm.home()
        except (TimeoutError, MotionRefused, ConnectionError) as exc:
            goal_handle.abort()
            result.ok, result.message = False, str(exc)
            return result
        goal_handle.publish_feedback(ResetArm.Feedback(fraction=1.0))
        goal_handle.succeed()
        result.ok, result.message = True, "home"
        result.end_pose = end_pose_to_msg(self.arm.observe().end_pose, self.msgs)
        return result


def main(args: list[str] | None = None) -> None:
    run_node(DriverNode, args, threads=None, autostart_lifecycle=True)


if __name__ == "__main__":
    main()
