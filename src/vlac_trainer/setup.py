from setuptools import find_packages, setup

package_name = "vlac_trainer"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    extras_require={"test": ["pytest"]},
    zip_safe=True,
    maintainer="VLAC ROS maintainers",
    maintainer_email="maintainers@vlac-ros.dev",
    description=(
        "VLAC trainer: critic, behaviour-cloning and PPO training loops, buffers and checkpoints, trainer node."
    ),
    license="Apache-2.0",
    entry_points={"console_scripts": ["trainer_node = vlac_trainer.ros.trainer_node:main"]},
)
