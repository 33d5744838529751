"""Byte layouts of the PiPER CAN frames that the fake arm speaks (protocol V2, big-endian).

piper_sdk encodes commands and decodes feedback; a stand-in arm must do the opposite, and the
SDK's parser does not decode every command (0x150, 0x152-0x154, 0x471 are send-only there).
``SdkBackend`` also reads two feedback fields from raw frames (the arm status code, the driver
enable bit), where it needs one frame's stamp and bytes together. The layouts below mirror
``piper_sdk.protocol.protocol_v2.piper_protocol_v2``; the tests check them against that module in
both directions, so a drift in the SDK shows up as a failing test.

Units are the wire's: 0.001 mm, 0.001 deg, 0.001 N·m, raw status codes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Feedback frames (arm -> host).
ID_ARM_STATUS = 0x2A1
ID_END_POSE_XY = 0x2A2
ID_END_POSE_Z_RX = 0x2A3
ID_END_POSE_RY_RZ = 0x2A4
ID_JOINTS_12 = 0x2A5
ID_JOINTS_34 = 0x2A6
ID_JOINTS_56 = 0x2A7
ID_GRIPPER = 0x2A8
ID_LOW_SPEED_FIRST = 0x261  # one per motor, 0x261..0x266: carries the driver enable bit
ID_FIRMWARE = 0x4AF

# Command frames (host -> arm).
ID_MOTION_CTRL_1 = 0x150  # emergency stop / resume
ID_MOTION_CTRL_2 = 0x151  # control mode, move mode, speed rate
ID_CARTESIAN_XY = 0x152
ID_CARTESIAN_Z_RX = 0x153
ID_CARTESIAN_RY_RZ = 0x154
ID_JOINT_CTRL_12 = 0x155
ID_JOINT_CTRL_34 = 0x156
ID_JOINT_CTRL_56 = 0x157
ID_GRIPPER_CTRL = 0x159
ID_MOTOR_ENABLE = 0x471
ID_JOINT_CONFIG = 0x475

FOC_ENABLED_BIT = 1 << 6  # byte 5 of 0x261..0x266: driver enable status
FOC_ERROR_BIT = 1 << 5

ARM_STATUS_ESTOP = 0x01  # 0x2A1 arm status code: emergency stop

ESTOP_STOP = 0x01
ESTOP_RESUME = 0x02
MOTOR_DISABLE = 0x01
MOTOR_ENABLE = 0x02
ALL_MOTORS = 7
CLEAR_ERROR = 0xAE


class FrameError(ValueError):
    """A frame's payload does not have the length its ID needs."""


def _payload(data: bytes | bytearray, frame_id: int) -> bytes:
    data = bytes(data)
    if len(data) != 8:
        raise FrameError(f"frame 0x{frame_id:03X}: expected 8 data bytes, got {len(data)}")
    return data


# --- feedback encoders -------------------------------------------------------------------------


def encode_arm_status(
    ctrl_mode: int, arm_status: int, mode_feed: int, teach_status: int, motion_status: int, err_code: int
) -> bytes:
    """0x2A1: ctrl_mode, arm_status, mode_feed, teach_status, motion_status, trajectory_num, err_code u16."""
    return struct.pack(">BBBBBBH", ctrl_mode, arm_status, mode_feed, teach_status, motion_status, 0, err_code)


def encode_pair_i32(first: int, second: int) -> bytes:
    """End-pose (0x2A2-0x2A4) and joint (0x2A5-0x2A7) frames: two signed 32-bit integers."""
    return struct.pack(">ii", first, second)


def encode_gripper(angle_um: int, effort_mnm: int, status_code: int) -> bytes:
    """0x2A8: opening in 0.001 mm (i32), effort in 0.001 N·m (i16), status code (u8)."""
    return struct.pack(">ihBx", angle_um, effort_mnm, status_code)


def encode_low_speed(enabled: bool, error: bool = False) -> bytes:
    """0x261..0x266: voltage 24.0 V, temperatures 30 °C, driver status with the enable bit."""
    status = (FOC_ENABLED_BIT if enabled else 0) | (FOC_ERROR_BIT if error else 0)
    return struct.pack(">HhbBH", 240, 30, 30, status, 0)


# --- feedback decoders (the fields SdkBackend reads from raw frames) ---------------------------


def decode_arm_status_code(data: bytes | bytearray) -> int:
    """0x2A1: the arm status code (byte 1; ``ARM_STATUS_ESTOP`` while in emergency stop)."""
    return _payload(data, ID_ARM_STATUS)[1]


def decode_low_speed_enabled(data: bytes | bytearray, frame_id: int) -> bool:
    """0x261..0x266: the driver enable bit of the driver status byte (byte 5)."""
    return bool(_payload(data, frame_id)[5] & FOC_ENABLED_BIT)


# --- command decoders --------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionCtrl1:
    emergency_stop: int  # 0 none, 1 stop, 2 resume
    track_ctrl: int
    teach_ctrl: int


@dataclass(frozen=True)
class MotionCtrl2:
    ctrl_mode: int  # 0 standby, 1 CAN control
    move_mode: int  # 0 MOVE P, 1 MOVE J, 2 MOVE L, ...
    speed_rate_pct: int


@dataclass(frozen=True)
class GripperCtrl:
    angle_um: int  # 0.001 mm
    effort_mnm: int  # 0.001 N·m
    code: int  # 0 disable, 1 enable, 2 disable+clear, 3 enable+clear
    set_zero: int


@dataclass(frozen=True)
class MotorEnable:
    motor_num: int  # 1..6, 7 all
    enable_flag: int  # 1 disable, 2 enable


@dataclass(frozen=True)
class JointConfig:
    joint_num: int
    clear_error: bool


def decode_motion_ctrl_1(data: bytes | bytearray) -> MotionCtrl1:
    stop, track, teach = struct.unpack_from(">BBB", _payload(data, ID_MOTION_CTRL_1))
    return MotionCtrl1(stop, track, teach)


def decode_motion_ctrl_2(data: bytes | bytearray) -> MotionCtrl2:
    ctrl_mode, move_mode, rate = struct.unpack_from(">BBB", _payload(data, ID_MOTION_CTRL_2))
    return MotionCtrl2(ctrl_mode, move_mode, rate)


def decode_pair_i32(data: bytes | bytearray, frame_id: int) -> tuple[int, int]:
    """Cartesian (0x152-0x154) and joint (0x155-0x157) commands: two signed 32-bit integers."""
    first, second = struct.unpack(">ii", _payload(data, frame_id))
    return first, second


def decode_gripper_ctrl(data: bytes | bytearray) -> GripperCtrl:
    angle, effort, code, set_zero = struct.unpack(">iHBB", _payload(data, ID_GRIPPER_CTRL))
    return GripperCtrl(angle, effort, code, set_zero)


def decode_motor_enable(data: bytes | bytearray) -> MotorEnable:
    motor, flag = struct.unpack_from(">BB", _payload(data, ID_MOTOR_ENABLE))
    return MotorEnable(motor, flag)


def decode_joint_config(data: bytes | bytearray) -> JointConfig:
    joint, _zero, _acc_valid, _max_acc, clear = struct.unpack_from(">BBBHB", _payload(data, ID_JOINT_CONFIG))
    return JointConfig(joint, clear == CLEAR_ERROR)
