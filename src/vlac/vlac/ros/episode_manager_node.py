"""Episode manager node: one arm's episodes as a ROS action (the shell around ``vlac.episode.manager``).

Runs in the arm's namespace (``/arm_0/...``) next to its driver or sim node and camera.
Interfaces
  action     run_episode (vlac_msgs/action/RunEpisode): one episode per goal; feedback per recorded
             step (step, progress_pct, value_pct, reward, done_prob); result: episode id,
             termination, success (ground truth where known), return, length, bag path, error (why it
             ended early; empty when it ran its course). Single-goal
             semantics as ros2/examples' server_single_goal: a new goal aborts the running one
             (under a lock); a cancel request ends the episode at its next step (recorded).
  uses       driver/sim topics (front camera image, end_pose_stamped, joint_states_single,
             arm_status), policy_action (publishes), reset_arm (action client), start_state_id
             (service client), /get_action (actor), /score_progress and /score_done (critic).
  subscribes /trainer_backlog (vlac_msgs/TrainerBacklog, reliable, transient-local): with
             ``max_waiting_batches`` N > 0 an autorun episode starts only while fewer than N batches of
             episodes wait for the trainer (``vlac.episode.backpressure``; goals are never held).
  publishes  reward, progress_pct, value_pct, done_prob (std_msgs/Float64, per step, for rqt_plot),
             success_rate and intervention_rate (std_msgs/Float64, per episode),
             episode_summary (vlac_msgs/EpisodeSummary), and /episodes (vlac_msgs/Episode, reliable,
             depth 100, volatile): every finished training episode for the trainer, sent after its bag is
             closed (one sent before the trainer matched is read back from the bag by the trainer's rescan).
  teleop     ``teleop_input`` joy: sensor_msgs/Joy on ``teleop_topic`` (buttons toggle takeover and
             gripper, end the episode); twist: geometry_msgs/Twist on ``teleop_topic`` plus
             ``~/takeover`` (std_srvs/SetBool). Teleoperated steps are flagged human.
  diagnostics  /diagnostics every ``DIAGNOSTICS_PERIOD_S``: whether the actor and critic services are
             up, episodes run and aborted, and the last reason an episode could not run or was
             aborted (ERROR while the actor or critic node is down).
A goal (or an autorun episode) first waits up to ``service_timeout_s`` for the actor and critic
services: when either node is down the goal is aborted at once with nothing run (the reason in the
result's ``error``, the log and /diagnostics) instead of hanging on the arm. Ctrl-C (rclpy shutdown)
ends the running episode at its next step as termination ``shutdown``, as the embedded session
does, and records it.

Parameters: ``vlac.param_file.EpisodeManagerConfig`` (declared once).
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import Float64
from std_srvs.srv import SetBool

from vlac.episode.arm_wiring import arm_index, arm_seeds, bag_sink, build_episode_manager, recorded_episodes
from vlac.episode.backpressure import BacklogGate
from vlac.episode.manager import EpisodeGoal, FeedbackSink, StepFeedback
from vlac.episode.teleop import TeleopMapping, TeleopOperator
from vlac.param_file import EpisodeManagerConfig
from vlac.ros.adapters import CallWaiter, ServiceActorClient, ServiceCriticClient, TopicRobot, ros_now_s
from vlac_core.convert import episode_summary_to_msg, episode_to_msg, success_to_int8
from vlac_core.ros.diagnostics import diagnostics_publisher, publish_diagnostics
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.qos import EPISODES_QOS, TRAINER_BACKLOG_QOS
from vlac_core.ros.spin import run_node
from vlac_core.types import Termination
from vlac_msgs.action import RunEpisode
from vlac_msgs.msg import Episode as EpisodeMsg
from vlac_msgs.msg import EpisodeSummary, TrainerBacklog

#: how often the node reports on /diagnostics, s
DIAGNOSTICS_PERIOD_S = 1.0
#: longest wait at shutdown for the running episode to end and be recorded, s
SHUTDOWN_WAIT_S = 60.0
#: RunEpisode.Result.error of a goal ended by the node going away (rclpy shutdown, Ctrl-C)
SHUTTING_DOWN = "the node is shutting down"
#: RunEpisode.Result.error of a goal a newer goal replaced (single-goal semantics)
SUPERSEDED = "aborted by a newer goal"


class ShutdownFlag(threading.Event):
    """The loop's stop event: set by shutdown callbacks and destroy_node, and reading as set as soon as
    the rclpy context is down.

    Why: on SIGINT rclpy shuts the context down in its signal handler, before any Python shutdown
    callback or destroy_node runs; a publish or call of the running step then fails at once, and the
    loop would record that as an aborted call instead of a ``shutdown`` episode.
    """

    def __init__(self, context) -> None:
        super().__init__()
        self._context = context

    def is_set(self) -> bool:
        return super().is_set() or not self._context.ok()


class EpisodeManagerNode(Node):
    def __init__(self, node_name: str = "episode_manager", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        # done_rule: critic reads the critic checkpoint's own rule (done_rule_checkpoint, set by the launch files)
        self.config: EpisodeManagerConfig = declare_config(self, EpisodeManagerConfig).with_done_rule()
        self.get_logger().info(
            f"done rule: {self.config.done_confirm_steps} step(s) over {self.config.done_threshold:g} "
            f"(done_rule: {self.config.done_rule})"
        )
        cfg, self.msgs = self.config, rclpy_message_set()
        # Set first thing on rclpy shutdown (Ctrl-C), before service waits are woken: the episode then
        # ends as ``shutdown``, as in the embedded session, not as an aborted call.
        self._shutdown = ShutdownFlag(self.context)
        self.context.on_shutdown(self._shutdown.set)
        # This arm's seeds, by the session's rule; a restarted node continues after its recorded episodes.
        seeds = arm_seeds(
            cfg.scene_seed, arm_index(cfg.robot_id), recorded_episodes(cfg.bag_dir), cfg.scene_pool, cfg.scene_repeats
        )
        self.robot = TopicRobot(
            self,
            cfg.robot_id,
            cfg.task or "(no task set)",
            cfg.front_image_topic,
            cfg.front_image_max_age_s,
            cfg.service_timeout_s,
            self.msgs,
            first_seed=seeds.scene_seed,
            scenes=seeds.scenes,
        )
        self.teleop = TeleopOperator(
            TeleopMapping(
                cfg.teleop_max_mm,
                cfg.teleop_max_deg,
                cfg.teleop_deadzone,
                cfg.takeover_button,
                cfg.gripper_button,
                cfg.end_button,
            ),
            timeout_s=cfg.teleop_timeout_s,
        )
        self.sink = bag_sink(cfg, cfg.bag_dir, listeners=[self._on_recorded])
        self.actor_client = ServiceActorClient(self, cfg.service_timeout_s, self.msgs)
        self.critic_client = ServiceCriticClient(self, cfg.service_timeout_s, self.msgs)
        self.last_error = ""
        self.episodes_run = 0
        self.episodes_aborted = 0
        self.manager = build_episode_manager(
            cfg,
            self.robot,
            self.actor_client,
            self.critic_client,
            FeedbackSink(self.sink, self._on_step),
            operator=self.teleop,
            seeds=seeds,
            clock=lambda: ros_now_s(self),
            stop_event=self._shutdown,
        )
        self.float_pubs = {
            name: self.create_publisher(Float64, name, 10)
            for name in ("reward", "progress_pct", "value_pct", "done_prob", "success_rate", "intervention_rate")
        }
        self.summary_pub = self.create_publisher(EpisodeSummary, "episode_summary", 10)
        self.episode_pub = self.create_publisher(EpisodeMsg, "/episodes", EPISODES_QOS)
        self.backlog = BacklogGate(cfg.max_waiting_batches)
        self.holding = False  # the autorun thread waits for the trainer (backpressure)
        self.create_subscription(TrainerBacklog, "/trainer_backlog", self._on_backlog, TRAINER_BACKLOG_QOS)
        if cfg.teleop_input == "joy":
            self.create_subscription(Joy, cfg.teleop_topic, self._on_joy, 10)
        elif cfg.teleop_input == "twist":
            self.create_subscription(Twist, cfg.teleop_topic, self._on_twist, 10)
            self.create_service(SetBool, "~/takeover", self._on_takeover)
        self._goal_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._goal_handle = None
        self._started_s = 0.0
        self._feedback_handle = None
        self.action_server = ActionServer(
            self,
            RunEpisode,
            "run_episode",
            execute_callback=self._execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            handle_accepted_callback=self._on_accepted,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )
        self.diagnostics_pub = diagnostics_publisher(self)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        if cfg.autorun_episodes != 0:
            threading.Thread(target=self._autorun, name="autorun", daemon=True).start()
        self.get_logger().info(f"{cfg.robot_id}: run_episode ready (bags in {cfg.bag_dir if cfg.record else 'off'})")

    # -- single-goal action server (ros2/examples server_single_goal) ----------------------------

    def _on_accepted(self, goal_handle) -> None:
        with self._goal_lock:
            if self._goal_handle is not None and self._goal_handle.is_active:
                self.get_logger().info("new goal: ending the running episode (it is recorded)")
                self.manager.cancel()
                self._goal_handle.abort()
            self._goal_handle = goal_handle
        goal_handle.execute()

    def _execute(self, goal_handle) -> RunEpisode.Result:
        request = goal_handle.request
        goal = EpisodeGoal(int(request.max_steps), bool(request.evaluation), request.start_state_id)
        with self._run_lock:  # an aborted previous goal finishes (and records) its episode first
            if not goal_handle.is_active:  # aborted by a newer goal while waiting
                return _not_run(SUPERSEDED)
            if request.task:
                self.robot.task = request.task
            elif not self.config.task:
                return self._abort(goal_handle, "no task: set episode_manager.task or the goal's task")
            if self._peers_missing():  # reported (log, /diagnostics) with the reason
                return self._abort(goal_handle, self.last_error)
            self.sink.phase = "eval" if goal.evaluation else "train"
            self._feedback_handle = goal_handle
            self._started_s = time.monotonic()
            threading.Thread(target=self._watch_cancel, args=(goal_handle,), daemon=True).start()
            try:
                outcome = self.manager.run(goal)
            except Exception as error:  # reset or recording failed: no episode to report
                return self._abort(goal_handle, f"episode not run: {error}")
            finally:
                self._feedback_handle = None
            self._count(outcome)
        episode = outcome.episode
        result = RunEpisode.Result(
            episode_id=episode.episode_id,
            aborted=episode.termination.value == "aborted",
            termination=episode.termination.value,
            success=success_to_int8(episode.success),
            episode_return=float(episode.episode_return),
            length=episode.length,
            bag_path=self.sink.last.bag_path if self.sink.last else "",
            error=_ended_early(episode.termination, outcome.summary.abort_reason),
        )
        if self._shutdown.is_set():  # Ctrl-C: the episode is recorded; the node's entities are going away
            return result
        self._publish_rates()
        with self._goal_lock:
            if not goal_handle.is_active:
                result.error = result.error or SUPERSEDED
                return result
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
            elif result.aborted:
                goal_handle.abort()
            else:
                goal_handle.succeed()
        return result

    def _abort(self, goal_handle, reason: str) -> RunEpisode.Result:
        """A goal that runs no episode: aborted (unless the node is going away), the reason in the
        result, the log and /diagnostics."""
        if self._shutdown.is_set():
            reason = SHUTTING_DOWN
        else:
            if reason != self.last_error:
                self._report(reason)
            goal_handle.abort()
        return _not_run(reason)

    def _autorun(self) -> None:
        """Training episodes one after another without goals (``autorun_episodes``), as goals would run them."""
        done, target = 0, self.config.autorun_episodes
        while not self._shutdown.is_set() and (target < 0 or done < target):
            if self.backlog.closed():  # backpressure: the trainer has a whole batch (or more) to take first
                last = self.backlog.last
                self.get_logger().info(
                    f"autorun: holding the next episode: {last.waiting_episodes} episodes wait for the trainer "
                    f"(max_waiting_batches {self.config.max_waiting_batches} x {last.episodes_per_update})"
                )
                self.holding = True
                try:
                    self.backlog.wait_open(self._shutdown)
                finally:
                    self.holding = False
                continue  # the stop flag and the target are checked again
            with self._run_lock:
                self.sink.phase = "train"
                self._started_s = time.monotonic()
                try:
                    if self._peers_missing():
                        self._shutdown.wait(1.0)  # reported; the nodes may come up: try again shortly
                        continue
                    self._count(self.manager.run(EpisodeGoal()))
                except Exception as error:  # e.g. the sim node is not up yet: try again shortly
                    self._report(f"autorun: episode not run: {error}", throttle_s=5.0)
                    self._shutdown.wait(1.0)
                    continue
            done += 1
            self._publish_rates()

    # -- actor / critic health ---------------------------------------------------------------------

    def _peers_missing(self) -> list[str]:
        """The actor/critic services not up within service_timeout_s; reported when any is missing."""
        timeout_s = self.config.service_timeout_s
        missing = self.actor_client.unavailable(timeout_s) + self.critic_client.unavailable(timeout_s)
        if missing:
            self._report(f"episode not run: {' and '.join(missing)} not available within {timeout_s} s")
        return missing

    def _report(self, reason: str, throttle_s: float = 0.0) -> None:
        self.last_error = reason
        if throttle_s > 0:
            self.get_logger().error(reason, throttle_duration_sec=throttle_s)
        else:
            self.get_logger().error(reason)

    def _count(self, outcome) -> None:
        self.episodes_run += 1
        if outcome.summary.abort_reason and not self._shutdown.is_set():  # a call failed mid-episode (not Ctrl-C)
            self.episodes_aborted += 1
            self._report(f"{outcome.episode.episode_id} aborted: {outcome.summary.abort_reason}")

    def _on_backlog(self, msg: TrainerBacklog) -> None:
        try:
            self.backlog.heard(int(msg.waiting_episodes), int(msg.episodes_per_update))
        except ValueError as error:  # episodes_per_update 0: the message cannot set a limit; the last one stays
            self._report(f"/trainer_backlog: ignored: {error}")

    def _publish_diagnostics(self) -> None:
        actor_up, critic_up = self.actor_client.ready(), self.critic_client.ready()
        down = [name for name, up in (("actor", actor_up), ("critic", critic_up)) if not up]
        status = DiagnosticStatus(
            level=DiagnosticStatus.ERROR if down else DiagnosticStatus.OK,
            name=f"{self.get_fully_qualified_name()}: episode manager ({self.config.robot_id})",
            message=f"{' and '.join(down)} node down: episodes cannot run" if down else "ready",
            values=[
                KeyValue(key="actor_service", value="up" if actor_up else "down"),
                KeyValue(key="critic_services", value="up" if critic_up else "down"),
                KeyValue(key="episodes_run", value=str(self.episodes_run)),
                KeyValue(key="episodes_aborted", value=str(self.episodes_aborted)),
                KeyValue(key="last_error", value=self.last_error),
                KeyValue(key="trainer_backlog", value=_backlog_text(self.backlog, self.holding)),
            ],
        )
        publish_diagnostics(self, self.diagnostics_pub, status)

    def _watch_cancel(self, goal_handle) -> None:
        """Cancel is checked while the episode runs: it ends the episode at its next step."""
        while goal_handle.is_active:
            if goal_handle.is_cancel_requested:
                self.manager.cancel()
                return
            time.sleep(0.05)

    # -- per step / per episode -------------------------------------------------------------------

    def _on_step(self, fb: StepFeedback) -> None:
        for name, value in (
            ("reward", fb.reward),
            ("progress_pct", fb.progress_pct),
            ("value_pct", fb.value_pct),
            ("done_prob", fb.done_prob),
        ):
            self.float_pubs[name].publish(Float64(data=float(value)))
        handle = self._feedback_handle
        if handle is not None and handle.is_active:
            handle.publish_feedback(
                RunEpisode.Feedback(
                    step=fb.step,
                    progress_pct=fb.progress_pct,
                    value_pct=fb.value_pct,
                    reward=fb.reward,
                    done_prob=fb.done_prob,
                )
            )

    def _on_recorded(self, finished) -> None:
        """The bag is closed: publish the summary, and the episode for the trainer (training episodes only)."""
        episode = finished.episode
        if self._shutdown.is_set():  # rclpy is shut down: the bag keeps the episode (a trainer can read it back)
            self.get_logger().info(f"{episode.episode_id}: recorded in {finished.bag_path} at shutdown, not published")
            return
        self.summary_pub.publish(
            episode_summary_to_msg(
                episode,
                self.msgs,
                stamp_s=ros_now_s(self),
                duration_s=time.monotonic() - self._started_s,
                bag_path=finished.bag_path,
            )
        )
        if finished.phase == "train" and self.config.send_to_trainer:
            self.episode_pub.publish(episode_to_msg(episode, self.msgs))
            # /episodes is volatile: with no subscriber matched yet the message reaches no one, and the
            # trainer reads the episode back from its bag (trainer_node.bag_rescan_s). Said, so a log shows it.
            subscribers = self.episode_pub.get_subscription_count()
            log = self.get_logger().info if subscribers else self.get_logger().warning
            log(f"{episode.episode_id}: sent on /episodes to {subscribers} subscriber(s)")

    def _publish_rates(self) -> None:
        rate = self.manager.success_rate()
        if rate is not None:
            self.float_pubs["success_rate"].publish(Float64(data=rate))
        step_rate = self.manager.intervention.step_rate
        if step_rate is not None:
            self.float_pubs["intervention_rate"].publish(Float64(data=step_rate))

    # -- teleop -----------------------------------------------------------------------------------

    def _on_joy(self, msg: Joy) -> None:
        self.teleop.on_joy(self.config.robot_id, list(msg.axes), list(msg.buttons))

    def _on_twist(self, msg: Twist) -> None:
        lin, ang = msg.linear, msg.angular
        self.teleop.on_twist(self.config.robot_id, (lin.x, lin.y, lin.z), (ang.x, ang.y, ang.z))

    def _on_takeover(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.teleop.set_takeover(self.config.robot_id, bool(request.data))
        response.success, response.message = True, "teleoperating" if request.data else "policy acts"
        return response

    def destroy_node(self) -> None:
        """Ctrl-C: end the running episode at its next step, let it record, then destroy the node."""
        self._shutdown.set()
        self.manager.cancel()
        CallWaiter.for_node(self).close()  # an episode waiting on a service answer records what it has now
        if self._run_lock.acquire(timeout=SHUTDOWN_WAIT_S):
            self._run_lock.release()
        else:
            self.get_logger().warning(f"the running episode did not end within {SHUTDOWN_WAIT_S} s of shutdown")
        self.manager.loop.close()
        super().destroy_node()


def _backlog_text(gate: BacklogGate, holding: bool) -> str:
    """/diagnostics' word on the trainer's backlog: episodes waiting, the limit, and what autorun does."""
    last = gate.last
    if last is None:
        return "not heard"
    limit = gate.max_waiting_batches * last.episodes_per_update
    state = "holding autorun" if holding else "full: the next autorun episode waits" if gate.closed() else "open"
    return f"{last.waiting_episodes} waiting, limit {limit or 'off'}: {state}"


def _not_run(error: str) -> RunEpisode.Result:
    return RunEpisode.Result(aborted=True, termination="aborted", success=-1, error=error)


def _ended_early(termination: Termination, abort_reason: str | None) -> str:
    """RunEpisode.Result.error of an episode that ran: why it ended early, "" when it ran its course."""
    if termination is Termination.SHUTDOWN:
        return SHUTTING_DOWN
    if termination is Termination.ABORTED:
        return abort_reason or "aborted"
    return ""


def main(args: list[str] | None = None) -> None:
    run_node(EpisodeManagerNode, args, threads=8)


if __name__ == "__main__":
    main()
