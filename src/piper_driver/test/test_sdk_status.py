"""Decoding the PiPER status frame into allow / refuse with a reason."""

import pytest

from piper_driver.sdk_status import Verdict, decode_arm_status


def test_normal_can_control_allows_motion():
    verdict = decode_arm_status(ctrl_mode=0x01, arm_status=0x00, err_code=0)
    assert verdict.verdict is Verdict.OK
    assert not verdict.refuses_motion


@pytest.mark.parametrize(
    ("arm_status", "words"),
    [(0x05, "joint communication"), (0x07, "collision"), (0x0E, "over-temperature"), (0x0A, "other error")],
)
def test_hardware_faults_refuse_motion_and_say_what(arm_status, words):
    verdict = decode_arm_status(0x01, arm_status, 0)
    assert verdict.verdict is Verdict.FAULT
    assert verdict.refuses_motion
    assert words in verdict.message


def test_arm_side_emergency_stop_is_its_own_verdict():
    assert decode_arm_status(0x01, 0x01, 0).verdict is Verdict.ESTOP


@pytest.mark.parametrize("arm_status", [0x02, 0x03, 0x04])
def test_unreachable_targets_do_not_stop_the_loop(arm_status):
    verdict = decode_arm_status(0x01, arm_status, 0)
    assert verdict.verdict is Verdict.TARGET_REJECTED
    assert not verdict.refuses_motion


def test_teaching_mode_refuses_motion():
    verdict = decode_arm_status(0x02, 0x00, 0)
    assert verdict.refuses_motion
    assert "teaching" in verdict.message


def test_error_bits_name_the_joints():
    comm = decode_arm_status(0x01, 0x00, 0b0010_0100 << 8)  # joints 3 and 6 lost
    assert comm.verdict is Verdict.FAULT
    assert "[3, 6]" in comm.message
    limit = decode_arm_status(0x01, 0x00, 0b0000_0010)  # joint 2 at its limit
    assert limit.verdict is Verdict.TARGET_REJECTED
    assert "[2]" in limit.message


def test_unknown_codes_are_faults_not_silence():
    verdict = decode_arm_status(0x01, 0x42, 0)
    assert verdict.verdict is Verdict.FAULT
    assert "0x42" in verdict.message
