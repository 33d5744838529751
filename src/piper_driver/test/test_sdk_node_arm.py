"""The arm node's sdk backend without ROS, against the fake PiPER on python-can's virtual bus: a real
arm only homes, keeps no start states, and its monotonic stamps land on the node's clock keeping their age."""

import time
import uuid
from dataclasses import replace

import pytest

from piper_driver.driver_config import DriverNodeConfig
from piper_driver.fake_piper import FakePiper
from piper_driver.node_arm import SdkNodeArm

ROS_NOW_S = 5000.0


@pytest.fixture
def arm():
    with FakePiper(f"vcan_{uuid.uuid4().hex[:10]}") as fake:
        # link_timeout_s: not under test; a loaded machine can stall the fake arm's feedback past 0.5 s.
        config = DriverNodeConfig(can_port=fake.channel, bustype="virtual", link_timeout_s=10.0)
        served = SdkNodeArm(config, clock=lambda: ROS_NOW_S)
        try:
            yield served
        finally:
            served.close()


def test_a_real_arm_only_homes_and_keeps_no_start_state(arm):
    arm.enable()
    refused = arm.reset("random", seed=3)
    assert not refused.ok and "'random'" in refused.message and "('home',)" in refused.message
    assert arm.start_state_id() is None and arm.cameras == ()
    homed = arm.reset("home")
    assert homed.ok and homed.end_pose.z_mm == pytest.approx(arm.config.home_pose[2], abs=2.0)


def test_stamps_keep_their_age_on_the_node_clock_and_diagnostics_name_the_port(arm):
    three_seconds_old = replace(arm.safe_arm.observe(), stamp_s=time.monotonic() - 3.0)
    assert arm.stamp_s(three_seconds_old, ROS_NOW_S) == pytest.approx(ROS_NOW_S - 3.0, abs=0.5)
    port = arm.config.can_port
    assert arm.identity() == (f"PiPER on {port}", port) and arm.diagnostics_extra() == {"can_port": port}
