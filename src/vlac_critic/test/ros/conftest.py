"""ROS tests of vlac_critic: loopback-only discovery, this package's own ROS_DOMAIN_ID, no silent skips in CI."""

from pathlib import Path

import pytest

from vlac_core.testing import ros_isolation

ros_isolation.configure("vlac_critic", Path(__file__).parent)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    ros_isolation.fail_skips_when_required(outcome.get_result())


def pytest_collectreport(report):
    ros_isolation.fail_skips_when_required(report)
