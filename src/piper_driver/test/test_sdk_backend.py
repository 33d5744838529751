"""SdkBackend through the real piper_sdk against the fake PiPER on python-can's virtual bus."""

import dataclasses
import math
import threading
import time
import uuid

import can
import pytest

from piper_driver import can_codec as cc
from piper_driver.fake_piper import FakePiper
from piper_driver.robot import MotionRefused, RobotState
from piper_driver.sdk_backend import SdkBackend, SdkConfig
from vlac_core.config import ConfigError
from vlac_core.types import DeltaAction, EndPose

START_POSE = (150.0, 0.0, 250.0, 180.0, 0.0, 180.0)


def unique_channel() -> str:
    # piper_sdk keeps one interface object per CAN name for the life of the process.
    return f"vcan_{uuid.uuid4().hex[:10]}"


#: Generous time limits for what is not under test: on a loaded machine the fake arm's feedback
#: thread can stall for a second, and a wait returns as soon as its condition holds anyway.
PATIENT_S = 10.0


def config(channel: str, **overrides) -> SdkConfig:
    values = {
        "can_port": channel,
        "bustype": "virtual",
        "link_timeout_s": PATIENT_S,
        "connect_timeout_s": PATIENT_S,
        "gripper_stall_s": PATIENT_S,  # no test blocks the gripper: "still" means at its target
        "motion_settle_s": 1.0,
    }
    return SdkConfig(**(values | overrides))


def wait_for(predicate, timeout_s: float = PATIENT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


#: A frame no PiPER uses: the tests' barrier marker (the fake records every frame it hears).
MARKER_ID = 0x7FF


def frames_heard_after_all_sent(arm: FakePiper) -> list[tuple[int, bytes]]:
    """Every frame the fake arm has heard, once it has heard everything sent on its bus before this call.

    A barrier instead of a sleep: python-can's virtual bus puts each sent frame into every
    listener's FIFO queue during ``send``, so once the fake has heard a marker sent now, it has
    heard every frame the backend sent before it (piper_sdk sends in the caller's thread). A test
    that asserts "nothing was sent" after this cannot pass just because a frame was still in flight.
    """
    marker = bytes(uuid.uuid4().bytes[:8])
    with can.Bus(interface="virtual", channel=arm.channel) as bus:
        bus.send(can.Message(arbitration_id=MARKER_ID, data=marker, is_extended_id=False))
    assert wait_for(lambda: (MARKER_ID, marker) in list(arm.commands)), "the fake arm never heard the marker"
    heard = list(arm.commands)
    return heard[: heard.index((MARKER_ID, marker))]


def motion_frames(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The frames that would move the arm or its gripper (mode, pose target, gripper target)."""
    moving = (cc.ID_MOTION_CTRL_2, cc.ID_CARTESIAN_XY, cc.ID_CARTESIAN_Z_RX, cc.ID_CARTESIAN_RY_RZ, cc.ID_GRIPPER_CTRL)
    return [(i, data) for i, data in frames if i in moving]


@pytest.fixture
def arm():
    with FakePiper(unique_channel()) as fake:
        yield fake


@pytest.fixture
def backend(arm):
    b = SdkBackend(config(arm.channel))
    b.connect()
    yield b
    b.disconnect()


@pytest.fixture
def enabled(backend):
    backend.enable(timeout_s=PATIENT_S)
    return backend


def test_connect_reads_the_pose_the_arm_reports(backend):
    assert backend.status().state is RobotState.CONNECTED
    assert backend.observe().end_pose == EndPose(*START_POSE)


def test_connect_without_an_arm_names_the_port_and_the_cause():
    channel = unique_channel()
    with pytest.raises(ConnectionError, match=f"{channel}: bus open but no PiPER feedback within 0.5 s"):
        SdkBackend(config(channel, connect_timeout_s=0.5)).connect()


def test_motion_is_refused_before_enable(backend, arm):
    with pytest.raises(MotionRefused, match="connected"):
        backend.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    assert motion_frames(frames_heard_after_all_sent(arm)) == []


def test_enable_clears_errors_enables_and_selects_move_p(enabled, arm):
    assert wait_for(lambda: cc.ID_GRIPPER_CTRL in arm.command_ids())  # the last frame enable sends
    ids = arm.command_ids()
    assert ids.index(cc.ID_JOINT_CONFIG) < ids.index(cc.ID_MOTOR_ENABLE) < ids.index(cc.ID_MOTION_CTRL_2)
    assert wait_for(lambda: enabled.status().state is RobotState.ENABLED)
    assert (arm.state.ctrl_mode, arm.state.move_mode, arm.state.speed_rate_pct) == (0x01, 0x00, 50)


def test_enable_time_out_names_the_motors(arm):
    arm.never_enable = True
    backend = SdkBackend(config(arm.channel))
    backend.connect()
    try:
        with pytest.raises(TimeoutError, match=r"enable timed out after 0.2 s: motors \[1, 2, 3, 4, 5, 6\]"):
            backend.enable(timeout_s=0.2)
        assert backend.status().state is RobotState.CONNECTED
        assert backend.status().counters["enable_timeout"] == 1
    finally:
        backend.disconnect()


def test_delta_move_converges_in_mm_and_deg(enabled, arm):
    enabled.execute(DeltaAction(dx_mm=20, dy_mm=-10, dz_mm=-30, droll_deg=0, dpitch_deg=5, dyaw_deg=-10, open=1))
    assert enabled.wait_until_still(timeout_s=PATIENT_S)
    x, y, z, roll, pitch, yaw = arm.pose_mm_deg
    assert (x, y, z) == pytest.approx((170.0, -10.0, 220.0), abs=2.0)
    assert (pitch, yaw) == pytest.approx((5.0, 170.0), abs=2.0)
    assert abs(abs(roll) - 180.0) < 2.0  # 180 and -180 are one angle
    assert enabled.observe().end_pose.x_mm == pytest.approx(x, abs=1.0)


def test_end_pose_command_goes_out_in_thousandths(enabled, arm):
    heard_before = len(arm.commands)
    enabled.move_to(EndPose(123.4567, -8.9, 200.0, 179.5, 1.25, -90.0), gripper_mm=12.5)
    assert wait_for(lambda: len(arm.commands) >= heard_before + 5)  # 0x151, 0x152-0x154, 0x159
    frames = {frame_id: data for frame_id, data in arm.commands}
    assert cc.decode_pair_i32(frames[cc.ID_CARTESIAN_XY], cc.ID_CARTESIAN_XY) == (123_457, -8_900)
    assert cc.decode_pair_i32(frames[cc.ID_CARTESIAN_Z_RX], cc.ID_CARTESIAN_Z_RX) == (200_000, 179_500)
    assert cc.decode_pair_i32(frames[cc.ID_CARTESIAN_RY_RZ], cc.ID_CARTESIAN_RY_RZ) == (1_250, -90_000)
    gripper = cc.decode_gripper_ctrl(frames[cc.ID_GRIPPER_CTRL])
    assert (gripper.angle_um, gripper.effort_mnm, gripper.code) == (12_500, 1_000, 0x01)


def test_gripper_opens_and_closes(enabled, arm):
    enabled.execute(DeltaAction(0, 0, 0, 0, 0, 0, open=1))
    assert enabled.wait_until_still(timeout_s=PATIENT_S)
    assert arm.gripper_mm == pytest.approx(70.0, abs=2.0)
    assert enabled.observe().gripper_mm == pytest.approx(70.0, abs=2.0)
    enabled.execute(DeltaAction(0, 0, 0, 0, 0, 0, open=0))
    assert enabled.wait_until_still(timeout_s=PATIENT_S)
    assert arm.gripper_mm == pytest.approx(0.0, abs=2.0)


def test_execute_returns_before_the_arm_arrives(enabled, arm):
    """execute sends the target and returns; it does not wait for the arm. The arm is frozen (an
    infinite time constant: it cannot move at all), so an execute that waited for the arrival would
    never return; no wall-clock margin decides the outcome."""
    arm.time_constant_s = math.inf
    returned = threading.Event()

    def execute() -> None:
        enabled.execute(DeltaAction(50, 0, 0, 0, 0, 0, 1))
        returned.set()

    threading.Thread(target=execute, daemon=True).start()
    assert returned.wait(PATIENT_S), "execute did not return while the arm could not move"
    # It returned with the target out and the arm where it was: not arrived, and the backend agrees.
    sent = motion_frames(frames_heard_after_all_sent(arm))
    xy = [cc.decode_pair_i32(data, i) for i, data in sent if i == cc.ID_CARTESIAN_XY]
    assert xy[-1] == (200_000, 0)
    assert arm.pose_mm_deg[0] == 150.0
    assert not enabled.wait_until_still(timeout_s=0)
    arm.time_constant_s = 0.05
    assert enabled.wait_until_still(timeout_s=PATIENT_S)
    assert arm.pose_mm_deg[0] == pytest.approx(200.0, abs=2.0)


def test_emergency_stop_refuses_motion_then_resume_enables_again(enabled, arm):
    enabled.emergency_stop()
    assert enabled.status().state is RobotState.ESTOPPED
    assert wait_for(lambda: arm.state.estopped)
    with pytest.raises(MotionRefused, match="estopped"):
        enabled.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    enabled.resume()
    assert wait_for(lambda: enabled.status().state is RobotState.ENABLED)
    enabled.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    assert enabled.wait_until_still(timeout_s=PATIENT_S), (enabled.status(), arm.state)
    assert arm.pose_mm_deg[0] == pytest.approx(160.0, abs=2.0)


def estop_and_hold_resets(backend: SdkBackend, arm: FakePiper) -> None:
    """Stop, wait until the arm has acted on it, and make the arm sit on the reset that resume sends."""
    backend.emergency_stop()
    assert wait_for(lambda: arm.state.estopped)
    arm.hold_resets()


def heard_a_reset(arm: FakePiper) -> bool:
    return any(
        i == cc.ID_MOTION_CTRL_1 and cc.decode_motion_ctrl_1(data).emergency_stop == cc.ESTOP_RESUME
        for i, data in list(arm.commands)
    )


def frames_after_the_reset(arm: FakePiper) -> list[int]:
    """IDs of the frames the arm heard after the last e-stop reset (0x150 resume), once all sent are heard."""
    heard = frames_heard_after_all_sent(arm)
    resets = [
        n
        for n, (i, data) in enumerate(heard)
        if i == cc.ID_MOTION_CTRL_1 and cc.decode_motion_ctrl_1(data).emergency_stop == cc.ESTOP_RESUME
    ]
    assert resets, "the arm never heard a reset"
    return [i for i, _ in heard[resets[-1] + 1 :]]


def test_resume_enables_only_once_the_arm_reports_the_reset_done(enabled, arm):
    """The race this pins: the arm keeps reporting the stop (and its old enable bits) until it has
    acted on the reset, so a resume that enabled at once believed the old bits, said ENABLED, then
    read the old e-stop status. Here the arm sits on the reset until the test releases it: however
    long that is, resume must not enable before the arm's feedback shows the reset done."""
    estop_and_hold_resets(enabled, arm)
    outcome: list[BaseException | None] = []

    def resume() -> None:
        try:
            enabled.resume()
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    resumer = threading.Thread(target=resume, daemon=True)
    resumer.start()
    assert wait_for(lambda: heard_a_reset(arm))
    heard_reset_wall_s = time.time()
    # Let the old e-stop feedback reach the backend: a status frame the arm sent after it heard the reset.
    assert wait_for(lambda: enabled._sdk.GetArmStatus().time_stamp > heard_reset_wall_s)
    assert int(enabled._sdk.GetArmStatus().arm_status.arm_status) == cc.ARM_STATUS_ESTOP
    assert resumer.is_alive(), f"resume returned before the arm acted on the reset: {outcome}"
    assert cc.ID_MOTOR_ENABLE not in frames_after_the_reset(arm), "enable was sent before the reset showed"
    assert enabled.status().state is RobotState.ESTOPPED
    with pytest.raises(MotionRefused, match="estopped"):
        enabled.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))

    arm.release_resets()
    resumer.join(PATIENT_S)
    assert outcome == [None]
    assert enabled.status().state is RobotState.ENABLED, (enabled.status(), arm.state)
    enabled.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    assert enabled.wait_until_still(timeout_s=PATIENT_S), (enabled.status(), arm.state)
    assert arm.pose_mm_deg[0] == pytest.approx(160.0, abs=2.0)


def test_resume_the_arm_never_confirms_times_out_naming_it_and_stays_stopped(arm):
    """The arm never acts on the reset: resume gives up after ``resume_timeout_s`` with the reason, the
    stop stays latched and no enable is sent (a resume that did not wait would return ENABLED)."""
    backend = SdkBackend(config(arm.channel, resume_timeout_s=1.0))
    backend.connect()
    try:
        backend.enable(timeout_s=PATIENT_S)
        estop_and_hold_resets(backend, arm)
        with pytest.raises(TimeoutError, match=r"resume timed out after 1.0 s: the arm did not report leaving"):
            backend.resume()
        assert backend.status().state is RobotState.ESTOPPED
        assert backend.status().counters["resume_timeout"] == 1
        assert cc.ID_MOTOR_ENABLE not in frames_after_the_reset(arm)
        with pytest.raises(MotionRefused, match="estopped"):
            backend.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
        arm.release_resets()  # the arm catches up: the next resume goes through
        backend.resume()
        assert backend.status().state is RobotState.ENABLED, (backend.status(), arm.state)
    finally:
        backend.disconnect()


def test_enable_believes_only_driver_frames_sent_after_its_command(enabled, arm):
    """The SDK keeps the last enable bits it heard. Here the arm is disabled and ignores enable, but
    its driver frames (0x261-0x266) lag: the last ones heard, from before the disable, say "enabled".
    They cannot answer the new enable command, so enable times out naming every motor."""
    arm.driver_feedback = False
    frames_heard_after_all_sent(arm)  # a barrier: the fake has finished any feedback it was sending
    arm.never_enable = True
    enabled.disable()
    assert wait_for(lambda: not arm.state.enabled)
    with pytest.raises(TimeoutError, match=r"enable timed out after 0.5 s: motors \[1, 2, 3, 4, 5, 6\]"):
        enabled.enable(timeout_s=0.5)
    assert all(enabled._sdk.GetArmEnableStatus())  # what the SDK still believes
    assert enabled.status().state is RobotState.CONNECTED
    arm.never_enable, arm.driver_feedback = False, True
    enabled.enable(timeout_s=PATIENT_S)
    assert enabled.status().state is RobotState.ENABLED


def test_the_fake_arm_sends_nothing_once_go_silent_returns():
    """The link-loss tests rely on it: a feedback thread preempted between its silence check and its send
    (a loaded host) must not send a batch after ``go_silent`` returned, or the lost link "recovers"."""
    fake = FakePiper(unique_channel())
    send, in_send, resume = fake._send_feedback, threading.Event(), threading.Event()

    def preempted_send() -> None:  # the thread stalls after its check, mid-batch
        in_send.set()
        resume.wait()
        send()

    fake._send_feedback = preempted_send
    with fake, can.Bus(interface="virtual", channel=fake.channel) as listener:
        assert in_send.wait(PATIENT_S)
        silenced = threading.Thread(target=fake.go_silent)
        silenced.start()
        silenced.join(timeout=0.2)
        resume.set()
        silenced.join()
        silent_wall_s = time.time()
        fake._send_feedback = send
        late = []
        while (msg := listener.recv(timeout=0.2)) is not None:  # everything queued, then 0.2 s more
            late += [msg] if msg.timestamp > silent_wall_s else []
        assert late == [], f"{len(late)} feedback frame(s) sent after go_silent returned"


def test_link_loss_is_an_error_that_refuses_motion_and_recovers(enabled, arm):
    enabled.config = dataclasses.replace(enabled.config, link_timeout_s=0.3)  # the time-out under test
    arm.go_silent()
    assert wait_for(lambda: enabled.status().state is RobotState.ERROR)
    status = enabled.status()
    assert "CAN link lost" in status.message
    assert "no feedback" in status.message
    assert status.counters["link_lost"] == 1
    sent_before = len(frames_heard_after_all_sent(arm))
    with pytest.raises(MotionRefused, match="CAN link lost"):
        enabled.execute(DeltaAction(10, 0, 0, 0, 0, 0, 1))
    assert motion_frames(frames_heard_after_all_sent(arm)[sent_before:]) == []  # nothing went out
    # One look (timeout 0): the arm stands at the held target, so only the refusal can say False.
    assert not enabled.wait_until_still(timeout_s=0)
    arm.speak()

    def recovered() -> bool:  # one status read: a stall under load may briefly count as loss again
        status = enabled.status()
        return status.state is RobotState.ENABLED and "recovered" in status.message

    assert wait_for(recovered)


def test_failed_sends_are_an_error_not_a_log_line(enabled, arm):
    enabled._sdk.GetCanBus().send_bus.shutdown()  # the adapter went away under the SDK
    with pytest.raises(MotionRefused, match=r"command not delivered: sending frame 0x151 failed"):
        enabled.move_to(EndPose(*START_POSE), gripper_mm=0.0)
    status = enabled.status()
    assert status.state is RobotState.ERROR
    assert status.counters["send_failed"] >= 1


def test_arm_fault_is_reported_as_error_with_the_reason(enabled, arm):
    arm.set_fault(arm_status=0x07)
    assert wait_for(lambda: enabled.status().state is RobotState.ERROR)
    assert "collision" in enabled.status().message
    with pytest.raises(MotionRefused, match="collision"):
        enabled.execute(DeltaAction(1, 0, 0, 0, 0, 0, 1))


def test_joints_reading_zero_in_standby_keep_the_last_real_values(enabled, arm):
    assert wait_for(lambda: enabled.observe().joints_rad[1] != 0.0)
    real = enabled.observe().joints_rad
    enabled.disable()  # fake drops to standby and reports zeros, like the arm
    assert wait_for(lambda: arm.state.ctrl_mode == 0x00 and not arm.state.enabled)
    assert wait_for(lambda: enabled.observe() and enabled.status().counters.get("joints_zero_in_standby", 0) >= 1)
    assert enabled.observe().joints_rad == real
    assert enabled.status().counters["joints_zero_in_standby"] >= 1


def test_home_moves_to_the_configured_pose(arm):
    home = (200.0, 50.0, 300.0, 180.0, 10.0, 170.0)
    backend = SdkBackend(config(arm.channel, home_pose=home, home_timeout_s=PATIENT_S))
    backend.connect()
    try:
        backend.enable(timeout_s=PATIENT_S)
        backend.home()
        assert arm.pose_mm_deg[:3] == pytest.approx(home[:3], abs=2.0)
    finally:
        backend.disconnect()


@pytest.mark.parametrize(
    ("key", "value"),
    [("speed_rate_pct", 0), ("gripper_effort_mnm", 6000), ("link_timeout_s", -1.0), ("can_port", " ")],
)
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        SdkConfig(**{key: value})


def test_emergency_stop_during_homing_interrupts_it_with_the_reason(arm):
    import threading

    backend = SdkBackend(
        config(arm.channel, home_pose=(400.0, 0.0, 300.0, 180.0, 0.0, 180.0), home_timeout_s=PATIENT_S)
    )
    backend.connect()
    try:
        backend.enable(timeout_s=PATIENT_S)
        arm.time_constant_s = 1e9  # homing cannot finish before the stop below

        def stop_once_the_home_command_is_out() -> None:
            home_xy = (400_000, 0)  # the home pose's x, y in 0.001 mm: enable's hold command differs
            wait_for(
                lambda: any(
                    i == cc.ID_CARTESIAN_XY and cc.decode_pair_i32(data, i) == home_xy for i, data in list(arm.commands)
                )
            )
            backend.emergency_stop()

        threading.Thread(target=stop_once_the_home_command_is_out, daemon=True).start()
        with pytest.raises(MotionRefused, match=r"homing interrupted: .*emergency stop"):
            backend.home()
    finally:
        backend.disconnect()


def test_reconnecting_on_the_same_port_works(arm):
    # A lifecycle cleanup then configure again: piper_sdk hands back the same interface object,
    # still holding the old readings, and its reader thread may take up to 1 s to notice the new bus.
    for _ in range(2):
        backend = SdkBackend(config(arm.channel, connect_timeout_s=2.0))
        backend.connect()
        backend.enable(timeout_s=PATIENT_S)
        backend.execute(DeltaAction(5, 0, 0, 0, 0, 0, 1))
        assert backend.wait_until_still(timeout_s=PATIENT_S)
        backend.disconnect()
        assert backend.status().state is RobotState.DISCONNECTED
    assert arm.pose_mm_deg[0] == pytest.approx(160.0, abs=2.0)
