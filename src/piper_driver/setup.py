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
        " simulated tasks, driver, sim and camera nodes."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "driver_node = piper_driver.ros.driver_node:main",
            "camera_node = piper_driver.ros.camera_node:main",
            "sim_node = piper_driver.ros.sim_node:main",
        ]
    },
)
