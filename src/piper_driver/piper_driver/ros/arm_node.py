"""The lifecycle shell shared by the real and the simulated arm node: one interface, two backends.

``DriverNode`` (SDK over CAN) and ``SimNode`` (MuJoCo) subclass ``ArmNode`` and supply only what
differs: how configure opens the arm, what else they publish, how a reset runs and what their
diagnostics name. Publishers, commands, services, the reset action, the safety wiring and the
lifecycle transitions (as in ros2/demos lifecycle_py: configure creates, cleanup destroys) live
here once, so the rest of the stack cannot tell a simulated arm from a real one.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import Node, State, TransitionCallbackReturn
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from piper_driver.diagnostics import diagnostic_report
from piper_driver.robot import MotionRefused
from piper_driver.ros_units import joint_state_values, pose_in_metres
from piper_driver.safe_arm import SafeArm
from vlac_core.convert import ConversionError, end_pose_to_msg, policy_action_from_msg
from vlac_core.ros.diagnostics import DIAGNOSTICS_QOS, DIAGNOSTICS_TOPIC, publish_diagnostics
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.types import ValidationError
from vlac_msgs.action import ResetArm
from vlac_msgs.msg import PolicyAction

QOS_DEPTH = 10


class ArmNode(Node):
    """Subclasses set ``config_type`` and implement the hooks below (``_open_arm`` ... ``_reset``)."""

    config_type: type

    def __init__(self, node_name: str, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config = declare_config(self, self.config_type)
        self.msgs = rclpy_message_set()
        self.arm: SafeArm | None = None
        self._active = False
        self._arm_group = MutuallyExclusiveCallbackGroup()  # commands, timers: one at a time
        self._reset_group = ReentrantCallbackGroup()  # a reset blocks; it must not block the rest
        self._estop_group = MutuallyExclusiveCallbackGroup()  # never queued behind commands or a reset
        # What on_configure creates and on_cleanup destroys.
        self._owned_publishers: list = []
        self._owned_timers: list = []
        self._owned_subscriptions: list = []
        self._owned_services: list = []
        self._reset_server: ActionServer | None = None

    def _ros_now_s(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    # --- hooks -------------------------------------------------------------------------------

    def _open_arm(self) -> SafeArm | None:
        """Connect the backend and return the arm, or log why not and return None (configure FAILURE)."""
        raise NotImplementedError

    def _close_arm(self) -> None:
        """Disconnect ``self.arm`` (on_configure's undo)."""
        raise NotImplementedError

    def _create_extras(self) -> None:
        """Backend-specific publishers, timers and services, appended to the ``_owned_*`` lists."""

    def _enable_arm(self) -> None:
        raise NotImplementedError

    def _state_stamp(self, state):
        """The header stamp of ``state``'s messages."""
        raise NotImplementedError

    def _diagnostic_identity(self) -> tuple[str, str, dict[str, object]]:
        """(what the status names, hardware_id, extra key/values)."""
        raise NotImplementedError

    def _accepts_reset(self, goal: ResetArm.Goal) -> bool:
        return True

    def _reset(self, goal: ResetArm.Goal):
        """Run the reset: (ok, message, end pose or None)."""
        raise NotImplementedError

    def _configured_message(self) -> str:
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Open the backend (FAILURE, and back to unconfigured, when it cannot), then the interfaces."""
        arm = self._open_arm()
        if arm is None:
            return TransitionCallbackReturn.FAILURE
        self.arm = arm
        qos, group = QOS_DEPTH, self._arm_group
        self.joint_pub = self.create_lifecycle_publisher(JointState, "joint_states_single", qos)
        self.pose_pub = self.create_lifecycle_publisher(Pose, "end_pose", qos)
        self.pose_stamped_pub = self.create_lifecycle_publisher(PoseStamped, "end_pose_stamped", qos)
        self.status_pub = self.create_lifecycle_publisher(DiagnosticStatus, "arm_status", qos)
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS)
        self._owned_publishers = [self.joint_pub, self.pose_pub, self.pose_stamped_pub, self.status_pub, self.diag_pub]
        self._owned_timers = [
            self.create_timer(1.0 / self.config.publish_rate_hz, self._publish_state, callback_group=group),
            self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics, callback_group=group),
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
        self._create_extras()
        self._reset_server = ActionServer(
            self,
            ResetArm,
            "reset_arm",
            execute_callback=self._execute_reset,
            goal_callback=self._on_reset_goal,
            cancel_callback=lambda _goal: CancelResponse.REJECT,
            callback_group=self._reset_group,
        )
        self.get_logger().info(self._configured_message())
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
        """Undo on_configure: interfaces first (no callback may reach a closed backend), then the arm."""
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
            self._close_arm()
            self.arm = None

    # --- publishing --------------------------------------------------------------------------

    def _publish_state(self) -> None:
        if not self._active:
            return
        try:
            state = self.arm.observe()
        except ConnectionError:
            return  # no feedback yet; diagnostics say why
        stamp = self._state_stamp(state)
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
        what, hardware_id, extra = self._diagnostic_identity()
        report = diagnostic_report(self.arm.status(), extra=extra)
        status = DiagnosticStatus(
            level=bytes([report.level]),
            name=f"{self.get_fully_qualified_name()}: {what}",
            message=report.message,
            hardware_id=hardware_id,
            values=[KeyValue(key=key, value=value) for key, value in report.values],
        )
        self.status_pub.publish(status)
        publish_diagnostics(self, self.diag_pub, status)

    def _warn_if_held(self, held: bool) -> None:
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
                self._enable_arm()
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
        if not self._active or self.arm.homing or not self._accepts_reset(goal):
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_reset(self, goal_handle) -> ResetArm.Result:
        goal_handle.publish_feedback(ResetArm.Feedback(fraction=0.0))
        ok, message, end_pose = self._reset(goal_handle.request)
        result = ResetArm.Result(ok=ok, message=message)
        if not ok:
            self.get_logger().warning(message)
            goal_handle.abort()
            return result
        goal_handle.publish_feedback(ResetArm.Feedback(fraction=1.0))
        goal_handle.succeed()
        result.end_pose = end_pose_to_msg(end_pose, self.msgs)
        return result
