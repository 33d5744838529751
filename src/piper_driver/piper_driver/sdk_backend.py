"""``SdkBackend``: one AgileX PiPER over CAN through piper_sdk's ``C_PiperInterface_V2``.

Moves are end-pose targets in MOVE P mode, sent and left to the arm's own controller: ``move_to``
returns at once and ``wait_until_still`` polls the feedback. The backend works around the SDK's
field pains: the SDK logs and swallows failed sends (we watch the send status and go to ERROR),
``isOk()`` stays True on a bus that only echoes our own commands (we also require fresh arm
feedback), joints read 0 in standby (we keep the last real reading), and the SDK returns one
shared object per CAN port name (one backend per port) that keeps its last readings across a
disconnect, so ``connect`` waits for feedback heard after it opened the bus (after a quick
reconnect the SDK's reader thread can take up to its 1 s receive time-out to pick up the new bus).
For the same reason (old readings look current), ``enable`` and ``resume`` judge the arm by frames it
sent after their command: a reading from before the command cannot say the arm carried it out.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from piper_sdk import C_PiperInterface_V2

from piper_driver import can_codec as cc
from piper_driver.config_checks import require
from piper_driver.robot import ArmState, MotionRefused, RobotBackend, RobotState, RobotStatus
from piper_driver.sdk_status import Verdict, decode_arm_status
from vlac_core.config import param, validate
from vlac_core.types import DeltaAction, EndPose

if TYPE_CHECKING:
    import can

_MOVE_P = 0x00
_CAN_CTRL = 0x01
_GRIPPER_ENABLE = 0x01
_GRIPPER_ENABLE_CLEAR = 0x03
_GRIPPER_DISABLE = 0x00
_CLEAR_ERROR = 0xAE
_UNITS_PER_MM = 1000  # the SDK's 0.001 mm / 0.001 deg integers
_STANDBY_MODES = (0x00, 0x02)  # standby, teaching: joint feedback reads 0


@dataclass(frozen=True)
class SdkConfig:
    """Settings of one PiPER on one CAN port, declared once (``vlac_core.config``: each key's range and
    meaning); names follow AgileX's piper_ros where they exist. The arm node's ``driver_node`` section
    extends this class (``piper_driver.driver_config.DriverNodeConfig``), so its ROS parameters and the
    backend read the same declarations."""

    can_port: str = param("can0", "CAN interface of this arm (one USB-CAN adapter per arm)")
    bustype: str = param("socketcan", "python-can interface: socketcan on robots, virtual for the fake arm")
    speed_rate_pct: int = param(50, "MOVE P speed, percent of the arm's maximum", low=1, high=100)
    gripper_exist: bool = param(True, "the arm carries the AgileX parallel gripper")
    gripper_effort_mnm: int = param(1000, "gripper effort, 0.001 N·m", low=0, high=5000)
    gripper_open_mm: float = param(70.0, "gripper opening for open: 1, mm", low=0.0, high=80.0)
    gripper_closed_mm: float = param(0.0, "gripper opening for open: 0, mm", low=0.0, high=80.0)
    connect_timeout_s: float = param(2.0, "wait this long for the first feedback after opening the bus, s", low=0.01)
    link_timeout_s: float = param(0.5, "no arm feedback for this long = CAN link lost, s", low=0.05, high=10.0)
    position_tolerance_mm: float = param(2.0, "a move's target counts as reached within this, mm", low=0.01)
    rotation_tolerance_deg: float = param(2.0, "a move's target rotation counts as reached within this, deg", low=0.01)
    gripper_tolerance_mm: float = param(2.0, "the gripper's target counts as reached within this, mm", low=0.01)
    motion_settle_s: float = param(
        0.05, "ignore 'motion finished' status frames younger than this after a command, s", low=0.0, high=1.0
    )
    gripper_stall_s: float = param(
        0.2, "a gripper that has not moved for this long has stopped (closed on an object), s", low=0.001
    )
    poll_period_s: float = param(0.01, "period of the waits on the arm's feedback, s", low=0.001, high=1.0)
    home_pose: tuple[float, ...] = param(
        (57.0, 0.0, 215.0, 0.0, 85.0, 0.0), "reset pose: x y z (mm), roll pitch yaw (deg)"
    )
    home_timeout_s: float = param(10.0, "give up homing after this long, s", low=0.5, high=120.0)
    resume_timeout_s: float = param(
        5.0, "resume: wait this long for the arm to report it left the emergency stop, s", low=0.1, high=60.0
    )

    def __post_init__(self) -> None:
        validate(self)  # each key's type and range
        self._check_link_and_home()

    def _check_link_and_home(self) -> None:
        """The backend's rules beyond one key's range (a config extending this class calls them too)."""
        require(isinstance(self.can_port, str) and bool(self.can_port.strip()), "can_port", self.can_port, "a name")
        require(isinstance(self.bustype, str) and bool(self.bustype), "bustype", self.bustype, "a python-can interface")
        require(len(self.home_pose) == 6, "home_pose", self.home_pose, "6 numbers: x y z mm, roll pitch yaw deg")
        EndPose(*self.home_pose)  # finite numbers, or a ValidationError naming the field

    def sdk_config(self) -> SdkConfig:
        """The backend's part of a config that extends this class (the arm node's ``driver_node`` section)."""
        return SdkConfig(**{f.name: getattr(self, f.name) for f in fields(SdkConfig)})


def _wrap_deg(angle_deg: float) -> float:
    return (angle_deg + 180.0) % 360.0 - 180.0


def _to_units(value: float) -> int:
    return round(value * _UNITS_PER_MM)


class SdkBackend(RobotBackend):
    """A PiPER arm driven through piper_sdk. Thread-safe: node callbacks may call it concurrently."""

    def __init__(self, config: SdkConfig | None = None) -> None:
        self.config = config or SdkConfig()
        self._sdk: C_PiperInterface_V2 | None = None
        self._lock = threading.RLock()
        self._counters: Counter[str] = Counter()
        self._enabled = False
        self._estopped = False
        self._send_failure: str | None = None
        self._link_lost_since: float | None = None
        self._event = ""  # last notable event, for the status message
        self._last_rejection = ""  # the arm's last "target rejected" message, to count each once
        self._target: EndPose | None = None
        self._gripper_target_mm: float | None = None
        self._target_sent_wall_s = 0.0
        self._last_joints_rad: tuple[float, ...] = (0.0,) * 6
        self._gripper_seen = (math.nan, 0.0)  # (opening mm, monotonic time it last changed)
        self._heard: dict[int, can.Message] = {}  # the newest feedback frame of each CAN ID (_watch_feedback)

    # --- link --------------------------------------------------------------------------------

    def connect(self) -> None:
        cfg = self.config
        with self._lock:
            if self._sdk is not None:
                return
            try:
                sdk = C_PiperInterface_V2(can_name=cfg.can_port, judge_flag=False, can_auto_init=False)
                # judge_flag checks /sys/class/net (socketcan only): up, and at 1 Mbit/s.
                sdk.CreateCanBus(cfg.can_port, bustype=cfg.bustype, judge_flag=cfg.bustype == "socketcan")
                sdk.ConnectPort(can_init=True)
            except Exception as exc:  # the SDK raises ConnectionError, ValueError, RuntimeError
                raise ConnectionError(
                    f"{cfg.can_port}: cannot open the CAN bus ({cfg.bustype}): {exc}. "
                    f"Is the adapter plugged in and the port up (`ip link show {cfg.can_port}`)?"
                ) from exc
            self._watch_sends(sdk)
            self._watch_feedback(sdk)
            self._sdk = sdk
        # Only feedback heard after this connect counts: piper_sdk keeps one interface per port,
        # and with it the last readings from before a disconnect.
        opened_wall_s = time.time()
        deadline = time.monotonic() + cfg.connect_timeout_s
        while self._feedback_age_s() > time.time() - opened_wall_s or not self._sdk.isOk():
            if time.monotonic() > deadline:
                self.disconnect()
                raise ConnectionError(
                    f"{cfg.can_port}: bus open but no PiPER feedback within {cfg.connect_timeout_s} s: "
                    "is the arm powered and on this port?"
                )
            time.sleep(cfg.poll_period_s)
        self._event = f"connected on {cfg.can_port}"

    def disconnect(self) -> None:
        with self._lock:
            if self._sdk is None:
                return
            self._sdk.DisconnectPort()
            self._sdk = None
            self._enabled = False
            self._target = None
            self._link_lost_since = None
            self._event = "disconnected"

    def _watch_sends(self, sdk: C_PiperInterface_V2) -> None:
        """Record the status of every frame the SDK sends: it only logs failures and carries on."""
        bus = sdk.GetCanBus()
        send, success = bus.SendCanMessage, bus.CAN_STATUS.SEND_MESSAGE_SUCCESS

        def send_and_check(arbitration_id: int, data: list[int], *args: object, **kwargs: object) -> object:
            status = send(arbitration_id, data, *args, **kwargs)
            if status != success:
                self._counters["send_failed"] += 1
                if self._send_failure is None:  # the first failure is the one to report
                    reason = getattr(status, "name", status)
                    self._send_failure = f"sending frame 0x{arbitration_id:03X} failed ({reason})"
            return status

        bus.SendCanMessage = send_and_check

    def _watch_feedback(self, sdk: C_PiperInterface_V2) -> None:
        """Keep the newest frame of each CAN ID the SDK receives, once the SDK has parsed it.

        The SDK updates its readings in place, field by field, and stamps the six drivers' frames
        (0x261-0x266) with one shared time: a reading can mix frames from before and after a command.
        A ``can.Message`` is one frame, stamped on arrival and never changed, so its stamp and its bytes
        together say what the arm reported and when. Frames arrive in the order the arm sent them.
        """
        bus = sdk.GetCanBus()
        parse = bus.callback_function  # the SDK's ParseCANFrame, called by its reader thread
        heard: dict[int, can.Message] = {}

        def parse_and_keep(msg: can.Message) -> None:
            parse(msg)
            heard[msg.arbitration_id] = msg

        self._heard = heard
        bus.callback_function = parse_and_keep

    def _frame_since(self, frame_id: int, since_wall_s: float) -> can.Message | None:
        """The newest frame with this ID if the arm sent it after ``since_wall_s`` (wall clock, as its stamp)
        with the 8 data bytes of every PiPER feedback frame."""
        frame = self._heard.get(frame_id)
        if frame is None or frame.timestamp <= since_wall_s or len(frame.data) != 8:
            return None
        return frame

    def _motors_not_enabled_since(self, since_wall_s: float) -> list[int]:
        """Motors 1-6 with no driver frame (0x261-0x266) since ``since_wall_s`` that reports them enabled."""
        off = []
        for motor in range(1, 7):
            frame_id = cc.ID_LOW_SPEED_FIRST + motor - 1
            frame = self._frame_since(frame_id, since_wall_s)
            if frame is None or not cc.decode_low_speed_enabled(frame.data, frame_id):
                off.append(motor)
        return off

    def _arm_left_estop_since(self, since_wall_s: float) -> bool:
        """An arm status frame (0x2A1) sent after ``since_wall_s`` reports no emergency stop."""
        frame = self._frame_since(cc.ID_ARM_STATUS, since_wall_s)
        return frame is not None and cc.decode_arm_status_code(frame.data) != cc.ARM_STATUS_ESTOP

    def _require_sdk(self) -> C_PiperInterface_V2:
        if self._sdk is None:
            raise MotionRefused(f"{self.config.can_port}: not connected (call connect first)")
        return self._sdk

    def _feedback_age_s(self) -> float:
        """Seconds since the oldest of the status and end-pose feedback streams last spoke."""
        if self._sdk is None:
            return math.inf
        stamps = (self._sdk.GetArmStatus().time_stamp, self._sdk.GetArmEndPoseMsgs().time_stamp)
        return time.time() - min(stamps) if min(stamps) > 0 else math.inf

    def _link_problem(self) -> str | None:
        age_s = self._feedback_age_s()
        if age_s == math.inf:
            return "no feedback received from the arm"
        if age_s > self.config.link_timeout_s:
            return f"no feedback for {age_s:.2f} s (limit {self.config.link_timeout_s} s)"
        if not self._sdk.isOk():
            return "piper_sdk reports no CAN frames (isOk() is False)"
        return None

    # --- enable ------------------------------------------------------------------------------

    def enable(self, timeout_s: float = 5.0) -> None:
        cfg = self.config
        with self._lock:
            sdk = self._require_sdk()
            if self._estopped:
                raise MotionRefused(f"{cfg.can_port}: emergency stop latched; call resume() instead of enable()")
            problem = self._link_problem()
            if problem is not None:
                raise MotionRefused(f"{cfg.can_port}: cannot enable, CAN link lost: {problem}")
            self._send_failure = None
            sdk.JointConfig(joint_num=7, clear_err=_CLEAR_ERROR)  # clear joint errors first
            # Only driver frames sent after the first "enable all" count: the SDK's EnablePiper() reads
            # the last bits heard, which can predate the command (and an e-stop reset that turned them off).
            enable_sent_wall_s = time.time()
            deadline = time.monotonic() + timeout_s
            while True:
                sdk.EnableArm(7)  # "enable all", repeated until every driver reports enabled
                off = self._motors_not_enabled_since(enable_sent_wall_s)
                if not off:
                    break
                if time.monotonic() > deadline:
                    self._counters["enable_timeout"] += 1
                    raise TimeoutError(
                        f"{cfg.can_port}: enable timed out after {timeout_s} s: motors {off} do not report "
                        "enabled (driver enable bit of feedback 0x261-0x266, in frames sent after the enable "
                        "command). Check the arm's power and e-stop."
                    )
                time.sleep(cfg.poll_period_s)
            sdk.MotionCtrl_2(_CAN_CTRL, _MOVE_P, cfg.speed_rate_pct, 0x00)
            here = self._read_pose(sdk)
            gripper_mm = self._read_gripper_mm(sdk)
            # Hold where we are: an old target left in the controller would make the arm jump.
            sdk.EndPoseCtrl(*(_to_units(v) for v in here.as_array()))
            if cfg.gripper_exist:
                sdk.GripperCtrl(_to_units(gripper_mm), cfg.gripper_effort_mnm, _GRIPPER_ENABLE_CLEAR, 0)
            if self._send_failure is not None:
                raise ConnectionError(f"{cfg.can_port}: enable failed: {self._send_failure}")
            self._target, self._gripper_target_mm = here, gripper_mm
            self._target_sent_wall_s = time.time()
            self._enabled = True
            self._event = "enabled"

    def disable(self) -> None:
        with self._lock:
            sdk = self._require_sdk()
            if self.config.gripper_exist:
                sdk.GripperCtrl(0, 0, _GRIPPER_DISABLE, 0)
            sdk.DisablePiper()
            self._enabled = False
            self._target = None
            self._event = "disabled"

    # --- reading -----------------------------------------------------------------------------

    @staticmethod
    def _read_pose(sdk: C_PiperInterface_V2) -> EndPose:
        p = sdk.GetArmEndPoseMsgs().end_pose
        values = (p.X_axis, p.Y_axis, p.Z_axis, p.RX_axis, p.RY_axis, p.RZ_axis)
        return EndPose(*(v / _UNITS_PER_MM for v in values))

    def _read_gripper_mm(self, sdk: C_PiperInterface_V2) -> float:
        if not self.config.gripper_exist:
            return 0.0
        return sdk.GetArmGripperMsgs().gripper_state.grippers_angle / _UNITS_PER_MM

    def _read_joints_rad(self, sdk: C_PiperInterface_V2) -> tuple[float, ...]:
        j = sdk.GetArmJointMsgs().joint_state
        mdeg = (j.joint_1, j.joint_2, j.joint_3, j.joint_4, j.joint_5, j.joint_6)
        ctrl_mode = int(sdk.GetArmStatus().arm_status.ctrl_mode)
        if all(v == 0 for v in mdeg) and ctrl_mode in _STANDBY_MODES:
            # The PiPER reports 0 on every joint in standby/teaching; 0 is not where the arm is.
            self._counters["joints_zero_in_standby"] += 1
            return self._last_joints_rad
        self._last_joints_rad = tuple(math.radians(v / _UNITS_PER_MM) for v in mdeg)
        return self._last_joints_rad

    def observe(self) -> ArmState:
        with self._lock:
            sdk = self._sdk
            if sdk is None:
                raise ConnectionError(f"{self.config.can_port}: not connected (call connect first)")
            pose_msg = sdk.GetArmEndPoseMsgs()
            if pose_msg.time_stamp <= 0:
                raise ConnectionError(f"{self.config.can_port}: no end-pose feedback received yet")
            # Feedback stamps are wall-clock (python-can); ArmState wants the monotonic clock.
            stamp_s = time.monotonic() - (time.time() - pose_msg.time_stamp)
            moving = int(sdk.GetArmStatus().arm_status.motion_status) == 0x01
            return ArmState(
                end_pose=self._read_pose(sdk),
                joints_rad=self._read_joints_rad(sdk),
                gripper_mm=self._read_gripper_mm(sdk),
                stamp_s=stamp_s,
                moving=moving,
            )

    # --- motion ------------------------------------------------------------------------------

    def execute(self, delta: DeltaAction) -> None:
        with self._lock:
            self._refuse_unless_enabled()
            here = self._read_pose(self._require_sdk()).as_array()
            target = here + np.array(delta.as_tuple()[:6], dtype=np.float64)
            target[3:] = [_wrap_deg(a) for a in target[3:]]
            gripper_mm = self.config.gripper_open_mm if delta.open else self.config.gripper_closed_mm
            self.move_to(EndPose.from_array(target), gripper_mm)

    def move_to(self, target: EndPose, gripper_mm: float) -> None:
        cfg = self.config
        with self._lock:
            self._refuse_unless_enabled()
            sdk = self._require_sdk()
            self._send_failure = None
            # Re-assert CAN control + MOVE P on every command, as AgileX's demos do: the arm drops
            # out of CAN control after a controller-side event and then ignores pose commands.
            sdk.MotionCtrl_2(_CAN_CTRL, _MOVE_P, cfg.speed_rate_pct, 0x00)
            sdk.EndPoseCtrl(*(_to_units(v) for v in target.as_array()))
            if cfg.gripper_exist:
                sdk.GripperCtrl(_to_units(gripper_mm), cfg.gripper_effort_mnm, _GRIPPER_ENABLE, 0)
            if self._send_failure is not None:
                raise MotionRefused(f"{cfg.can_port}: command not delivered: {self._send_failure}")
            self._target, self._gripper_target_mm = target, gripper_mm
            self._target_sent_wall_s = time.time()
            self._counters["commands_sent"] += 1

    def _refuse_unless_enabled(self) -> None:
        status = self.status()
        if not status.accepts_motion:
            self._counters[f"refused_{status.state.value}"] += 1
            raise MotionRefused(f"{self.config.can_port}: motion refused ({status.state.value}): {status.message}")

    def _reached(self, sdk: C_PiperInterface_V2) -> bool:
        cfg = self.config
        here = self._read_pose(sdk).as_array()
        error = self._target.as_array() - here
        error[3:] = [_wrap_deg(a) for a in error[3:]]
        pose_reached = max(abs(error[:3])) <= cfg.position_tolerance_mm and max(abs(error[3:])) <= (
            cfg.rotation_tolerance_deg
        )
        status_msg = sdk.GetArmStatus()
        arm_says_done = (
            status_msg.time_stamp > self._target_sent_wall_s + cfg.motion_settle_s
            and int(status_msg.arm_status.motion_status) == 0x00
        )
        return (pose_reached or arm_says_done) and self._gripper_still(sdk)

    def _gripper_still(self, sdk: C_PiperInterface_V2) -> bool:
        """At its target, or stopped (closed on an object it cannot close past)."""
        if not self.config.gripper_exist or self._gripper_target_mm is None:
            return True
        now_mm, now_s = self._read_gripper_mm(sdk), time.monotonic()
        last_mm, changed_s = self._gripper_seen
        if math.isnan(last_mm) or abs(now_mm - last_mm) > 0.2:
            self._gripper_seen = (now_mm, now_s)
            changed_s = now_s
        at_target = abs(now_mm - self._gripper_target_mm) <= self.config.gripper_tolerance_mm
        return at_target or now_s - changed_s > self.config.gripper_stall_s

    def wait_until_still(self, timeout_s: float) -> bool:
        """True once the last target is reached (or the arm says so); False on time-out or refusal."""
        deadline = time.monotonic() + timeout_s
        self._gripper_seen = (math.nan, 0.0)
        while True:
            with self._lock:
                if self._target is None:
                    return True
                if not self.status().accepts_motion:
                    return False
                if self._reached(self._require_sdk()):
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.config.poll_period_s)

    def home(self) -> None:
        cfg = self.config
        self.move_to(EndPose(*cfg.home_pose), cfg.gripper_open_mm)
        if not self.wait_until_still(cfg.home_timeout_s):
            status = self.status()
            if not status.accepts_motion:  # e-stop, link loss or a fault ended the move early
                raise MotionRefused(f"{cfg.can_port}: homing interrupted: {status.message}")
            raise TimeoutError(
                f"{cfg.can_port}: home pose {cfg.home_pose} not reached within {cfg.home_timeout_s} s "
                f"({self.status().message})"
            )

    # --- emergency stop ----------------------------------------------------------------------

    def emergency_stop(self) -> None:
        """Latch ESTOPPED first, then tell the arm: motion is refused even if the frame is lost."""
        with self._lock:
            self._estopped = True  # the target is kept: a wait on it must report the move as cut short
            self._counters["estop"] += 1
            self._event = "emergency stop"
            if self._sdk is not None:
                self._sdk.EmergencyStop(0x01)

    def resume(self) -> None:
        """Release the stop. The PiPER leaves it through a controller reset (motors off), so a
        backend that was enabled enables again; the arm then holds where it stands.

        The reset takes the arm a while, and until it is done the arm keeps reporting the stop (and the
        enable bits from before it). Enabling at once believed those bits, said ENABLED, then read the
        stop in old status frames (ESTOPPED while the arm was out of the stop and enabled). So the stop
        stays latched until a status frame sent after the reset command reports no emergency stop;
        frames arrive in order, so no older one follows, and only then does ``enable`` run. If that
        does not come within ``resume_timeout_s``: ``TimeoutError``, the stop stays latched, and a
        backend that was enabled still enables on the next resume.
        """
        cfg = self.config
        with self._lock:
            sdk = self._require_sdk()
            was_enabled = self._enabled
            stops_before = self._counters["estop"]  # a stop during the wait below must win
            reset_sent_wall_s = time.time()
            sdk.EmergencyStop(0x02)
            self._event = "resume: waiting for the arm to report the emergency stop cleared"
        # Wait without the lock: emergency_stop must never queue behind a resume.
        deadline = time.monotonic() + cfg.resume_timeout_s
        while not self._arm_left_estop_since(reset_sent_wall_s):
            if time.monotonic() > deadline:
                heard = self._frame_since(cc.ID_ARM_STATUS, reset_sent_wall_s)
                seen = "status frames since then still report it" if heard else "no status frame (0x2A1) since then"
                self._counters["resume_timeout"] += 1
                raise TimeoutError(
                    f"{cfg.can_port}: resume timed out after {cfg.resume_timeout_s} s: the arm did not report "
                    f"leaving the emergency stop after the reset (0x150 resume) was sent ({seen}); "
                    "motion stays refused: check the arm's e-stop button and call resume() again"
                )
            time.sleep(cfg.poll_period_s)
        with self._lock:
            if self._counters["estop"] != stops_before:
                raise MotionRefused(f"{cfg.can_port}: emergency stop during resume; call resume() again")
            self._estopped = False
            self._enabled = False  # the reset turned the motors off
            self._event = "resumed after emergency stop"
        if was_enabled:
            self.enable()

    # --- health ------------------------------------------------------------------------------

    def status(self) -> RobotStatus:
        with self._lock:
            state, message = self._state()
            return RobotStatus(state=state, message=message, counters=dict(self._counters))

    def _state(self) -> tuple[RobotState, str]:
        port = self.config.can_port
        if self._sdk is None:
            return RobotState.DISCONNECTED, f"{port}: not connected"
        problem = self._link_problem()
        if problem is not None:
            if self._link_lost_since is None:
                self._link_lost_since = time.monotonic()
                self._counters["link_lost"] += 1
            return RobotState.ERROR, f"{port}: CAN link lost: {problem}; motion refused until feedback returns"
        if self._link_lost_since is not None:
            self._event = f"CAN link recovered after {time.monotonic() - self._link_lost_since:.1f} s"
            self._link_lost_since = None
            self._target = None  # whatever was commanded before the loss is no longer a plan
        if self._send_failure is not None:
            return RobotState.ERROR, f"{port}: {self._send_failure}; enable again to retry"
        if self._estopped:
            return RobotState.ESTOPPED, f"{port}: emergency stop latched by this host; call resume()"
        raw = self._sdk.GetArmStatus().arm_status
        verdict = decode_arm_status(int(raw.ctrl_mode), int(raw.arm_status), int(raw.err_code))
        if verdict.verdict is Verdict.ESTOP:
            return RobotState.ESTOPPED, f"{port}: {verdict.message}"
        if verdict.verdict is Verdict.FAULT:
            return RobotState.ERROR, f"{port}: {verdict.message}"
        if self._enabled and not all(self._sdk.GetArmEnableStatus()):
            self._enabled = False
            self._event = "motors stopped reporting enabled; enable again"
        if not self._enabled:
            return RobotState.CONNECTED, f"{port}: motors not enabled" + (f" ({self._event})" if self._event else "")
        if verdict.verdict is Verdict.TARGET_REJECTED:
            if verdict.message != self._last_rejection:
                self._counters["target_rejected_by_arm"] += 1
                self._last_rejection = verdict.message
            return RobotState.ENABLED, f"{port}: {verdict.message}"
        self._last_rejection = ""
        return RobotState.ENABLED, f"{port}: {verdict.message}" + (f" ({self._event})" if self._event else "")
