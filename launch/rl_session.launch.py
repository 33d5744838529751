"""The RL loop on ROS 2: per arm (namespace arm_k) the arm node (as sim_node, or as driver_node with a
camera node) and an episode manager; shared actor, critic and trainer nodes.

    ros2 launch vlac rl_session.launch.py [sim:=true] [arms:=1] [config:=<file>] [record:=true]

``config`` is a session parameter file (config/*.yaml, installed in share/vlac/config), the same
file ``vlac session --config`` reads. The node list (package, executable, namespace, name,
parameters) is computed by ``vlac.graph.node_list``, which the whole-graph test starts as
processes; this file only maps it onto launch_ros Node actions. Every node gets the file itself as
a ROS parameter file, then per-arm overrides (robot id, seeds, bag folder, absolute paths).
Episodes are started through each arm's ``run_episode`` action
(``ros2 action send_goal /arm_0/run_episode vlac_msgs/action/RunEpisode {}``) or by the manager
itself when episode_manager.autorun_episodes is not 0.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vlac.graph import node_list


def launch_setup(context, *args, **kwargs):
    config_path = LaunchConfiguration("config").perform(context) or os.path.join(
        get_package_share_directory("vlac"), "config", "sim_pick_bowl.yaml"
    )
    specs = node_list(
        config_path,
        int(LaunchConfiguration("arms").perform(context)),
        sim=LaunchConfiguration("sim").perform(context).lower() == "true",
        record=LaunchConfiguration("record").perform(context).lower() == "true",
    )
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            namespace=spec.namespace,
            name=spec.name,
            parameters=[str(spec.param_file), dict(spec.overrides)],
            remappings=list(spec.remappings),
            output="screen",
            emulate_tty=True,
        )
        for spec in specs
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument("sim", default_value="true", description="true: arm_node backend sim; false: sdk"),
            DeclareLaunchArgument("arms", default_value="1", description="number of arms, namespaces arm_0.."),
            DeclareLaunchArgument("config", default_value="", description="session parameter file"),
            DeclareLaunchArgument("record", default_value="true", description="record every episode to a bag"),
            OpaqueFunction(function=launch_setup),
        ]
    )
