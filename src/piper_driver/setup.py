from setuptools import find_packages, setup

package_name = "piper_driver"

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
        "AgileX PiPER driver: piper_sdk and MuJoCo backends behind one interface, safety envelope,"
        " simulated tasks, the arm node (backend sdk or sim) and the camera node."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "arm_node = piper_driver.ros.arm_node:main",
            "camera_node = piper_driver.ros.camera_node:main",
        ]
    },
)
