from setuptools import find_packages, setup

package_name = "vlac_actor"

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
    description="VLAC actor: structured action decoding with log-probs, value head, replica pool, actor node.",
    license="Apache-2.0",
    entry_points={"console_scripts": ["actor_node = vlac_actor.ros.actor_node:main"]},
)
