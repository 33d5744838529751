"""The core/shell rule, enforced: only code inside a ``ros/`` folder may import ROS.

Every ``.py`` file under ``src/<package>/`` (package code and tests) outside any ``ros/`` directory
is parsed with ``ast``; an ``import``/``from ... import`` of a ROS module anywhere in it (module
level or inside a function) fails the test, as does ``importlib.import_module("rclpy")`` or
``__import__("rclpy")`` with a literal name. Relative imports stay inside the project and pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parents[2]

#: ROS modules by exact top-level name.
ROS_MODULES = frozenset(
    {
        "rclpy",
        "rcl",
        "launch",
        "launch_ros",
        "launch_testing",
        "launch_testing_ros",
        "launch_pytest",
        "cv_bridge",
        "ament_index_python",
        "message_filters",
        "image_transport",
        "rosbag2_py",
        "tf2_ros",
        "tf2_py",
        "tf2_geometry_msgs",
        "rpyutils",
        "ros2cli",
    }
)
#: ROS modules by name prefix (rosidl_runtime_py, rosidl_parser, ...).
ROS_PREFIXES = ("rosidl", "rclpy", "rcl_", "launch_", "ros2")
#: Interface packages by suffix: std_msgs, sensor_msgs, vlac_msgs, std_srvs, builtin_interfaces, ...
ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces", "_actions")


def is_ros_module(name: str) -> bool:
    top = name.split(".")[0]
    return top in ROS_MODULES or top.startswith(ROS_PREFIXES) or top.endswith(ROS_SUFFIXES)


def ros_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, module) of every ROS import in ``source``, wherever it appears."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if is_ros_module(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and is_ros_module(node.module):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and is_ros_module(first.value):
                found.append((node.lineno, first.value))
    return sorted(found)


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def core_files(src_dir: Path) -> list[Path]:
    """Python files under ``src_dir/<package>/`` that are not inside a ``ros`` directory."""
    files = []
    for path in sorted(src_dir.glob("*/**/*.py")):
        parts = path.relative_to(src_dir).parts[:-1]
        if "ros" in parts or any(part.startswith(".") or part == "__pycache__" for part in parts):
            continue
        files.append(path)
    return files


def violations(src_dir: Path) -> list[str]:
    found = []
    for path in core_files(src_dir):
        for line, module in ros_imports(path.read_text(encoding="utf-8"), str(path)):
            found.append(f"{path.relative_to(src_dir)}:{line}: imports {module} outside a ros/ folder")
    return found


def test_no_module_outside_a_ros_folder_imports_ros():
    assert len(core_files(SRC_DIR)) > 10  # the walk really sees the packages
    found = violations(SRC_DIR)
    assert not found, "ROS imports belong in <pkg>/<pkg>/ros/ only:\n" + "\n".join(found)


def test_checker_catches_a_stray_rclpy_import(tmp_path):
    package = tmp_path / "some_pkg" / "some_pkg"
    package.mkdir(parents=True)
    (package / "core.py").write_text("import numpy as np\nimport rclpy\n", encoding="utf-8")
    assert violations(tmp_path) == ["some_pkg/some_pkg/core.py:2: imports rclpy outside a ros/ folder"]


def test_checker_catches_every_form_of_ros_import(tmp_path):
    source = """
import os, launch_ros.actions
from sensor_msgs.msg import Image
from rosidl_runtime_py import message_to_ordereddict
import importlib

def later():
    from vlac_msgs.msg import Observation
    import builtin_interfaces.msg
    importlib.import_module("cv_bridge")
    return __import__("std_srvs.srv")
"""
    assert [module for _, module in ros_imports(source)] == [
        "launch_ros.actions",
        "sensor_msgs.msg",
        "rosidl_runtime_py",
        "vlac_msgs.msg",
        "builtin_interfaces.msg",
        "cv_bridge",
        "std_srvs.srv",
    ]


def test_checker_allows_ros_folders_relative_imports_and_look_alike_names(tmp_path):
    shell = tmp_path / "pkg" / "pkg" / "ros"
    shell.mkdir(parents=True)
    (shell / "node.py").write_text("import rclpy\nfrom sensor_msgs.msg import Image\n", encoding="utf-8")
    ros_tests = tmp_path / "pkg" / "test" / "ros"
    ros_tests.mkdir(parents=True)
    (ros_tests / "test_node.py").write_text("import rclpy\n", encoding="utf-8")
    (tmp_path / "pkg" / "pkg" / "core.py").write_text(
        "from . import ros_names\nimport rosbags\nimport mcap\nimport launcher\nfrom .msgs import X\n", encoding="utf-8"
    )
    assert violations(tmp_path) == []
