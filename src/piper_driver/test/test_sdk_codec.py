"""The fake arm's frame layouts agree with piper_sdk's own encoder and decoder, byte for byte."""

import can
import pytest
from piper_sdk.piper_msgs.msg_v2 import (
    ArmMsgGripperCtrl,
    ArmMsgMotionCtrl_1,
    ArmMsgMotionCtrl_2,
    ArmMsgMotionCtrlCartesian,
    ArmMsgMotorEnableDisableConfig,
    ArmMsgType,
    PiperMessage,
)
from piper_sdk.protocol.protocol_v2 import C_PiperParserV2

from piper_driver import can_codec as cc

PARSER = C_PiperParserV2()


def sdk_decode(frame_id: int, data: bytes) -> PiperMessage:
    msg = PiperMessage()
    assert PARSER.DecodeMessage(can.Message(arbitration_id=frame_id, data=data, timestamp=1.0), msg)
    return msg


def sdk_encode(msg: PiperMessage) -> tuple[int, bytes]:
    frame = can.Message()
    assert PARSER.EncodeMessage(msg, frame)
    return frame.arbitration_id, bytes(frame.data)


def test_sdk_decodes_arm_status_frame_field_by_field():
    msg = sdk_decode(cc.ID_ARM_STATUS, cc.encode_arm_status(0x01, 0x07, 0x00, 0x00, 0x01, 0x0203))
    status = msg.arm_status_msgs
    assert (int(status.ctrl_mode), int(status.arm_status), int(status.motion_status)) == (0x01, 0x07, 0x01)
    assert status.err_code == 0x0203


@pytest.mark.parametrize(
    ("frame_id", "fields"),
    [
        (cc.ID_END_POSE_XY, ("X_axis", "Y_axis")),
        (cc.ID_END_POSE_Z_RX, ("Z_axis", "RX_axis")),
        (cc.ID_END_POSE_RY_RZ, ("RY_axis", "RZ_axis")),
    ],
)
def test_sdk_decodes_end_pose_frames_as_signed_big_endian(frame_id, fields):
    msg = sdk_decode(frame_id, cc.encode_pair_i32(-123_456, 2_000_001))
    assert (getattr(msg.arm_end_pose, fields[0]), getattr(msg.arm_end_pose, fields[1])) == (-123_456, 2_000_001)


def test_sdk_decodes_joint_and_gripper_frames():
    assert sdk_decode(cc.ID_JOINTS_56, cc.encode_pair_i32(-70_000, 120_000)).arm_joint_feedback.joint_5 == -70_000
    gripper = sdk_decode(cc.ID_GRIPPER, cc.encode_gripper(65_432, -300, 0x40)).gripper_feedback
    assert (gripper.grippers_angle, gripper.grippers_effort, gripper.status_code) == (65_432, -300, 0x40)


def test_low_speed_frame_carries_the_enable_bit_the_sdk_reads():
    on = sdk_decode(cc.ID_LOW_SPEED_FIRST + 2, cc.encode_low_speed(enabled=True)).arm_low_spd_feedback_3
    off = sdk_decode(cc.ID_LOW_SPEED_FIRST + 2, cc.encode_low_speed(enabled=False)).arm_low_spd_feedback_3
    assert on.foc_status.driver_enable_status is True
    assert off.foc_status.driver_enable_status is False


def test_backend_reads_the_fields_the_sdk_decodes_from_raw_feedback():
    """SdkBackend reads the e-stop code and the enable bit from raw frames: the same fields as the SDK."""
    status = cc.encode_arm_status(0x01, cc.ARM_STATUS_ESTOP, 0x00, 0x00, 0x00, 0)
    assert cc.decode_arm_status_code(status) == int(sdk_decode(cc.ID_ARM_STATUS, status).arm_status_msgs.arm_status)
    for enabled in (True, False):
        frame_id = cc.ID_LOW_SPEED_FIRST + 5
        data = cc.encode_low_speed(enabled=enabled, error=True)
        sdk_bit = sdk_decode(frame_id, data).arm_low_spd_feedback_6.foc_status.driver_enable_status
        assert cc.decode_low_speed_enabled(data, frame_id) is sdk_bit is enabled


def test_commands_encoded_by_the_sdk_decode_to_the_same_values():
    msg = PiperMessage()
    msg.type_ = ArmMsgType.PiperMsgMotionCtrl_1
    msg.arm_motion_ctrl_1 = ArmMsgMotionCtrl_1(0x01, 0x00, 0x00)
    assert cc.decode_motion_ctrl_1(sdk_encode(msg)[1]).emergency_stop == cc.ESTOP_STOP

    msg.type_ = ArmMsgType.PiperMsgMotionCtrl_2
    msg.arm_motion_ctrl_2 = ArmMsgMotionCtrl_2(0x01, 0x00, 37, 0x00)
    assert cc.decode_motion_ctrl_2(sdk_encode(msg)[1]) == cc.MotionCtrl2(0x01, 0x00, 37)

    msg.type_ = ArmMsgType.PiperMsgMotionCtrlCartesian_2
    msg.arm_motion_ctrl_cartesian = ArmMsgMotionCtrlCartesian(Z_axis=-5_000, RX_axis=179_999)
    frame_id, data = sdk_encode(msg)
    assert frame_id == cc.ID_CARTESIAN_Z_RX
    assert cc.decode_pair_i32(data, frame_id) == (-5_000, 179_999)

    msg.type_ = ArmMsgType.PiperMsgGripperCtrl
    msg.arm_gripper_ctrl = ArmMsgGripperCtrl(70_000, 1_000, 0x01, 0x00)
    assert cc.decode_gripper_ctrl(sdk_encode(msg)[1]) == cc.GripperCtrl(70_000, 1_000, 0x01, 0x00)

    msg.type_ = ArmMsgType.PiperMsgMotorEnableDisableConfig
    msg.arm_motor_enable = ArmMsgMotorEnableDisableConfig(7, 0x02)
    frame_id, data = sdk_encode(msg)
    assert frame_id == cc.ID_MOTOR_ENABLE
    assert cc.decode_motor_enable(data) == cc.MotorEnable(7, cc.MOTOR_ENABLE)


def test_short_frame_is_rejected_naming_its_id():
    with pytest.raises(cc.FrameError, match=r"0x159.*got 3"):
        cc.decode_gripper_ctrl(b"\x00\x01\x02")
