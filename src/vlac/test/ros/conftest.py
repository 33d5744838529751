"""ROS tests of vlac: loopback-only discovery, this package's own ROS_DOMAIN_ID, no silent skips in CI."""

from pathlib import Path

from vlac_core.testing import ros_isolation
from vlac_core.testing.ros_isolation import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401 (hooks)

ros_isolation.configure("vlac", Path(__file__).parent)
