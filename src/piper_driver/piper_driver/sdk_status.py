"""What the PiPER's status frame (0x2A1) means for motion: decoded into a verdict with a reason.

The arm reports a control mode, an arm status code and a 16-bit error field. Some codes are
faults that must stop the loop until a person looks (joint communication lost, collision,
over-temperature); some only say the last target was unreachable (no IK solution, singularity,
joint limit), which the next action can fix; teaching mode means someone is moving the arm by
hand. Codes and bit meanings follow piper_sdk's ``ArmMsgFeedbackStatus``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

CTRL_MODES = {
    0x00: "standby",
    0x01: "CAN control",
    0x02: "teaching",
    0x03: "Ethernet control",
    0x04: "Wi-Fi control",
    0x05: "remote control",
    0x06: "linkage teaching input",
    0x07: "offline trajectory",
}

ARM_STATUS_TEXT = {
    0x00: "normal",
    0x01: "emergency stop",
    0x02: "no IK solution for the target",
    0x03: "target at a singularity",
    0x04: "target beyond a joint limit",
    0x05: "joint communication error",
    0x06: "joint brake not released",
    0x07: "collision detected",
    0x08: "over-speed while drag teaching",
    0x09: "joint status error",
    0x0A: "other error",
    0x0B: "teaching: recording",
    0x0C: "teaching: replaying",
    0x0D: "teaching: paused",
    0x0E: "main controller over-temperature",
    0x0F: "release resistor over-temperature",
}

_TARGET_CODES = {0x02, 0x03, 0x04}
_TEACHING_CODES = {0x0B, 0x0C, 0x0D}
_TEACHING_CTRL_MODES = {0x02, 0x06}


class Verdict(str, Enum):
    OK = "ok"  # motion allowed
    TARGET_REJECTED = "target_rejected"  # the arm refused the last target; the next one may do
    ESTOP = "estop"  # the arm itself reports an emergency stop
    FAULT = "fault"  # refuse motion until cleared


@dataclass(frozen=True)
class ArmStatusVerdict:
    verdict: Verdict
    message: str

    @property
    def refuses_motion(self) -> bool:
        return self.verdict in (Verdict.ESTOP, Verdict.FAULT)


def _joint_bits(bits: int) -> list[int]:
    return [joint for joint in range(1, 7) if bits & (1 << (joint - 1))]


def decode_arm_status(ctrl_mode: int, arm_status: int, err_code: int) -> ArmStatusVerdict:
    """Turn the raw fields of frame 0x2A1 into a verdict and a sentence for diagnostics.

    ``err_code``'s low byte flags joints past their angle limit, its high byte joints whose
    communication failed (bit 0 is joint 1).
    """
    limit_joints = _joint_bits(err_code & 0xFF)
    comm_joints = _joint_bits((err_code >> 8) & 0xFF)
    status_text = ARM_STATUS_TEXT.get(arm_status, f"unknown status 0x{arm_status:02X}")
    mode_text = CTRL_MODES.get(ctrl_mode, f"unknown mode 0x{ctrl_mode:02X}")
    if comm_joints:
        return ArmStatusVerdict(Verdict.FAULT, f"joint communication error on joints {comm_joints}")
    if arm_status == 0x01:
        return ArmStatusVerdict(Verdict.ESTOP, "arm reports emergency stop")
    if ctrl_mode in _TEACHING_CTRL_MODES or arm_status in _TEACHING_CODES:
        return ArmStatusVerdict(Verdict.FAULT, f"arm is in {mode_text} mode ({status_text}): hands off the loop")
    if arm_status in _TARGET_CODES:
        return ArmStatusVerdict(Verdict.TARGET_REJECTED, f"arm rejected the last target: {status_text}")
    if arm_status != 0x00:
        return ArmStatusVerdict(Verdict.FAULT, f"arm fault: {status_text} (code 0x{arm_status:02X})")
    if limit_joints:
        return ArmStatusVerdict(Verdict.TARGET_REJECTED, f"joints {limit_joints} at their angle limit")
    return ArmStatusVerdict(Verdict.OK, f"{mode_text}, normal")
