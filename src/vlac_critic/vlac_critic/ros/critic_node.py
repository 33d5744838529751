"""Critic node: progress and done services, streaming progress, diagnostics. All logic is in the core.

- ``score_progress`` (vlac_msgs/srv/ScoreProgress) and ``score_done`` (vlac_msgs/srv/ScoreDone):
  batched scoring; bad requests (an image of another encoding or size than its fields say, an
  empty task, too many reference frames) are answered with ``ok=false`` and the reason, and the
  node keeps serving (``vlac_critic.requests``). Requests that arrive together (several arms'
  episode managers) are scored in shared batches by the same ``BatchingCritic`` the embedded
  session uses (``vlac_critic.wiring``).
- Streaming (when ``stream_image_topic`` is set): frames from that topic go into a
  ``ProgressStream``; a timer at ``stream_rate_hz`` scores the newest frame against the one ``skip``
  frames back and publishes vlac_msgs/Progress on ``progress`` with the running value.
  ``~/reset_stream`` (std_srvs/Trigger) starts a new value curve (new episode).
- A missing checkpoint folder fails the node at start with a message naming the parameter and the
  path. The model then loads on a background thread so the node comes up at once (services answer
  "model not loaded yet" meanwhile); inference runs on the batcher's worker thread, so a long
  batch does not block diagnostics or image reception (multi-threaded executor).
- ``/diagnostics``: latency, pairs scored, parse-failure and failed-request counts, requests per batch.
"""

from __future__ import annotations

import threading

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from vlac_core.images import ImageConversionError, image_from_msg
from vlac_core.message_set import stamp_s_from_time
from vlac_core.ros.diagnostics import diagnostics_publisher, publish_diagnostics
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.spin import run_node
from vlac_critic.batching import BatchingCritic
from vlac_critic.config import CriticConfig
from vlac_critic.diagnostics import critic_health
from vlac_critic.requests import DoneReply, ProgressReply, fill, score_done, score_progress
from vlac_critic.streaming import ProgressStream
from vlac_critic.wiring import build_shared_critic, check_critic_checkpoint
from vlac_msgs.msg import Progress
from vlac_msgs.srv import ScoreDone, ScoreProgress

NOT_LOADED = "critic model not loaded yet"


class CriticNode(Node):
    def __init__(self, node_name: str = "critic", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config: CriticConfig = declare_config(self, CriticConfig)
        self.msgs = rclpy_message_set()
        check_critic_checkpoint(self.config)  # ConfigError naming the path, before anything starts
        self.critic: BatchingCritic | None = None
        self.load_error: str | None = None
        self.requests_failed = 0
        self._closed = False
        self._critic_lock = threading.Lock()  # the loader thread hands the critic over; destroy_node closes it
        self._stream_lock = threading.Lock()
        services = ReentrantCallbackGroup()
        self.create_service(ScoreProgress, "score_progress", self._on_score_progress, callback_group=services)
        self.create_service(ScoreDone, "score_done", self._on_score_done, callback_group=services)
        self.diagnostics_pub = diagnostics_publisher(self)
        self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics)
        self.stream: ProgressStream | None = None
        if self.config.stream_image_topic:
            self.stream = ProgressStream(self.config.skip, self.config.value_rule)
            self.progress_pub = self.create_publisher(Progress, "progress", 10)
            self.create_subscription(Image, self.config.stream_image_topic, self._on_image, qos_profile_sensor_data)
            self.create_timer(
                1.0 / self.config.stream_rate_hz, self._score_stream, callback_group=MutuallyExclusiveCallbackGroup()
            )
            self.create_service(Trigger, "~/reset_stream", self._on_reset_stream)
        threading.Thread(target=self._load_model, name="critic_model_loader", daemon=True).start()

    def _load_model(self) -> None:
        try:
            critic = build_shared_critic(self.config)
        except Exception as error:  # reported on /diagnostics and in every answer
            self.load_error = f"{type(error).__name__}: {error}"
            self.get_logger().error(f"critic model failed to load: {self.load_error}")
            return
        with self._critic_lock:
            closed = self._closed
            if not closed:
                self.critic = critic
        if closed:  # the node went down while the model loaded
            critic.close()
            return
        self.get_logger().info(f"critic model loaded from {self.config.checkpoint} ({critic.critic.backend.name})")

    def _not_ready(self) -> str | None:
        if self.load_error:
            return f"critic model failed to load: {self.load_error}"
        return None if self.critic is not None else NOT_LOADED

    def _on_score_progress(self, request, response):
        reason = self._not_ready()
        reply = ProgressReply(ok=False, error=reason) if reason else score_progress(self.critic, request)
        self._count(reply)
        return fill(response, reply)

    def _on_score_done(self, request, response):
        reason = self._not_ready()
        reply = DoneReply(ok=False, error=reason) if reason else score_done(self.critic, request)
        self._count(reply)
        return fill(response, reply)

    def _count(self, reply) -> None:
        if not reply.ok:
            self.requests_failed += 1
            self.get_logger().warning(f"critic request refused: {reply.error}")

    def _on_image(self, msg) -> None:
        try:
            frame = image_from_msg(msg)
        except ImageConversionError as error:
            self.get_logger().warning(f"stream image ignored: {error}", throttle_duration_sec=5.0)
            return
        with self._stream_lock:
            self.stream.push(frame, stamp_s_from_time(msg.header.stamp))

    def _on_reset_stream(self, request, response):
        with self._stream_lock:
            self.stream.reset()
        response.success, response.message = True, "value curve reset"
        return response

    def _score_stream(self) -> None:
        if self.critic is None:
            return
        with self._stream_lock:
            pair = self.stream.pending()
        if pair is None:
            return
        try:
            score = self.critic.progress(self.config.stream_task, [pair.earlier], [pair.later])[0]
        except Exception as error:  # keep streaming; the next frame gets another try
            self.requests_failed += 1
            self.get_logger().error(f"stream scoring failed: {type(error).__name__}: {error}")
            return
        with self._stream_lock:
            value_pct = self.stream.record(pair, score.progress_pct)
        self.progress_pub.publish(
            Progress(
                header=self.msgs.header(pair.stamp_s),
                robot_id=self.config.stream_robot_id,
                task=self.config.stream_task,
                parsed=score.parsed,
                progress_pct=score.progress_pct if score.parsed else float("nan"),
                raw_answer=score.raw_answer,
                skip=self.config.skip,
                value_pct=value_pct,
            )
        )

    def _publish_diagnostics(self) -> None:
        health = critic_health(
            self.critic.stats if self.critic is not None else None, self.load_error, self.requests_failed
        )
        status = DiagnosticStatus(
            level=bytes([health.level]),
            name=f"{self.get_fully_qualified_name()}: critic",
            message=health.message,
            hardware_id=self.config.checkpoint,
            values=[KeyValue(key=k, value=v) for k, v in health.values] + self._batch_values(),
        )
        publish_diagnostics(self, self.diagnostics_pub, status)

    def _batch_values(self) -> list:
        if self.critic is None:
            return []
        return [KeyValue(key=f"batch_{k}", value=str(v)) for k, v in self.critic.batch_stats().items()]

    def destroy_node(self) -> None:
        with self._critic_lock:
            self._closed, critic = True, self.critic
        if critic is not None:
            critic.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(CriticNode, args, threads=4)


if __name__ == "__main__":
    main()
