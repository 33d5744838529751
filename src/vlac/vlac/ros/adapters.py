"""The episode loop's Protocols over ROS: driver/sim topics + camera, GetAction, ScoreProgress/ScoreDone.

Thin: numbers are copied between messages and the ROS-free cores (``vlac.episode.observation_assembly``,
``vlac_core.convert``); no decision is taken here. Service and action calls block the calling
(episode) thread on a future that the node's multi-threaded executor completes, with a time-out.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from piper_driver.sim.scene_seeds import SceneSeeds
from vlac.episode.observation_assembly import ObservationAssembler, ObservationUnavailable
from vlac_core.convert import observation_to_msg, policy_action_from_msg, policy_action_to_msg
from vlac_core.images import image_from_msg, image_to_msg
from vlac_core.message_set import stamp_s_from_time
from vlac_core.ros.action_client import RecordedActionClient
from vlac_core.types import DeltaAction, Observation, PolicyAction, StartState
from vlac_msgs.action import ResetArm
from vlac_msgs.msg import PolicyAction as PolicyActionMsg
from vlac_msgs.srv import GetAction, ScoreDone, ScoreProgress


class RosCallError(RuntimeError):
    """A service or action call failed, was refused or timed out; the message says which."""


class CallWaiter:
    """Waits on rclpy futures for the episode thread, and wakes every wait when the node shuts down.

    A future is completed by the node's executor; once Ctrl-C has stopped it nothing would, and an
    episode mid-step would sit out ``service_timeout_s`` before recording what it has. One waiter
    per node (``for_node``), closed by the context's shutdown and by the node's destroy_node.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[threading.Event] = set()
        self._closed = False

    @classmethod
    def for_node(cls, node: Node) -> CallWaiter:
        waiter = getattr(node, "_vlac_call_waiter", None)
        if waiter is None:
            waiter = node._vlac_call_waiter = cls()
            node.context.on_shutdown(waiter.close)
        return waiter

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for event in self._pending:
                event.set()

    def wait(self, future, timeout_s: float, what: str):
        """The future's result; RosCallError on a time-out, a failed call or shutdown."""
        done = threading.Event()
        with self._lock:
            if self._closed:
                future.cancel()
                raise RosCallError(f"{what}: the node is shutting down")
            self._pending.add(done)
        future.add_done_callback(lambda _f: done.set())
        try:
            done.wait(timeout_s)
        finally:
            with self._lock:
                self._pending.discard(done)
        if not future.done():
            future.cancel()
            raise RosCallError(
                f"{what}: " + ("the node is shutting down" if self._closed else f"no answer within {timeout_s} s")
            )
        if future.exception() is not None:
            raise RosCallError(f"{what}: {future.exception()}")
        return future.result()


def ros_now_s(node: Node) -> float:
    return node.get_clock().now().nanoseconds / 1e9


class TopicRobot:
    """An arm served by a driver or sim node in this namespace, with its front camera."""

    def __init__(
        self,
        node: Node,
        robot_id: str,
        task: str,
        image_topic: str,
        max_image_age_s: float,
        timeout_s: float,
        msgs,
        first_seed: int = 0,
        scenes: SceneSeeds | None = None,
    ):
        self.node = node
        self.robot_id = robot_id
        self.msgs = msgs
        self.timeout_s = timeout_s
        self.waiter = CallWaiter.for_node(node)
        self.assembler = ObservationAssembler(robot_id, task, max_image_age_s)
        group = ReentrantCallbackGroup()
        node.create_subscription(Image, image_topic, self._on_image, qos_profile_sensor_data, callback_group=group)
        node.create_subscription(PoseStamped, "end_pose_stamped", self._on_pose, 10, callback_group=group)
        node.create_subscription(JointState, "joint_states_single", self._on_joints, 10, callback_group=group)
        node.create_subscription(DiagnosticStatus, "arm_status", self._on_status, 10, callback_group=group)
        self.action_pub = node.create_publisher(PolicyActionMsg, "policy_action", 10)
        self.reset_client = RecordedActionClient(node, ResetArm, "reset_arm", callback_group=group)
        self.start_state_client = node.create_client(Trigger, "start_state_id", callback_group=group)
        self._last_obs: Observation | None = None
        # Scene seeds of fresh starts (the launch gives each arm its own range), by the embedded SimArm's rule.
        self._fresh_seeds = (scenes if scenes is not None else SceneSeeds(first_seed)).draws(first_seed)

    def _on_image(self, msg: Image) -> None:
        self.assembler.on_image(image_from_msg(msg), stamp_s_from_time(msg.header.stamp))

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        self.assembler.on_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))

    def _on_joints(self, msg: JointState) -> None:
        self.assembler.on_joints(list(msg.name), list(msg.position))

    def _on_status(self, msg: DiagnosticStatus) -> None:
        for kv in msg.values:
            self.assembler.on_status_value(kv.key, kv.value)

    @property
    def task(self) -> str:
        return self.assembler.task

    @task.setter
    def task(self, text: str) -> None:
        self.assembler.task = text

    def reset(self, start_state: StartState | None) -> StartState:
        """Reset through the reset_arm action: a kept start state, or a new scene (whose id start_state_id gives)."""
        if not self.reset_client.wait_for_server(timeout_sec=self.timeout_s):
            raise RosCallError("reset_arm: no action server")
        goal = ResetArm.Goal()
        if start_state is not None:
            goal.mode, goal.state_id = "stored", start_state.state_id
        else:
            goal.mode, goal.seed = "random", next(self._fresh_seeds)
        handle = self.waiter.wait(self.reset_client.send_goal_async(goal), self.timeout_s, "reset_arm goal")
        if not handle.accepted:
            raise RosCallError("reset_arm: goal refused (arm not active or homing)")
        result = self.waiter.wait(handle.get_result_async(), self.timeout_s, "reset_arm result").result
        if not result.ok:
            raise RosCallError(f"reset_arm: {result.message}")
        self.assembler.reset_seq()
        self._wait_fresh_image(ros_now_s(self.node))
        if start_state is not None:
            return start_state
        reply = self.waiter.wait(
            self.start_state_client.call_async(Trigger.Request()), self.timeout_s, "start_state_id"
        )
        if not reply.success:
            raise RosCallError(f"start_state_id: {reply.message}")
        return StartState(reply.message, {"seed": int(goal.seed)})

    def _wait_fresh_image(self, after_s: float) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and not self.waiter.closed:
            stamp = self.assembler.latest_image_stamp_s()
            if stamp is not None and stamp > after_s:
                return
            time.sleep(0.01)
        if self.waiter.closed:
            raise ObservationUnavailable(f"{self.robot_id}: the node is shutting down")
        raise ObservationUnavailable(f"{self.robot_id}: no new front image within {self.timeout_s} s")

    def observe(self) -> Observation:
        self._last_obs = self.assembler.observation(ros_now_s(self.node))
        return self._last_obs

    def execute(self, delta: DeltaAction) -> None:
        """Publish on policy_action (stamped with the observation it answers, for the staleness check)."""
        obs = self._last_obs
        action = PolicyAction(
            delta=delta,
            text="",
            token_logprobs=(),
            value=0.0,
            policy_version=0,
            obs_stamp_s=obs.stamp_s if obs else ros_now_s(self.node),
            inference_latency_s=0.0,
            robot_id=self.robot_id,
            obs_seq=obs.seq if obs else 0,
        )
        self.action_pub.publish(policy_action_to_msg(action, self.msgs, stamp_s=ros_now_s(self.node)))

    def ground_truth_success(self) -> bool | None:
        return self.assembler.ground_truth_success


class ServiceActorClient:
    """The actor node's get_action service as the loop's Actor."""

    def __init__(self, node: Node, timeout_s: float, msgs, service: str = "/get_action") -> None:
        self.client = node.create_client(GetAction, service, callback_group=ReentrantCallbackGroup())
        self.waiter = CallWaiter.for_node(node)
        self.timeout_s = timeout_s
        self.msgs = msgs
        self._version = 0

    @property
    def policy_version(self) -> int:
        return self._version

    def unavailable(self, timeout_s: float) -> list[str]:
        """The actor services that did not show up within ``timeout_s`` (empty: the actor node is up)."""
        return [] if self.client.wait_for_service(timeout_sec=timeout_s) else [f"actor ({self.client.srv_name})"]

    def ready(self) -> bool:
        """Whether the actor's service is discovered now (never blocks: for diagnostics)."""
        return self.client.service_is_ready()

    def act(self, observation: Observation, greedy: bool) -> PolicyAction:
        if not self.client.wait_for_service(timeout_sec=self.timeout_s):
            raise RosCallError("get_action: actor service not available")
        request = GetAction.Request(observation=observation_to_msg(observation, self.msgs), greedy=bool(greedy))
        reply = self.waiter.wait(self.client.call_async(request), self.timeout_s, "get_action")
        if not reply.ok:
            raise RosCallError(f"get_action: {reply.error}")
        action = policy_action_from_msg(reply.action)
        self._version = action.policy_version
        return action


class ServiceCriticClient:
    """The critic node's score_progress / score_done services as the loop's Critic."""

    def __init__(self, node: Node, timeout_s: float, msgs, namespace: str = "/") -> None:
        group = ReentrantCallbackGroup()
        self.progress = node.create_client(ScoreProgress, f"{namespace}score_progress", callback_group=group)
        self.done = node.create_client(ScoreDone, f"{namespace}score_done", callback_group=group)
        self.waiter = CallWaiter.for_node(node)
        self.timeout_s = timeout_s
        self.msgs = msgs

    def unavailable(self, timeout_s: float) -> list[str]:
        """The critic services that did not show up within ``timeout_s`` (empty: the critic node is up)."""
        deadline = time.monotonic() + timeout_s
        return [
            f"critic ({client.srv_name})"
            for client in (self.progress, self.done)
            if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic()))
        ]

    def ready(self) -> bool:
        """Whether both critic services are discovered now (never blocks: for diagnostics)."""
        return self.progress.service_is_ready() and self.done.service_is_ready()

    def _image(self, image: np.ndarray):
        return image_to_msg(image, self.msgs, stamp_s=0.0)

    def progress_pct(self, earlier_image, later_image, task, first_image) -> float | None:
        request = ScoreProgress.Request(
            task=task, earlier=[self._image(earlier_image)], later=[self._image(later_image)]
        )
        reply = self.waiter.wait(self.progress.call_async(request), self.timeout_s, "score_progress")
        if not reply.ok:
            raise RosCallError(f"score_progress: {reply.error}")
        return float(reply.progress_pct[0]) if reply.parsed[0] else None

    def done_prob(self, image, task) -> float | None:
        reply = self.waiter.wait(
            self.done.call_async(ScoreDone.Request(task=task, images=[self._image(image)])),
            self.timeout_s,
            "score_done",
        )
        if not reply.ok:
            raise RosCallError(f"score_done: {reply.error}")
        prob = float(reply.done_prob[0])
        return None if prob != prob else prob  # NaN: the done answer was unparsable
