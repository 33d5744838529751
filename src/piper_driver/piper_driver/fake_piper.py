"""A stand-in PiPER on python-can's ``virtual`` bus, for tests and demos without an arm.

It answers the SDK's command frames (0x150-0x159, 0x47x, 0x4AF) and streams the feedback frames
the SDK decodes (0x2A1-0x2A8 and the per-motor 0x261-0x266 that carry the enable bits), so
``SdkBackend`` runs unchanged against it: the real piper_sdk parses real frames.

The arm is a first-order system in Cartesian space: once enabled, in CAN control and MOVE P,
its end pose approaches the last commanded pose with time constant ``time_constant_s``. It has
no inverse kinematics: joint 1 follows the base yaw (atan2(y, x), as on the real arm) and joints
2-6 stay at a fixed posture; like the real arm it reports all joints as 0 in standby. Faults can
be injected: ``go_silent`` (link loss), ``never_enable`` (enable time-out), ``set_fault``,
``driver_feedback = False`` (driver frames late: the real arm sends them slower than its status) and
``hold_resets`` (a controller reset that takes as long as the test wants).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import can

from piper_driver import can_codec as cc

#: Joints 2-6 while enabled, 0.001 deg (a plausible reaching posture; the fake has no IK).
_POSTURE_MDEG = (80_000, -60_000, 0, 30_000, 0)
_FIRMWARE = b"S-V1.6-3"


@dataclass
class FakePiperState:
    """Everything the fake arm knows, in wire units (0.001 mm, 0.001 deg)."""

    pose_um: list[float] = field(default_factory=lambda: [150_000.0, 0.0, 250_000.0, 180_000.0, 0.0, 180_000.0])
    target_um: list[float] | None = None
    gripper_um: float = 0.0
    gripper_target_um: float = 0.0
    enabled: bool = False
    estopped: bool = False
    ctrl_mode: int = 0x00
    move_mode: int = 0x00
    speed_rate_pct: int = 0
    arm_status: int = 0x00
    err_code: int = 0


class FakePiper:
    """A thread that plays a PiPER on ``can.Bus(interface="virtual", channel=channel)``.

    Use as a context manager, or call ``start``/``stop``. ``period_s`` is the feedback period
    (the real arm streams at 200 Hz; 50 Hz keeps tests light on a shared machine).
    """

    def __init__(
        self,
        channel: str,
        period_s: float = 0.02,
        time_constant_s: float = 0.05,
        never_enable: bool = False,
    ) -> None:
        if period_s <= 0 or time_constant_s <= 0:
            raise ValueError(f"period_s and time_constant_s must be > 0, got {period_s}, {time_constant_s}")
        self.channel = channel
        self.period_s = period_s
        self.time_constant_s = time_constant_s
        self.never_enable = never_enable
        self.driver_feedback = True  # send the per-motor driver frames 0x261-0x266 (their enable bits)
        self.state = FakePiperState()
        self.commands: list[tuple[int, bytes]] = []  # every command frame heard, in order
        self._lock = threading.Lock()
        self._silent = threading.Event()
        self._feedback_lock = threading.Lock()  # held while a feedback batch is checked against _silent and sent
        self._stop = threading.Event()
        self._bus: can.BusABC | None = None
        self._thread: threading.Thread | None = None
        self._staged: dict[int, tuple[int, int]] = {}
        self._pending_firmware = False
        self._resets_held = False
        self._reset_pending = False  # an e-stop reset heard while resets are held

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> FakePiper:
        self._bus = can.Bus(interface="virtual", channel=self.channel, receive_own_messages=False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"fake-piper-{self.channel}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def __enter__(self) -> FakePiper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- fault injection ---------------------------------------------------------------------

    def go_silent(self) -> None:
        """Stop sending feedback (a pulled cable, a powered-off arm); commands are still heard.

        Returns once no frame can follow: a batch the feedback thread was sending finishes first. Without the
        wait, a thread preempted between its check and its send on a loaded host sent one more batch after
        the caller saw the link lost, and the link "recovered" under a test that expected it lost."""
        with self._feedback_lock:
            self._silent.set()

    def speak(self) -> None:
        """Resume feedback after ``go_silent``."""
        self._silent.clear()

    def hold_resets(self) -> None:
        """Hear e-stop resets (0x150 resume) but act on them only at ``release_resets``: the stop (and the
        enable bits from before it) stays in the feedback meanwhile, as while a real controller resets."""
        with self._lock:
            self._resets_held = True

    def release_resets(self) -> None:
        """Act on a reset heard while held (now), and on later ones at once."""
        with self._lock:
            self._resets_held = False
            if self._reset_pending:
                self._reset_pending = False
                self._reset_controller()

    def set_fault(self, arm_status: int, err_code: int = 0) -> None:
        with self._lock:
            self.state.arm_status = arm_status
            self.state.err_code = err_code

    def place(self, pose_mm_deg: tuple[float, ...], gripper_mm: float = 0.0) -> None:
        """Put the arm somewhere (as if moved by hand while disabled)."""
        with self._lock:
            self.state.pose_um = [v * 1000.0 for v in pose_mm_deg]
            self.state.target_um = None
            self.state.gripper_um = self.state.gripper_target_um = gripper_mm * 1000.0

    # --- readings for tests (physical units) -------------------------------------------------

    @property
    def pose_mm_deg(self) -> tuple[float, ...]:
        with self._lock:
            return tuple(v / 1000.0 for v in self.state.pose_um)

    @property
    def gripper_mm(self) -> float:
        with self._lock:
            return self.state.gripper_um / 1000.0

    def command_ids(self) -> list[int]:
        with self._lock:
            return [frame_id for frame_id, _ in self.commands]

    # --- the arm -----------------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            msg = self._bus.recv(timeout=timeout) if self._bus is not None else None
            if msg is not None:
                self._handle(msg)
                continue
            now = time.monotonic()
            if now < next_tick:
                continue
            next_tick = now + self.period_s
            self._step(self.period_s)
            with self._feedback_lock:
                if not self._silent.is_set():
                    self._send_feedback()

    def _handle(self, msg: can.Message) -> None:
        frame_id, data = msg.arbitration_id, bytes(msg.data)
        with self._lock:
            self.commands.append((frame_id, data))
            s = self.state
            try:
                if frame_id == cc.ID_MOTION_CTRL_1:
                    self._on_motion_ctrl_1(cc.decode_motion_ctrl_1(data))
                elif frame_id == cc.ID_MOTION_CTRL_2:
                    m2 = cc.decode_motion_ctrl_2(data)
                    if s.enabled:
                        s.ctrl_mode, s.move_mode, s.speed_rate_pct = m2.ctrl_mode, m2.move_mode, m2.speed_rate_pct
                elif frame_id in (cc.ID_CARTESIAN_XY, cc.ID_CARTESIAN_Z_RX, cc.ID_CARTESIAN_RY_RZ):
                    self._staged[frame_id] = cc.decode_pair_i32(data, frame_id)
                    if len(self._staged) == 3:  # the SDK sends XY, ZRX, RYRZ back to back
                        x, y = self._staged[cc.ID_CARTESIAN_XY]
                        z, rx = self._staged[cc.ID_CARTESIAN_Z_RX]
                        ry, rz = self._staged[cc.ID_CARTESIAN_RY_RZ]
                        self._staged.clear()
                        if s.enabled and not s.estopped and s.ctrl_mode == 0x01 and s.move_mode == 0x00:
                            s.target_um = [float(v) for v in (x, y, z, rx, ry, rz)]
                elif frame_id == cc.ID_GRIPPER_CTRL:
                    g = cc.decode_gripper_ctrl(data)
                    if g.code in (0x01, 0x03) and s.enabled and not s.estopped:
                        s.gripper_target_um = float(max(0, min(g.angle_um, 80_000)))
                elif frame_id == cc.ID_MOTOR_ENABLE:
                    me = cc.decode_motor_enable(data)
                    if me.enable_flag == cc.MOTOR_ENABLE and not self.never_enable:
                        s.enabled = True
                    elif me.enable_flag == cc.MOTOR_DISABLE:
                        s.enabled, s.ctrl_mode, s.target_um = False, 0x00, None
                elif frame_id == cc.ID_JOINT_CONFIG:
                    if cc.decode_joint_config(data).clear_error:
                        s.err_code = 0
                        if s.arm_status not in (0x00, 0x01):
                            s.arm_status = 0x00
                elif frame_id == cc.ID_FIRMWARE:
                    self._pending_firmware = True
            except cc.FrameError:
                pass  # a real arm ignores malformed frames too

    def _on_motion_ctrl_1(self, m1: cc.MotionCtrl1) -> None:
        s = self.state
        if m1.emergency_stop == cc.ESTOP_STOP:
            s.estopped, s.arm_status, s.target_um = True, 0x01, None
        elif m1.emergency_stop == cc.ESTOP_RESUME:
            if self._resets_held:
                self._reset_pending = True
            else:
                self._reset_controller()

    def _reset_controller(self) -> None:
        """On the PiPER, the e-stop reset (0x150 0x02) resets the controller: errors cleared, motors
        disabled, standby."""
        s = self.state
        s.estopped, s.arm_status, s.err_code = False, 0x00, 0
        s.enabled, s.ctrl_mode, s.target_um = False, 0x00, None

    def _step(self, dt_s: float) -> None:
        with self._lock:
            s = self.state
            if not s.enabled or s.estopped:
                return
            alpha = 1.0 - math.exp(-dt_s / self.time_constant_s)
            if s.target_um is not None:
                for i in range(6):
                    error = s.target_um[i] - s.pose_um[i]
                    if i >= 3:
                        error = (error + 180_000.0) % 360_000.0 - 180_000.0
                    s.pose_um[i] += error if abs(error) < 1.0 else alpha * error
                    if i >= 3:
                        s.pose_um[i] = (s.pose_um[i] + 180_000.0) % 360_000.0 - 180_000.0
            error = s.gripper_target_um - s.gripper_um
            s.gripper_um += error if abs(error) < 1.0 else alpha * error

    def _moving(self) -> bool:
        s = self.state
        if s.target_um is None:
            return False
        return any(abs(t - p) > 100.0 for t, p in zip(s.target_um, s.pose_um, strict=True))

    def _send_feedback(self) -> None:
        with self._lock:
            s = self.state
            motion = 0x01 if self._moving() else 0x00
            pose = [round(v) for v in s.pose_um]
            if s.enabled:
                joint1 = round(math.degrees(math.atan2(s.pose_um[1], s.pose_um[0])) * 1000.0)
                joints = (joint1, *_POSTURE_MDEG)
            else:
                joints = (0,) * 6  # the real arm reads 0 on every joint in standby
            frames = [
                (cc.ID_ARM_STATUS, cc.encode_arm_status(s.ctrl_mode, s.arm_status, s.move_mode, 0, motion, s.err_code)),
                (cc.ID_END_POSE_XY, cc.encode_pair_i32(pose[0], pose[1])),
                (cc.ID_END_POSE_Z_RX, cc.encode_pair_i32(pose[2], pose[3])),
                (cc.ID_END_POSE_RY_RZ, cc.encode_pair_i32(pose[4], pose[5])),
                (cc.ID_JOINTS_12, cc.encode_pair_i32(joints[0], joints[1])),
                (cc.ID_JOINTS_34, cc.encode_pair_i32(joints[2], joints[3])),
                (cc.ID_JOINTS_56, cc.encode_pair_i32(joints[4], joints[5])),
                (
                    cc.ID_GRIPPER,
                    cc.encode_gripper(round(s.gripper_um), 500 if s.enabled else 0, 0x40 if s.enabled else 0),
                ),
            ]
            if self.driver_feedback:
                frames += [(cc.ID_LOW_SPEED_FIRST + i, cc.encode_low_speed(s.enabled)) for i in range(6)]
            if self._pending_firmware:
                self._pending_firmware = False
                frames.append((cc.ID_FIRMWARE, _FIRMWARE))
        for frame_id, data in frames:
            self._bus.send(can.Message(arbitration_id=frame_id, data=data, is_extended_id=False))
