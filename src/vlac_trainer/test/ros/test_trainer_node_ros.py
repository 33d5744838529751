"""The trainer node in a live ROS graph (runs in the ROS 2 docker image; skipped without rclpy).

A tiny policy is trained from episodes published on /episodes; after episodes_per_update of them a
PolicyVersion with version 1 and a loadable checkpoint folder is announced on /policy_version.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed here; runs in the ROS 2 docker image")
pytest.importorskip("vlac_msgs.msg", reason="vlac_msgs is not built (colbuild the workspace in the ROS image)")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, QoSReliabilityPolicy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ppo_trainer_helpers as h  # noqa: E402

from vlac_core.convert import episode_to_msg  # noqa: E402
from vlac_core.ros.message_set import rclpy_message_set  # noqa: E402
from vlac_msgs.msg import Episode, PolicyVersion  # noqa: E402
from vlac_trainer.ros.trainer_node import TrainerNode  # noqa: E402


def test_episodes_in_policy_version_out(tmp_path):
    policy_dir = h.build_policy_dir(tmp_path / "policy")
    rclpy.init()
    node = TrainerNode(
        parameter_overrides=[
            Parameter("checkpoint_path", value=str(policy_dir)),
            Parameter("output_dir", value=str(tmp_path / "out")),
            Parameter("episodes_per_update", value=2),
            Parameter("minibatch_size", value=4),
            Parameter("update_epochs", value=1),
            Parameter("max_translation_mm", value=100),
        ]
    )
    peer = rclpy.create_node("peer")
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    versions = []
    sub = peer.create_subscription(PolicyVersion, "/policy_version", versions.append, qos)
    pub = peer.create_publisher(Episode, "/episodes", qos)
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.add_node(peer)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        # Volatile topics: publish only once both ends are matched (discovery takes longer on a loaded machine).
        deadline = time.monotonic() + 60
        while (pub.get_subscription_count() < 1 or sub.get_publisher_count() < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        msgs = rclpy_message_set()
        for i in range(2):
            pub.publish(episode_to_msg(h.episode(f"e{i}", [0.2, -0.1], seed=i), msgs))
        deadline = time.monotonic() + 120
        while not versions and time.monotonic() < deadline:
            time.sleep(0.2)
        assert versions and versions[0].version == 1
        assert (Path(versions[0].checkpoint_path) / "value_head.safetensors").exists()
    finally:
        executor.shutdown()
        node.destroy_node()
        peer.destroy_node()
        rclpy.try_shutdown()
