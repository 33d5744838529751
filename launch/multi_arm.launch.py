"""Several arms sharing one actor pool, critic and trainer: rl_session.launch.py with four arms
(namespaces arm_0..arm_3) and config/sim_multi_arm.yaml by default.

    ros2 launch vlac multi_arm.launch.py [arms:=4] [sim:=true] [config:=<file>] [record:=true]
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("vlac")
    return LaunchDescription(
        [
            DeclareLaunchArgument("arms", default_value="4", description="number of arms, namespaces arm_0.."),
            DeclareLaunchArgument("sim", default_value="true", description="true: arm_node backend sim; false: sdk"),
            DeclareLaunchArgument(
                "config",
                default_value=os.path.join(share, "config", "sim_multi_arm.yaml"),
                description="parameter file",
            ),
            DeclareLaunchArgument("record", default_value="true", description="record every episode to a bag"),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(os.path.join(share, "launch", "rl_session.launch.py")),
                launch_arguments={
                    "arms": LaunchConfiguration("arms"),
                    "sim": LaunchConfiguration("sim"),
                    "config": LaunchConfiguration("config"),
                    "record": LaunchConfiguration("record"),
                }.items(),
            ),
        ]
    )
