"""tools/repair_ros_wheel_cmake.py: the wheels' CMake exports pointed at this interpreter, idempotently."""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path

import numpy
import pytest

ROOT = Path(__file__).resolve().parents[3]

# As shipped in ros-std-msgs 5.3.6 (the manylinux build host's folders).
WHEEL_LINE = (
    '  INTERFACE_INCLUDE_DIRECTORIES "/opt/python/cp311-cp311/include/python3.11;'
    '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"\n'
)


@pytest.fixture(scope="module")
def repair_tool():
    spec = importlib.util.spec_from_file_location(
        "repair_ros_wheel_cmake", ROOT / "tools" / "repair_ros_wheel_cmake.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_foreign_include_folders_are_replaced_once_and_other_files_left_alone(repair_tool, tmp_path):
    export = tmp_path / "share" / "std_msgs" / "cmake" / "export_std_msgs__rosidl_generator_pyExport.cmake"
    export.parent.mkdir(parents=True)
    export.write_text("set_target_properties(x PROPERTIES\n" + WHEEL_LINE + ")\n")
    untouched = tmp_path / "share" / "rcl" / "cmake" / "rclExport.cmake"
    untouched.parent.mkdir(parents=True)
    untouched.write_text('  INTERFACE_INCLUDE_DIRECTORIES "${_IMPORT_PREFIX}/include"\n')

    assert repair_tool.repair(tmp_path) == [export]
    text = export.read_text()
    assert "/opt/python" not in text
    assert f'"{sysconfig.get_paths()["include"]};{numpy.get_include()}"' in text
    assert repair_tool.repair(tmp_path) == []  # idempotent
    assert export.read_text() == text


def test_a_prefix_without_share_is_refused(repair_tool, tmp_path, capsys):
    assert repair_tool.main(["repair", str(tmp_path)]) == 2
    assert "not a ROS wheel prefix" in capsys.readouterr().err
