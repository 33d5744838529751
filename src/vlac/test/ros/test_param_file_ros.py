"""The session YAML as a ROS parameter file: real rclpy nodes get what vlac.graph says they get.

Each node of the node list is created in-process with the same ``--params-file`` arguments the
launch file and the whole-graph test give it (the session file, then its overrides), and its
declared config must equal the one ``vlac.graph`` validated: so ROS's section matching
(``/**/driver_node`` for every arm, ``arm_1/driver_node`` for one) is what the graph module assumes,
and two real arms get their own CAN port and camera from one file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed: parameter files need rcl")

from rclpy.node import Node  # noqa: E402

from vlac.graph import ARM_BACKENDS, effective_parameters, node_list  # noqa: E402
from vlac.param_file import read_session_sections, section_class  # noqa: E402
from vlac_core.config import from_mapping  # noqa: E402
from vlac_core.ros.params import declare_config  # noqa: E402

CONFIG = Path(__file__).resolve().parents[4] / "config"


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.mark.parametrize(("name", "arms", "sim"), [("real_two_arms.yaml", 2, False), ("sim_multi_arm.yaml", 2, True)])
def test_every_node_declares_what_the_graph_module_validated(context, tmp_path, name, arms, sim):
    specs = node_list(CONFIG / name, arms, sim=sim)
    sections = read_session_sections(CONFIG / name)  # an overlay's chain applied; ROS reads the merged file
    configs = {}
    for spec in specs:
        overrides = tmp_path / f"{spec.fqn.strip('/').replace('/', '__')}.yaml"
        overrides.write_text(spec.overrides_yaml())
        args = ["--ros-args", "--params-file", str(spec.param_file), "--params-file", str(overrides)]
        node = Node(spec.name, namespace=spec.namespace, context=context, cli_args=args)
        overrides = dict(spec.overrides)
        try:
            cls = section_class(spec.name)
            declared = declare_config(node, cls)
            if spec.name in ARM_BACKENDS:  # the arm node's selector, declared before (and apart from) its section
                backend = node.declare_parameter("backend", "").value
                assert backend == overrides.pop("backend") == ARM_BACKENDS[spec.name], spec.fqn
        finally:
            node.destroy_node()
        expected = {**effective_parameters(sections, spec.fqn, spec.name), **overrides}
        assert declared == from_mapping(cls, expected), spec.fqn
        configs[spec.fqn] = declared
    if not sim:
        assert (configs["/arm_0/driver_node"].can_port, configs["/arm_1/driver_node"].can_port) == ("can0", "can1")
        assert configs["/arm_0/driver_node"].speed_rate_pct == configs["/arm_1/driver_node"].speed_rate_pct == 30
        assert (configs["/arm_0/camera_node"].device, configs["/arm_1/camera_node"].device) == (
            "/dev/video0",
            "/dev/video2",
        )
    manager = configs["/arm_1/episode_manager"]
    assert manager.robot_id == "arm_1" and Path(manager.bag_dir).is_absolute() and manager.bag_dir.endswith("arm_1")
    assert Path(configs["/actor_node"].checkpoint_path).is_absolute()
