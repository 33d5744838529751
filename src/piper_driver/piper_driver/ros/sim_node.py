"""Lifecycle node for one simulated PiPER and its cameras (the ROS shell around ``SimNodeCore``).

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

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from piper_driver.ros.arm_node import ArmNode
from piper_driver.ros.render_thread import RenderThread, RenderThreadClosed
from piper_driver.safe_arm import SafeArm
from piper_driver.sim.node_config import SimNodeConfig
from piper_driver.sim.node_core import SimNodeCore
from vlac_core.images import image_to_msg
from vlac_core.ros.spin import run_node


class SimNode(ArmNode):
    config_type = SimNodeConfig

    def __init__(self, node_name: str = "piper_sim", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.core: SimNodeCore | None = None
        self._render = RenderThread(name=f"{node_name}_render")

    # --- lifecycle ---------------------------------------------------------------------------

    def _open_core(self) -> SimNodeCore:
        """Build the scene and render it once (on the render thread): configure fails if either cannot."""
        core = SimNodeCore(self.config, clock=self._ros_now_s)
        core.start()
        try:
            core.images()
        except BaseException:
            core.arm.disconnect()
            raise
        return core

    def _open_arm(self) -> SafeArm | None:
        try:
            self.core = self._render.call(self._open_core)
        except (ConnectionError, RuntimeError, ValueError) as exc:  # RuntimeError: no headless GL backend
            self.get_logger().error(f"could not build or render the {self.config.task!r} scene: {exc}")
            return None
        return self.core.arm

    def _close_arm(self) -> None:
        core, self.core = self.core, None
        if core is not None and not self._render.closed:
            self._render.call(core.arm.disconnect)  # frees the renderer on the thread that made it

    def _create_extras(self) -> None:
        cfg, group = self.config, self._arm_group
        self.image_pubs = {
            "front": self.create_lifecycle_publisher(Image, cfg.front_image_topic, qos_profile_sensor_data)
        }
        if cfg.wrist_camera:
            self.image_pubs["wrist"] = self.create_lifecycle_publisher(
                Image, cfg.wrist_image_topic, qos_profile_sensor_data
            )
        self._owned_publishers += self.image_pubs.values()
        self._owned_timers += [
            self.create_timer(cfg.physics_tick_s / cfg.realtime_factor, self._tick, callback_group=group),
            self.create_timer(1.0 / cfg.camera_rate_hz, self._publish_images, callback_group=group),
        ]
        self._owned_services.append(
            self.create_service(Trigger, "store_state", self._on_store_state, callback_group=group)
        )

    def _configured_message(self) -> str:
        return f"simulating {self.config.task!r} ({self.core.task_text}), seed {self.config.seed}"

    def destroy_node(self) -> None:
        """Free the scene and its GL context on the render thread, end that thread, then the node."""
        self._release()
        self._render.close()
        super().destroy_node()

    # --- clock and publishing ----------------------------------------------------------------

    def _tick(self) -> None:
        self._warn_if_held(self._active and self.core.tick())

    def _state_stamp(self, state):
        """Simulated observations are current: stamped with the node's clock."""
        return self.get_clock().now().to_msg()

    def _publish_images(self) -> None:
        core = self.core
        if not self._active or core is None:
            return
        stamp_s = self._ros_now_s()
        try:
            images = self._render.call(core.images)
        except RenderThreadClosed:
            return  # the node is being destroyed
        frame_ids = {"front": self.config.front_frame_id, "wrist": self.config.wrist_frame_id}
        for name, image in images.items():
            self.image_pubs[name].publish(image_to_msg(image, self.msgs, stamp_s=stamp_s, frame_id=frame_ids[name]))

    def _diagnostic_identity(self) -> tuple[str, str, dict[str, object]]:
        task = self.config.task
        return f"simulated PiPER ({task})", f"sim:{task}", self.core.diagnostics_extra()

    # --- commands ----------------------------------------------------------------------------

    def _enable_arm(self) -> None:
        self.arm.enable()

    def _on_store_state(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = True, self.core.store_state()
        return response

    def _reset(self, goal):
        outcome = self.core.reset(goal.mode, seed=goal.seed, state_id=goal.state_id)
        return outcome.ok, outcome.message, outcome.end_pose


def main(args: list[str] | None = None) -> None:
    run_node(SimNode, args, threads=None, autostart_lifecycle=True)


if __name__ == "__main__":
    main()
