"""Lifecycle node for one simulated PiPER and its cameras (the ROS shell around ``SimSession``).

It offers the driver node's interface, so the rest of the stack cannot tell a simulated arm
from a real one, plus the camera images the camera nodes would publish:
  publishes  joint_states_single, end_pose, end_pose_stamped, arm_status, /diagnostics (as the driver)
             ``front_image_topic`` / ``wrist_image_topic`` (sensor_msgs/Image rgb8, sensor-data QoS)
  subscribes policy_action (vlac_msgs/PolicyAction), enable_flag (std_msgs/Bool)
  services   enable_srv (std_srvs/SetBool), emergency_stop, resume (std_srvs/Trigger), and, only
             here, store_state (std_srvs/Trigger; the message is the id for reset mode "stored")
  action     reset_arm (vlac_msgs/action/ResetArm): mode home, random (new scene from ``seed``),
             stored (``state_id`` from store_state)
Simulated time advances on a wall-clock timer (``physics_tick_s`` every ``physics_tick_s /
realtime_factor`` s), so observations taken while an action runs see the arm moving. Headers
carry the node's ROS clock; every action goes through the safety envelope as on the real arm.
Transitions: configure builds the scene (FAILURE with the reason when MuJoCo cannot build or
render it), activate enables (``auto_enable``) and starts the clock, deactivate disables.

Rendering is owned by one thread for the node's whole life (``RenderThread``): the scene is
built, rendered and its GL context freed there, whichever executor thread runs the camera timer
or a transition, because an EGL context current on one thread cannot be used from another.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import Node, State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from piper_driver.diagnostics import diagnostic_report
from piper_driver.robot import MotionRefused
from piper_driver.ros.render_thread import RenderThread, RenderThreadClosed
from piper_driver.ros_units import joint_state_values, pose_in_metres
from piper_driver.sim.node_config import SimNodeConfig
from piper_driver.sim.session import SimSession
from vlac_core.convert import ConversionError, end_pose_to_msg, policy_action_from_msg
from vlac_core.images import image_to_msg
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.spin import run_node
from vlac_core.types import ValidationError
from vlac_msgs.action import ResetArm
from vlac_msgs.msg import PolicyAction


class SimNode(Node):
    def __init__(self, node_name: str = "piper_sim", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config: SimNodeConfig = declare_config(self, SimNodeConfig)
        self.msgs = rclpy_message_set()
        self.session: SimSession | None = None
        self._active = False
        self._arm_group = MutuallyExclusiveCallbackGroup()  # clock, commands, publishing: one at a time
        self._reset_group = ReentrantCallbackGroup()
        self._estop_group = MutuallyExclusiveCallbackGroup()  # never queued behind commands or a reset
        self._owned_publishers: list = []
        self._owned_timers: list = []
        self._owned_subscriptions: list = []
        self._owned_services: list = []
        self._reset_server: ActionServer | None = None
        self._render = RenderThread(name=f"{node_name}_render")

    def _ros_now_s(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    # --- lifecycle ---------------------------------------------------------------------------

    def _open_session(self) -> SimSession:
        """Build the scene and render it once (on the render thread): configure fails if either cannot."""
        session = SimSession(self.config, clock=self._ros_now_s)
        session.start()
        try:
            session.images()
        except BaseException:
            session.arm.disconnect()
            raise
        return session

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            session = self._render.call(self._open_session)
        except (ConnectionError, RuntimeError, ValueError) as exc:  # RuntimeError: no headless GL backend
            self.get_logger().error(f"could not build or render the {self.config.task!r} scene: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.session = session
        cfg, qos, group = self.config, 10, self._arm_group
        self.joint_pub = self.create_lifecycle_publisher(JointState, "joint_states_single", qos)
        self.pose_pub = self.create_lifecycle_publisher(Pose, "end_pose", qos)
        self.pose_stamped_pub = self.create_lifecycle_publisher(PoseStamped, "end_pose_stamped", qos)
        self.status_pub = self.create_lifecycle_publisher(DiagnosticStatus, "arm_status", qos)
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", qos)
        self.image_pubs = {
            "front": self.create_lifecycle_publisher(Image, cfg.front_image_topic, qos_profile_sensor_data)
        }
        if cfg.wrist_camera:
            self.image_pubs["wrist"] = self.create_lifecycle_publisher(
                Image, cfg.wrist_image_topic, qos_profile_sensor_data
            )
        self._owned_publishers = [
            self.joint_pub,
            self.pose_pub,
            self.pose_stamped_pub,
            self.status_pub,
            self.diag_pub,
            *self.image_pubs.values(),
        ]
        self._owned_timers = [
            self.create_timer(cfg.physics_tick_s / cfg.realtime_factor, self._tick, callback_group=group),
            self.create_timer(1.0 / cfg.publish_rate_hz, self._publish_state, callback_group=group),
            self.create_timer(1.0 / cfg.camera_rate_hz, self._publish_images, callback_group=group),
            self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics, callback_group=group),
        ]
        self._owned_subscriptions = [
            self.create_subscription(PolicyAction, "policy_action", self._on_policy_action, qos, callback_group=group),
            self.create_subscription(Bool, "enable_flag", self._on_enable_flag, qos, callback_group=group),
        ]
        self._owned_services = [
            self.create_service(SetBool, "enable_srv", self._on_enable_srv, callback_group=group),
            self.create_service(Trigger, "emergency_stop", self._on_estop, callback_group=self._estop_group),
            self.create_service(Trigger, "resume", self._on_resume, callback_group=group),
            self.create_service(Trigger, "store_state", self._on_store_state, callback_group=group),
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
        self.get_logger().info(f"simulating {cfg.task!r} ({session.task_text}), seed {cfg.seed}")
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
        session, self.session = self.session, None
        if session is not None and not self._render.closed:
            self._render.call(session.arm.disconnect)  # frees the renderer on the thread that made it

    def destroy_node(self) -> None:
        """Free the scene and its GL context on the render thread, end that thread, then the node."""
        self._release()
        self._render.close()
        super().destroy_node()

    # --- clock and publishing ----------------------------------------------------------------

    def _tick(self) -> None:
        if self._active and self.session.tick():
            self.get_logger().warning(f"no command for {self.config.watchdog_timeout_s} s: holding the arm where it is")

    def _publish_state(self) -> None:
        if not self._active:
            return
        state = self.session.arm.observe()
        stamp = self.get_clock().now().to_msg()
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
        session = self.session
        if not self._active or session is None:
            return
        stamp_s = self._ros_now_s()
        try:
            images = self._render.call(session.images)
        except RenderThreadClosed:
            return  # the node is being destroyed
        frame_ids = {"front": self.config.front_frame_id, "wrist": self.config.wrist_frame_id}
        for name, image in images.items():
            self.image_pubs[name].publish(image_to_msg(image, self.msgs, stamp_s=stamp_s, frame_id=frame_ids[name]))

    def _publish_diagnostics(self) -> None:
        report = diagnostic_report(self.session.arm.status(), extra=self.session.diagnostics_extra())
        status = DiagnosticStatus(
            level=bytes([report.level]),
            name=f"{self.get_fully_qualified_name()}: simulated PiPER ({self.config.task})",
            message=report.message,
            hardware_id=f"sim:{self.config.task}",
            values=[KeyValue(key=key, value=value) for key, value in report.values],
        )
        self.status_pub.publish(status)
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    # --- commands ----------------------------------------------------------------------------

    def _on_policy_action(self, msg: PolicyAction) -> None:
        if not self._active:
            self.get_logger().warning("policy_action ignored: node is not active", throttle_duration_sec=5.0)
            return
        try:
            action = policy_action_from_msg(msg)
            self.session.arm.execute(action.delta, obs_stamp_s=action.obs_stamp_s)
        except (ConversionError, ValidationError, ValueError) as exc:
            self.get_logger().error(f"policy_action rejected, malformed message: {exc}")
        except MotionRefused as exc:
            self.get_logger().warning(f"policy_action refused: {exc}", throttle_duration_sec=1.0)

    def _enable(self, on: bool) -> str:
        try:
            if on:
                self.session.arm.enable()
            else:
                self.session.arm.disable()
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
        self.session.arm.emergency_stop()
        response.success, response.message = True, self.session.arm.status().message
        self.get_logger().warning("emergency stop")
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.session.arm.resume()
        response.success, response.message = True, self.session.arm.status().message
        return response

    def _on_store_state(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = True, self.session.store_state()
        return response

    # --- reset action ------------------------------------------------------------------------

    def _on_reset_goal(self, goal: ResetArm.Goal) -> GoalResponse:
        if not self._active or self.session.arm.homing:
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_reset(self, goal_handle) -> ResetArm.Result:
        goal = goal_handle.request
        goal_handle.publish_feedback(ResetArm.Feedback(fraction=0.0))
        outcome = self.session.reset(goal.mode, seed=goal.seed, state_id=goal.state_id)
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
    run_node(SimNode, args, threads=None, autostart_lifecycle=True)


if __name__ == "__main__":
    main()
