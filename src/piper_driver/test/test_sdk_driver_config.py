"""The driver node's parameters, diagnostics and ROS units, tested without ROS."""

import math

import numpy as np
import pytest
import yaml

from piper_driver.camera import CameraConfig
from piper_driver.diagnostics import ERROR, OK, WARN, diagnostic_report
from piper_driver.driver_config import DriverNodeConfig
from piper_driver.robot import ArmState, RobotState, RobotStatus
from piper_driver.ros_units import joint_state_values, pose_in_metres, quaternion_from_rpy_deg
from vlac_core.config import ConfigError, describe, from_mapping, load_section
from vlac_core.types import EndPose


def test_defaults_are_valid_and_split_into_backend_and_envelope_configs():
    config = from_mapping(DriverNodeConfig, {})
    assert config.sdk_config().can_port == "can0"
    assert config.safety_config().max_step_mm == 60.0
    assert config.sdk_config().home_pose == (57.0, 0.0, 215.0, 0.0, 85.0, 0.0)


def test_parameter_file_section_configures_the_node(tmp_path):
    path = tmp_path / "session.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "/arm_0/piper_driver": {
                    "ros__parameters": {"can_port": "can_left", "max_step_mm": 25.0, "gripper_exist": False}
                }
            }
        )
    )
    config = load_section(path, "piper_driver", DriverNodeConfig)
    assert (config.can_port, config.max_step_mm, config.gripper_exist) == ("can_left", 25.0, False)
    assert config.safety_config().max_step_mm == 25.0


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"speed_rate_pct": 0}, "speed_rate_pct"),
        ({"speed_rate_pct": 1.5}, "speed_rate_pct"),
        ({"can_prot": "can1"}, "unknown key"),
        ({"home_pose": [57.0, 0.0, 900.0, 0.0, 85.0, 0.0]}, "home_pose"),
        ({"workspace_min_mm": [0.0, 0.0]}, "workspace_min_mm"),
        ({"gripper_open_mm": 75.0}, "gripper_open_mm"),
        ({"link_timeout_s": math.inf}, "link_timeout_s"),
    ],
)
def test_bad_parameters_fail_at_start_up_naming_the_key(values, words):
    with pytest.raises(ConfigError, match=words):
        from_mapping(DriverNodeConfig, values)


def test_every_parameter_is_documented_once():
    rows = describe(DriverNodeConfig)
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names))
    assert all(description for _, _, description in rows)
    assert {"can_port", "auto_enable", "gripper_exist"} <= set(names)  # piper_ros names
    assert all(description for _, _, description in describe(CameraConfig))


def test_diagnostics_levels_and_counters():
    report = diagnostic_report(
        RobotStatus(RobotState.ERROR, "can0: CAN link lost", {"link_lost": 2, "safety.rejected.stale": 1}),
        extra={"can_port": "can0"},
    )
    assert report.level == ERROR
    assert report.message == "error: can0: CAN link lost"
    assert ("safety.rejected.stale", "1") in report.values
    assert ("can_port", "can0") in report.values
    assert diagnostic_report(RobotStatus(RobotState.ESTOPPED)).level == WARN
    assert diagnostic_report(RobotStatus(RobotState.ENABLED)).level == OK


def test_joint_states_use_piper_ros_names_and_si_units():
    state = ArmState(EndPose(0, 0, 0, 0, 0, 0), (0.1, 0.2, 0.3, 0.4, 0.5, 0.6), gripper_mm=35.0, stamp_s=1.0)
    names, positions = joint_state_values(state, gripper_exist=True)
    assert names == ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "gripper"]
    assert positions[-1] == pytest.approx(0.035)
    assert joint_state_values(state, gripper_exist=False)[0][-1] == "joint6"


def rotation_matrix(q):
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_quaternion_is_rz_ry_rx_of_the_piper_angles():
    roll, pitch, yaw = 30.0, -20.0, 110.0
    r, p, y = np.radians([roll, pitch, yaw])
    rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
    ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    q = quaternion_from_rpy_deg(roll, pitch, yaw)
    assert np.linalg.norm(q) == pytest.approx(1.0)
    np.testing.assert_allclose(rotation_matrix(q), rz @ ry @ rx, atol=1e-12)


def test_pose_in_metres():
    position, orientation = pose_in_metres(EndPose(150.0, -20.0, 300.0, 0.0, 0.0, 90.0))
    assert position == pytest.approx((0.15, -0.02, 0.3))
    assert orientation == pytest.approx((0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)))


def test_monotonic_stamps_keep_their_age_on_the_ros_clock():
    from piper_driver.ros_units import to_ros_time_s

    assert to_ros_time_s(monotonic_stamp_s=99.75, monotonic_now_s=100.0, ros_now_s=1_700_000_000.0) == pytest.approx(
        1_699_999_999.75
    )
