"""Actor node: the ROS shell around ``ActorService`` (replica pool, structured decoding, value head).

Interfaces
  service    get_action (vlac_msgs/srv/GetAction): one Observation -> ok, error, PolicyAction, queue_wait_s.
             Requests run concurrently (re-entrant callback group on a multi-threaded executor) and
             queue FIFO in the pool when every replica is busy. Bad input (missing views, a state
             outside the arm's range or not finite, an empty or over-long task, an image of another
             encoding or size than its fields say) is answered with ok=false and the reason; the
             node keeps serving.
  subscribes policy_version (vlac_msgs/msg/PolicyVersion, reliable, transient-local, depth 1, as the
             trainer publishes it): loads the announced checkpoint in the background and swaps
             replicas between requests; older versions are ignored. Transient-local: an actor that
             starts after the trainer still gets the trainer's current version. A version from a
             trainer whose parameters differ from this actor's in a setting the trainer must repeat
             (grammar, prompt, starting version: ``vlac_actor.trainer_agreement``) is not loaded; the
             disagreement is logged and reported on /diagnostics as an ERROR.
A missing checkpoint folder fails the node at start with a message naming the parameter and path.
  publishes  /diagnostics (diagnostic_msgs/DiagnosticArray) every ``diagnostics_period_s``: latency,
             queue wait, queue depth, replica use, versions; WARN when the median queue wait exceeds
             0.1 s (the paper's assignment budget) or the last reload failed.

Parameters: ``vlac_actor.config.ActorConfig`` (declared once through ``declare_config``).
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from vlac_actor.config import ActorConfig
from vlac_actor.ros.trainer_check import TrainerSettingsCheck
from vlac_actor.service import ActorService
from vlac_core.checkpoint_dir import require_checkpoint_dir
from vlac_core.convert import observation_from_msg, policy_action_to_msg
from vlac_core.ros.diagnostics import diagnostics_publisher, publish_diagnostics
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.qos import POLICY_VERSION_QOS
from vlac_core.ros.spin import run_node
from vlac_msgs.msg import PolicyVersion
from vlac_msgs.srv import GetAction

#: Median queue wait above which diagnostics warn: the paper assigns observations within 0.1 s.
QUEUE_WAIT_WARN_S = 0.1


class ActorNode(Node):
    def __init__(self, node_name: str = "actor", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config: ActorConfig = declare_config(self, ActorConfig)
        self.msgs = rclpy_message_set()
        require_checkpoint_dir(self.config.checkpoint_path, f"{self.get_fully_qualified_name()}.checkpoint_path")
        self.get_logger().info(
            f"loading policy version {self.config.policy_version} from {self.config.checkpoint_path} on "
            f"{list(self.config.devices)} ({self.config.backend})"
        )
        self.service = ActorService(self.config)
        requests = ReentrantCallbackGroup()  # many clients decode at once; the pool queues them FIFO
        self.get_action = self.create_service(GetAction, "get_action", self._on_get_action, callback_group=requests)
        self.trainer_check = TrainerSettingsCheck(self, self.config)
        self.trainer_mismatch = ""  # why the last announced version was refused (empty: none was)
        self.version_sub = self.create_subscription(
            PolicyVersion,
            "policy_version",
            self._on_policy_version,
            POLICY_VERSION_QOS,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.diagnostics_pub = diagnostics_publisher(self)
        self.diagnostics_timer = self.create_timer(
            self.config.diagnostics_period_s, self._publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.get_logger().info(f"serving get_action with {len(self.config.devices)} replica(s)")

    def _on_get_action(self, request: GetAction.Request, response: GetAction.Response) -> GetAction.Response:
        received_s = time.monotonic()
        try:
            observation = observation_from_msg(request.observation)
        except ValueError as error:  # ConversionError, ValidationError: the message itself is malformed
            response.ok, response.error = False, f"observation: {error}"
            self.get_logger().warning(response.error, throttle_duration_sec=2.0)
            return response
        reply = self.service.act(
            observation, greedy=bool(request.greedy), temperature=float(request.temperature), received_s=received_s
        )
        response.ok, response.error, response.queue_wait_s = reply.ok, reply.error, float(reply.queue_wait_s)
        if reply.action is not None:
            produced_s = self.get_clock().now().nanoseconds * 1e-9
            response.action = policy_action_to_msg(reply.action, self.msgs, stamp_s=produced_s)
        else:
            self.get_logger().warning(f"{observation.robot_id}: {reply.error}", throttle_duration_sec=2.0)
        return response

    def _on_policy_version(self, msg: PolicyVersion) -> None:
        problem = self.trainer_check.problem(self.version_sub.topic_name)
        if problem:
            self.trainer_mismatch = f"policy version {msg.version} not loaded: {problem}"
            self.get_logger().error(self.trainer_mismatch)
            return
        self.trainer_mismatch = ""
        self.get_logger().info(self.service.announce_version(int(msg.version), msg.checkpoint_path))

    def _publish_diagnostics(self) -> None:
        values = self.service.diagnostics()
        slow = float(values["queue_wait_p50_s"]) > QUEUE_WAIT_WARN_S
        level = DiagnosticStatus.WARN if slow or "reload_error" in values else DiagnosticStatus.OK
        message = values.get("reload_error") or ("queue wait above 0.1 s" if slow else "serving")
        if self.trainer_mismatch:
            level, message = DiagnosticStatus.ERROR, self.trainer_mismatch
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: actor pool",
            message=message,
            hardware_id=",".join(self.config.devices),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        publish_diagnostics(self, self.diagnostics_pub, status)

    def destroy_node(self) -> None:
        self.service.close()
        super().destroy_node()


def executor_threads(config: ActorConfig) -> int:
    """Enough executor threads that waiting requests queue in the pool (FIFO, measured), not in rclpy."""
    return min(64, len(config.devices) * config.max_batch + max(config.max_queue, 4) + 2)


def main(args: list[str] | None = None) -> None:
    run_node(ActorNode, args, threads=lambda node: executor_threads(node.config))


if __name__ == "__main__":
    main()
