"""Lifecycle node for one camera: OpenCV capture (``piper_driver.camera``) to sensor_msgs/Image.

configure opens the device (FAILURE with the reason — missing device, busy, no permission —
logged); activate starts a timer at ``rate_hz`` that publishes ``image_raw`` (rgb8) with the
sensor-data QoS (best effort, keep last: a late frame is worth less than the next one);
deactivate stops it; cleanup releases the device.
"""

from __future__ import annotations

import time

from rclpy.lifecycle import Node, State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from piper_driver.camera import Camera, CameraConfig, CameraError
from piper_driver.ros_units import to_ros_time_s
from vlac_core.images import image_to_msg
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.spin import run_node


class CameraNode(Node):
    def __init__(self, node_name: str = "camera", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config: CameraConfig = declare_config(self, CameraConfig)
        self.msgs = rclpy_message_set()
        self.camera: Camera | None = None
        self.image_pub = None
        self.timer = None

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        camera = Camera(self.config)
        try:
            camera.open()
        except CameraError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        self.camera = camera
        self.image_pub = self.create_lifecycle_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.timer = self.create_timer(1.0 / self.config.rate_hz, self._capture)
        self.timer.cancel()  # runs only while active
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.timer.reset()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.timer.cancel()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
        if self.image_pub is not None:
            self.destroy_lifecycle_publisher(self.image_pub)
            self.image_pub = None
        if self.camera is not None:
            self.camera.close()
            self.camera = None

    def _capture(self) -> None:
        try:
            frame = self.camera.read()
        except CameraError as exc:
            self.get_logger().error(str(exc), throttle_duration_sec=2.0)
            return
        ros_now_s = self.get_clock().now().nanoseconds / 1e9
        stamp_s = to_ros_time_s(frame.stamp_s, time.monotonic(), ros_now_s)
        self.image_pub.publish(image_to_msg(frame.rgb, self.msgs, stamp_s=stamp_s, frame_id=self.config.frame_id))


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args, autostart_lifecycle=True)


if __name__ == "__main__":
    main()
