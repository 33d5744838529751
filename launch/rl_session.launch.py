"""The RL loop on ROS 2: per arm (namespace arm_k) a sim node (or driver + camera) and an episode
manager; shared actor, critic and trainer nodes.

    ros2 launch vlac rl_session.launch.py [sim:=true] [arms:=1] [config:=<file>] [record:=true]

``config`` is a session parameter file (config/*.yaml, installed in share/vlac/config); each node
takes its own section (sim_node, driver_node, camera_node, actor_node, critic_node, trainer_node,
episode_manager), the same file ``vlac session --config`` reads. Per-arm values (robot_id, scene
seed, bag folder) are set here on top of the section. Episodes are started through each arm's
``run_episode`` action (``ros2 action send_goal /arm_0/run_episode vlac_msgs/action/RunEpisode {}``)
or by the manager itself when episode_manager.autorun_episodes is not 0.
"""

from __future__ import annotations

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

#: console scripts (package, executable) each node runs; checked against the setup.py files by a test.
EXECUTABLES = {
    "sim_node": ("piper_driver", "sim_node"),
    "driver_node": ("piper_driver", "driver_node"),
    "camera_node": ("piper_driver", "camera_node"),
    "episode_manager": ("vlac", "episode_manager_node"),
    "actor_node": ("vlac_actor", "actor_node"),
    "critic_node": ("vlac_critic", "critic_node"),
    "trainer_node": ("vlac_trainer", "trainer_node"),
}


def section(config: dict, name: str) -> dict:
    """The ros__parameters of ``name`` in a parameter file ({} when the file has no such section)."""
    for key, body in config.items():
        if key.rsplit("/", 1)[-1] == name:
            return dict((body or {}).get("ros__parameters") or {})
    return {}


def node(config: dict, name: str, namespace: str = "", **overrides) -> Node:
    package, executable = EXECUTABLES[name]
    return Node(
        package=package,
        executable=executable,
        name=name,
        namespace=namespace,
        output="screen",
        emulate_tty=True,
        parameters=[{**section(config, name), **overrides}],
    )


def arm_nodes(config: dict, k: int, sim: bool, record: bool) -> list[Node]:
    namespace = f"arm_{k}"
    manager = section(config, "episode_manager")
    bag_dir = os.path.join(manager.get("bag_dir", "episodes"), namespace)
    nodes = [
        node(
            config,
            "episode_manager",
            namespace,
            robot_id=namespace,
            record=record,
            bag_dir=bag_dir,
            scene_seed=int(manager.get("scene_seed", 0)) + 100000 * k,
        )
    ]
    if sim:
        nodes.append(
            node(config, "sim_node", namespace, seed=int(section(config, "sim_node").get("seed", 0)) + 100000 * k)
        )
    else:
        nodes += [node(config, "driver_node", namespace), node(config, "camera_node", namespace)]
    return nodes


def launch_setup(context, *args, **kwargs):
    config_path = LaunchConfiguration("config").perform(context)
    if not config_path:
        config_path = os.path.join(get_package_share_directory("vlac"), "config", "sim_pick_bowl.yaml")
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    arms = int(LaunchConfiguration("arms").perform(context))
    if arms < 1:
        raise ValueError(f"arms:={arms}: expected at least 1 arm")
    sim = LaunchConfiguration("sim").perform(context).lower() == "true"
    record = LaunchConfiguration("record").perform(context).lower() == "true"
    shared = [node(config, "actor_node"), node(config, "critic_node"), node(config, "trainer_node")]
    return shared + [n for k in range(arms) for n in arm_nodes(config, k, sim, record)]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument("sim", default_value="true", description="simulated arms (sim_node) or real ones"),
            DeclareLaunchArgument("arms", default_value="1", description="number of arms, namespaces arm_0.."),
            DeclareLaunchArgument("config", default_value="", description="session parameter file"),
            DeclareLaunchArgument("record", default_value="true", description="record every episode to a bag"),
            OpaqueFunction(function=launch_setup),
        ]
    )
