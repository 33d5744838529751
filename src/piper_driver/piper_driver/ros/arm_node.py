"""The one lifecycle node of an arm, real or simulated: the ROS shell around a ``NodeArm``.

The parameter ``backend`` chooses what it drives (``piper_driver.node_arm``): ``sdk``, a PiPER over
CAN (its other parameters: ``DriverNodeConfig``), or ``sim``, the simulated arm and its cameras
(``SimNodeConfig``). The launch names it ``driver_node`` or ``sim_node`` after its backend, so the
session file's sections of those names apply. The rest of the stack cannot tell the two apart.

Transitions (as in ros2/demos lifecycle_py): configure opens the arm (the CAN bus and the arm's
feedback, or the scene rendered once; FAILURE, with the reason logged, when it cannot) and creates
the interfaces; activate enables the motors when ``auto_enable`` is set and starts publishing;
deactivate disables the motors; cleanup destroys the interfaces, then closes the arm.

Interfaces (piper_ros names where they exist):
  publishes  joint_states_single (sensor_msgs/JointState: joint1..joint6 rad, gripper m)
             end_pose (geometry_msgs/Pose, m), end_pose_stamped (PoseStamped, frame ``frame_id``)
             arm_status (diagnostic_msgs/DiagnosticStatus), /diagnostics (DiagnosticArray)
             sim: ``front_image_topic`` / ``wrist_image_topic`` (sensor_msgs/Image rgb8, sensor-data QoS)
  subscribes policy_action (vlac_msgs/PolicyAction), enable_flag (std_msgs/Bool)
  services   enable_srv (std_srvs/SetBool: true enables, false disables), emergency_stop, resume,
             start_state_id (std_srvs/Trigger; the id of the start state the last reset set up, for
             reset mode stored; a real arm keeps none and answers success=false)
  action     reset_arm (vlac_msgs/action/ResetArm; one goal at a time, not cancellable: use
             emergency_stop): mode home; sim also random (the scene of ``seed``) and stored (``state_id``)
Every action goes through the safety envelope; every refusal is logged and counted.

Everything that creates, renders or frees the arm runs on one owner thread (``RenderThread``) for the
node's whole life: an EGL context current on one thread cannot be used from another, and a
MultiThreadedExecutor runs a timer or a transition on whichever worker is free.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import Node, State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from piper_driver.diagnostics import diagnostic_report
from piper_driver.node_arm import ArmBackendChoice, NodeArm, node_arm_class
from piper_driver.robot import MotionRefused
from piper_driver.ros.render_thread import RenderThread, RenderThreadClosed
from piper_driver.ros_units import joint_state_values, pose_in_metres
from vlac_core.convert import ConversionError, end_pose_to_msg, policy_action_from_msg
from vlac_core.images import image_to_msg
from vlac_core.ros.diagnostics import DIAGNOSTICS_QOS, DIAGNOSTICS_TOPIC, publish_diagnostics
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.spin import run_node
from vlac_core.types import ValidationError
from vlac_msgs.action import ResetArm
from vlac_msgs.msg import PolicyAction

QOS_DEPTH = 10


class ArmNode(Node):
    """``backend`` (a parameter) picks the NodeArm and the config declared for it."""

    def __init__(self, node_name: str = "arm_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.arm_class = node_arm_class(declare_config(self, ArmBackendChoice).backend)
        self.config = declare_config(self, self.arm_class.config_type)
        self.msgs = rclpy_message_set()
        self.arm: NodeArm | None = None
        self._active = False
        self._owner = RenderThread(name=f"{node_name}_owner")
        self._arm_group = MutuallyExclusiveCallbackGroup()  # commands, timers: one at a time
        self._reset_group = ReentrantCallbackGroup()  # a reset blocks; it must not block the rest
        self._estop_group = MutuallyExclusiveCallbackGroup()  # never queued behind commands or a reset
        # What on_configure creates and on_cleanup destroys.
        self._owned_publishers: list = []
        self._owned_timers: list = []
        self._owned_subscriptions: list = []
        self._owned_services: list = []
        self._reset_server: ActionServer | None = None
        self.image_pubs: dict = {}

    def _ros_now_s(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    # --- lifecycle ---------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Open the arm (FAILURE, and back to unconfigured, when it cannot), then the interfaces."""
        try:
            arm = self._owner.call(lambda: self.arm_class(self.config, clock=self._ros_now_s))
        except (ConnectionError, RuntimeError, ValueError) as exc:  # RuntimeError: no headless GL backend
            self.get_logger().error(f"could not open the arm: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.arm = arm
        qos, group = QOS_DEPTH, self._arm_group
        self.joint_pub = self.create_lifecycle_publisher(JointState, "joint_states_single", qos)
        self.pose_pub = self.create_lifecycle_publisher(Pose, "end_pose", qos)
        self.pose_stamped_pub = self.create_lifecycle_publisher(PoseStamped, "end_pose_stamped", qos)
        self.status_pub = self.create_lifecycle_publisher(DiagnosticStatus, "arm_status", qos)
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS)
        self.image_pubs = {
            camera.name: self.create_lifecycle_publisher(Image, camera.topic, qos_profile_sensor_data)
            for camera in arm.cameras
        }
        self._owned_publishers = [self.joint_pub, self.pose_pub, self.pose_stamped_pub, self.status_pub, self.diag_pub]
        self._owned_publishers += self.image_pubs.values()
        self._owned_timers = [
            self.create_timer(1.0 / self.config.publish_rate_hz, self._publish_state, callback_group=group),
            self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics, callback_group=group),
            self.create_timer(arm.tick_period_s, self._tick, callback_group=group),
        ]
        if arm.cameras:
            self._owned_timers.append(
                self.create_timer(1.0 / arm.camera_rate_hz, self._publish_images, callback_group=group)
            )
        self._owned_subscriptions = [
            self.create_subscription(PolicyAction, "policy_action", self._on_policy_action, qos, callback_group=group),
            self.create_subscription(Bool, "enable_flag", self._on_enable_flag, qos, callback_group=group),
        ]
        self._owned_services = [
            self.create_service(SetBool, "enable_srv", self._on_enable_srv, callback_group=group),
            self.create_service(Trigger, "emergency_stop", self._on_estop, callback_group=self._estop_group),
            self.create_service(Trigger, "resume", self._on_resume, callback_group=group),
            self.create_service(Trigger, "start_state_id", self._on_start_state_id, callback_group=group),
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
        self.get_logger().info(arm.configured_message())
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

    def destroy_node(self) -> None:
        """Close the arm on its owner thread, end that thread, then the node."""
        self._release()
        self._owner.close()
        super().destroy_node()

    def _release(self) -> None:
        """Undo on_configure: interfaces first (no callback may reach a closed arm), then the arm."""
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
        self.image_pubs = {}
        arm, self.arm = self.arm, None
        if arm is not None and not self._owner.closed:
            self._owner.call(arm.close)  # frees a renderer on the thread that made it

    # --- clock and publishing ----------------------------------------------------------------

    def _tick(self) -> None:
        try:
            held = self._active and self.arm.tick()
        except (MotionRefused, ConnectionError) as exc:  # the link went between the check and the hold
            self.get_logger().error(f"watchdog could not hold the arm: {exc}", throttle_duration_sec=1.0)
            return
        if held:
            self.get_logger().warning(f"no command for {self.config.watchdog_timeout_s} s: holding the arm where it is")

    def _publish_state(self) -> None:
        if not self._active:
            return
        try:
            state = self.arm.safe_arm.observe()
        except ConnectionError:
            return  # no feedback yet; diagnostics say why
        stamp = Time(nanoseconds=int(self.arm.stamp_s(state, self._ros_now_s()) * 1e9)).to_msg()
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

    def _publish_images(self) -> None:
        arm, publishers = self.arm, self.image_pubs  # both as configured, even if a cleanup runs meanwhile
        if not self._active or arm is None:
            return
        stamp_s = self._ros_now_s()
        try:
            images = self._owner.call(arm.images)
        except RenderThreadClosed:
            return  # the node is being destroyed
        for camera in arm.cameras:
            msg = image_to_msg(images[camera.name], self.msgs, stamp_s=stamp_s, frame_id=camera.frame_id)
            publishers[camera.name].publish(msg)

    def _publish_diagnostics(self) -> None:
        what, hardware_id = self.arm.identity()
        report = diagnostic_report(self.arm.safe_arm.status(), extra=self.arm.diagnostics_extra())
        status = DiagnosticStatus(
            level=bytes([report.level]),
            name=f"{self.get_fully_qualified_name()}: {what}",
            message=report.message,
            hardware_id=hardware_id,
            values=[KeyValue(key=key, value=value) for key, value in report.values],
        )
        self.status_pub.publish(status)
        publish_diagnostics(self, self.diag_pub, status)

    # --- commands ----------------------------------------------------------------------------

    def _on_policy_action(self, msg: PolicyAction) -> None:
        if not self._active:
            self.get_logger().warning("policy_action ignored: node is not active", throttle_duration_sec=5.0)
            return
        try:
            action = policy_action_from_msg(msg)
            self.arm.safe_arm.execute(action.delta, obs_stamp_s=action.obs_stamp_s)
        except (ConversionError, ValidationError, ValueError) as exc:
            self.get_logger().error(f"policy_action rejected, malformed message: {exc}")
        except (MotionRefused, ConnectionError) as exc:
            self.get_logger().warning(f"policy_action refused: {exc}", throttle_duration_sec=1.0)

    def _enable(self, on: bool) -> str:
        """'' on success, else why not."""
        try:
            if on:
                self.arm.enable()
            else:
                self.arm.safe_arm.disable()
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
        self.arm.safe_arm.emergency_stop()
        response.success, response.message = True, self.arm.safe_arm.status().message
        self.get_logger().warning("emergency stop")
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            self.arm.safe_arm.resume()
        except (TimeoutError, MotionRefused, ConnectionError) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success, response.message = True, self.arm.safe_arm.status().message
        return response

    def _on_start_state_id(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        state_id = self.arm.start_state_id()
        response.success = state_id is not None
        response.message = state_id if state_id is not None else "this arm keeps no start states"
        return response

    # --- reset action ------------------------------------------------------------------------

    def _on_reset_goal(self, goal: ResetArm.Goal) -> GoalResponse:
        if not self._active or self.arm.safe_arm.homing or goal.mode not in self.arm.reset_modes:
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_reset(self, goal_handle) -> ResetArm.Result:
        goal_handle.publish_feedback(ResetArm.Feedback(fraction=0.0))
        goal = goal_handle.request
        outcome = self.arm.reset(goal.mode, seed=goal.seed, state_id=goal.state_id)
        result = ResetArm.Result(ok=outcome.ok, message=outcome.message)
        if not outcome.ok:
            self.get_logger().warning(outcome.message)
            goal_handle.abort()
            return result
        goal_handle.publish_feedback(ResetArm.Feedback(fraction=1.0))
        goal_handle.succeed()
        result.end_pose = end_pose_to_msg(outcome.end_pose, self.msgs)
        return result


def main(args: list[str] | None = None) -> None:
    run_node(ArmNode, args, threads=None, autostart_lifecycle=True)


if __name__ == "__main__":
    main()
