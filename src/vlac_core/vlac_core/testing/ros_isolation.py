"""Network and run discipline for every test that starts rclpy.

Why: Fast DDS's default discovery multicasts out of the machine's network interface, and parallel
`colcon test` jobs on one domain see each other's nodes. Each package's `test/ros/conftest.py` calls
:func:`configure` before any rclpy import, so that

- a ROS test run without ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` fails at once, naming the variable
  (make test, .ci/run and the benches set it);
- each package gets its own ``ROS_DOMAIN_ID`` (distinct within one run), and no two test processes on this
  machine share one: a process holds a lock on its id (``flock`` on a file in :func:`lock_dir`) until it exits,
  and a run that finds its id held moves to the next checkout offset. Two runs of one checkout side by side once
  saw each other's servers (stop 48); the offset per checkout alone could not part them. Subprocess nodes the
  tests start inherit the id;
- with ``VLAC_REQUIRE_ROS=1`` (set by .ci/run) a ROS test can never be skipped: missing rclpy or a
  missing vlac_msgs build is an error, and a skip inside a ROS test is reported as a failure.

A conftest imports the two pytest hooks below by name (pytest collects hooks from a conftest's
namespace) and calls :func:`configure` with its package.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import zlib
from pathlib import Path

import pytest

# One slot per package: parallel colcon test jobs of one run never share a domain.
PACKAGE_SLOTS = {
    "vlac_core": 1,
    "vlac_critic": 2,
    "vlac_actor": 3,
    "vlac_trainer": 4,
    "piper_driver": 5,
    "vlac": 6,
}
_SLOTS_PER_CHECKOUT = 8
_CHECKOUT_OFFSETS = 12  # 12 * 8 + 6 < 101, the largest domain id whose ports stay below the ephemeral range
#: Where the domain locks live (default: the system's temporary folder, shared by every checkout on the machine).
LOCK_DIR_VARIABLE = "VLAC_ROS_DOMAIN_LOCKS"
#: The locks this process holds, by domain id: the open files keep them until the process exits.
_held: dict[int, int] = {}


class RosTestEnvironmentError(RuntimeError):
    """The environment would let ROS traffic leave the machine, or a required ROS stack is missing."""


def domain_id_for(package: str, checkout: Path) -> int:
    """The ROS domain id of ``package``'s tests in ``checkout`` (1..102, distinct per package)."""
    if package not in PACKAGE_SLOTS:
        raise ValueError(f"unknown package {package!r}: add it to PACKAGE_SLOTS in {__file__}")
    offset = zlib.crc32(str(checkout.resolve()).encode()) % _CHECKOUT_OFFSETS
    return offset * _SLOTS_PER_CHECKOUT + PACKAGE_SLOTS[package]


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_VARIABLE) or tempfile.gettempdir())


def claim_domain(package: str, checkout: Path) -> int:
    """``package``'s first domain id, from ``checkout``'s offset on, that no other process on this machine holds;
    this process holds it until it exits (or :func:`release_domains`). Raises naming the lock folder when every
    offset is held."""
    first = domain_id_for(package, checkout)
    folder = lock_dir()
    for step in range(_CHECKOUT_OFFSETS):  # the next offsets, the package's slot kept
        domain = (first + step * _SLOTS_PER_CHECKOUT) % (_CHECKOUT_OFFSETS * _SLOTS_PER_CHECKOUT)
        if domain in _held:
            return domain
        # Read-only and created readable by all: another user's run on this machine can open and lock it too.
        fd = os.open(folder / f"vlac_ros_domain_{domain}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held[domain] = fd
        return domain
    raise RosTestEnvironmentError(
        f"every ROS domain id of {package}'s tests ({_CHECKOUT_OFFSETS} of them) is held by another test process "
        f"on this machine (locks in {folder}): wait for those runs to end, or set ROS_DOMAIN_ID"
    )


def release_domains() -> None:
    """Give up every domain lock this process holds (a process's exit does it too)."""
    while _held:
        os.close(_held.popitem()[1])


def ros_required() -> bool:
    return os.environ.get("VLAC_REQUIRE_ROS", "") == "1"


def configure(package: str, test_dir: Path) -> int:
    """Check loopback-only discovery and set this package's ``ROS_DOMAIN_ID``; returns the id.

    An explicit ``ROS_DOMAIN_ID`` in the environment is kept (a developer's choice wins, and takes no lock).
    """
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        raise RosTestEnvironmentError(
            "ROS tests must run with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (found "
            f"{os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE')!r}): without it Fast DDS sends discovery "
            "multicast out of this machine. `make test` sets it."
        )
    if "ROS_DOMAIN_ID" not in os.environ:
        checkout = test_dir.resolve().parents[3]  # <checkout>/src/<pkg>/test/ros -> <checkout>
        os.environ["ROS_DOMAIN_ID"] = str(claim_domain(package, checkout))
    if ros_required():
        import importlib

        for module in ("rclpy", "vlac_msgs.msg"):
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise RosTestEnvironmentError(
                    f"VLAC_REQUIRE_ROS=1 but {module} cannot be imported ({error}): build the workspace "
                    "(make build) and source install/setup.bash, or unset VLAC_REQUIRE_ROS to allow skips"
                ) from error
    return int(os.environ["ROS_DOMAIN_ID"])


def fail_skips_when_required(report) -> None:
    """Turn a skipped ROS test report into a failure under ``VLAC_REQUIRE_ROS=1`` (pytest hook helper)."""
    if ros_required() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"a ROS test was skipped but VLAC_REQUIRE_ROS=1 forbids it: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """pytest hook (import it into a conftest): a skipped ROS test fails under VLAC_REQUIRE_ROS=1."""
    outcome = yield
    fail_skips_when_required(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """pytest hook (import it into a conftest): a module skipped at collection fails likewise."""
    outcome = yield
    fail_skips_when_required(outcome.get_result())
