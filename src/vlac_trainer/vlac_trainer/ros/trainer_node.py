"""Trainer node: PPO beside collection (the shell around ``vlac_trainer.online.async_trainer``).

Interfaces
  subscribes /episodes (vlac_msgs/Episode, reliable, depth 100): finished episodes from every arm's
             episode manager, sent only after their bags are closed; routed into the rollout or
             demo buffer at once, trained on by the trainer thread (arms never wait).
  publishes  /policy_version (vlac_msgs/PolicyVersion, reliable, transient-local, depth 1): the
             version training starts from, once at start (after a restart: the resumed one), then
             each new version once its folder is complete on disk. Transient-local keeps the latest
             for late joiners: an actor that starts late or restarts loads it, so after a trainer
             restart actor and trainer agree without an operator. The actor node loads it and swaps
             replicas.
             /trainer_backlog (vlac_msgs/TrainerBacklog, reliable, transient-local, depth 1): how many
             rollout episodes wait for an update, and how many an update takes; once at start (after
             the bags are read back), then at every change (an episode received, a batch taken).
             Episode managers with ``max_waiting_batches`` > 0 hold their next autorun episode on it
             (backpressure, as ``session`` does in one process).
             trainer/<name> (std_msgs/Float64, per update, for rqt_plot): loss, pg_loss, value_loss,
             entropy, approx_kl, clipfrac, explained_variance, grad_norm, return_mean, prior_kl (the KL
             anchor or log_prior_kl on), lesson_norm, lesson_cos_to_past, lesson_agreement (lesson_agreement on),
             policy_version (``update_log.TOPIC_STATS``); a figure undefined for an update is not
             published. /diagnostics.
  services   ~/save (std_srvs/Trigger): write a checkpoint now.
On start it resumes from ``output_dir/trainer`` when a checkpoint is there (policy, optimizer,
buffers, counters), then reads back every finished episode bag in ``bag_dirs`` (each arm's
``<bag_dir>/train``; ``vlac.graph`` sets them) that the checkpoint does not hold: episodes received
after its last save, or sent while it was down. So a trainer killed at any moment (SIGKILL, no
save) and restarted loses no stored episode. It subscribes to /episodes first, so nothing falls
between the two; an episode it already holds (read back and also received) is taken once. While
it runs it looks again every ``bag_rescan_s`` (``wiring.LateBags``): a finished bag still missing
one rescan later is read back (its message never came: /episodes is volatile, and an episode sent
before the arm's publisher matched this subscription reaches no one), counted as
``late_bag_episodes`` on /diagnostics with a warning naming it.
On shutdown it finishes the running update and saves. A missing starting
checkpoint fails the node at start with a message naming the parameter and the path. A malformed
episode is dropped with an error in the log and counted (``malformed_episodes`` on /diagnostics);
the node keeps serving.

Built by ``vlac_trainer.online.wiring`` exactly as the embedded session builds it. Parameters:
``vlac_trainer.online.trainer_config.TrainerConfig`` (declared once).
"""

from __future__ import annotations

from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from vlac_core.convert import episode_from_msg
from vlac_core.ros.diagnostics import diagnostics_publisher, publish_diagnostics
from vlac_core.ros.message_set import rclpy_message_set
from vlac_core.ros.params import declare_config
from vlac_core.ros.qos import EPISODES_QOS, POLICY_VERSION_QOS, TRAINER_BACKLOG_QOS
from vlac_core.ros.spin import run_node
from vlac_msgs.msg import Episode, PolicyVersion, TrainerBacklog
from vlac_trainer.online.ppo_trainer import UpdateStats
from vlac_trainer.online.trainer_config import TrainerConfig
from vlac_trainer.online.update_log import TOPIC_STATS, topic_values
from vlac_trainer.online.wiring import LateBags, build_trainer, reingest_missing, start_point


class TrainerNode(Node):
    def __init__(self, node_name: str = "trainer", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.config: TrainerConfig = declare_config(self, TrainerConfig)
        cfg, self.msgs = self.config, rclpy_message_set()
        out = Path(cfg.output_dir or "trainer_out")
        self.malformed_episodes = 0
        self.version_pub = self.create_publisher(PolicyVersion, "/policy_version", POLICY_VERSION_QOS)
        self.stat_pubs = {name: self.create_publisher(Float64, f"trainer/{name}", 10) for name in TOPIC_STATS}
        self.backlog_pub = self.create_publisher(TrainerBacklog, "/trainer_backlog", TRAINER_BACKLOG_QOS)
        start = start_point(cfg, out)  # ConfigError naming the path when the checkpoint is missing
        self.trainer = build_trainer(
            cfg, out, start, self._announce, on_update=self._on_update, on_backlog=self._publish_backlog
        )
        if start.resumed:
            self.get_logger().info(f"resumed at policy version {start.policy_version} from {out / 'trainer'}")
        self._announce(self.trainer.status.policy_version, self.trainer.policy_path)
        # Subscribed before the bags are read: an episode finished meanwhile is queued, not missed
        # (callbacks run once the node spins, after this constructor; _on_episode skips known ones).
        # The rescan shares the subscription's group: a bag and its message are never taken twice at once.
        episodes_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Episode, "/episodes", self._on_episode, EPISODES_QOS, callback_group=episodes_group)
        # Bags still being written belong to running episodes: they arrive on /episodes when finished.
        self.reingested = reingest_missing(self.trainer, cfg.bag_dirs, self.get_logger().info, unfinished=False)
        self.late_bags = LateBags(self.trainer, cfg.bag_dirs)
        self.late_bag_episodes = 0
        if cfg.bag_rescan_s > 0 and cfg.bag_dirs:
            self.create_timer(cfg.bag_rescan_s, self._read_back_late_bags, callback_group=episodes_group)
        self._publish_backlog(self.trainer.backlog)  # a restored or empty buffer: arms learn where it stands
        self.trainer.start()
        self.create_service(Trigger, "~/save", self._on_save)
        self.diagnostics_pub = diagnostics_publisher(self)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"training policy version {start.policy_version} from {start.policy_path}; output in {out}"
        )

    def _announce(self, version: int, path: str) -> None:
        msg = PolicyVersion(version=version, checkpoint_path=path)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.version_pub.publish(msg)

    def _publish_backlog(self, waiting: int) -> None:
        msg = TrainerBacklog(
            waiting_episodes=waiting,
            episodes_per_update=self.config.episodes_per_update,
            policy_version=self.trainer.status.policy_version,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.backlog_pub.publish(msg)

    def _on_episode(self, msg: Episode) -> None:
        try:
            episode = episode_from_msg(msg)
        except ValueError as error:  # ConversionError, ValidationError: the message names the field
            self.malformed_episodes += 1
            self.get_logger().error(f"/episodes: malformed episode dropped: {error}")
            return
        if not self.trainer.missing_episode_ids([episode.episode_id]):
            self.get_logger().info(f"{episode.episode_id}: already read back from its bag, not taken twice")
            return
        route = self.trainer.submit(episode)
        self.get_logger().info(f"{episode.episode_id} ({episode.robot_id}, {episode.length} steps) -> {route.value}")

    def _read_back_late_bags(self) -> None:
        self.late_bag_episodes += self.late_bags.scan(self.get_logger().warning)

    def _on_update(self, stats: UpdateStats) -> None:
        for name, value in topic_values(stats).items():
            self.stat_pubs[name].publish(Float64(data=value))

    def _on_save(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = True, str(self.trainer.save_checkpoint())
        return response

    def _publish_diagnostics(self) -> None:
        status = self.trainer.status
        values = {
            "policy_version": status.policy_version,
            "updates": status.updates,
            "episodes_received": status.episodes_received,
            "rollout_episodes": len(self.trainer.rollouts),
            "demo_episodes": len(self.trainer.demos),
            "success_episodes": len(self.trainer.successes) if self.trainer.successes is not None else 0,
            "failed_updates": status.failed_updates,
            "malformed_episodes": self.malformed_episodes,
            "reingested_episodes": self.reingested,
            "late_bag_episodes": self.late_bag_episodes,
        }
        level = DiagnosticStatus.WARN if status.last_error else DiagnosticStatus.OK
        diag = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: PPO trainer",
            message=status.last_error or "training",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        publish_diagnostics(self, self.diagnostics_pub, diag)

    def destroy_node(self) -> None:
        self.trainer.stop(checkpoint=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(TrainerNode, args, threads=None)


if __name__ == "__main__":
    main()
