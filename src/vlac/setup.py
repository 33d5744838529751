from glob import glob

from setuptools import find_packages, setup

package_name = "vlac"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        # The workspace-level launch/, config/ and rviz/ folders are installed with the bring-up package,
        # so `ros2 launch vlac rl_session.launch.py` and `vlac session --config` find them in share/vlac.
        ("share/" + package_name + "/launch", glob("../../launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("../../config/*.yaml") + glob("../../config/*.perspective")),
        ("share/" + package_name + "/rviz", glob("../../rviz/*")),
        # The shipped sim models (a few MB), so the installed configs' relative models/ paths resolve.
        ("share/" + package_name + "/models/sim_critic", glob("../../models/sim_critic/*")),
        ("share/" + package_name + "/models/sim_actor", glob("../../models/sim_actor/*")),
    ],
    install_requires=["setuptools"],
    extras_require={"test": ["pytest"]},
    zip_safe=True,
    maintainer="VLAC ROS maintainers",
    maintainer_email="maintainers@vlac-ros.dev",
    description=(
        "Bring-up of the VLAC RL stack: episode manager, human in the loop, recording, the vlac"
        " command line, launch and config files."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "vlac = vlac.cli:console_main",
            "episode_manager_node = vlac.ros.episode_manager_node:main",
        ]
    },
)
