"""The discipline every rclpy test runs under: loopback discovery, a domain per package, no silent skips."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from vlac_core.testing import ros_isolation


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "VLAC_REQUIRE_ROS"):
        monkeypatch.delenv(name, raising=False)
    locks = tmp_path / "locks"
    locks.mkdir()
    monkeypatch.setenv(ros_isolation.LOCK_DIR_VARIABLE, str(locks))  # not the machine's: a real run's ids stay free
    yield monkeypatch
    ros_isolation.release_domains()


def _hold(domain: int) -> int:
    """Lock ``domain`` as another test run would (a separate open file: flock treats it as another holder)."""
    fd = os.open(ros_isolation.lock_dir() / f"vlac_ros_domain_{domain}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _test_dir(root: Path, package: str) -> Path:
    path = root / "src" / package / "test" / "ros"
    path.mkdir(parents=True)
    return path


def test_a_ros_test_without_loopback_discovery_fails_naming_the_variable(clean_env, tmp_path):
    with pytest.raises(ros_isolation.RosTestEnvironmentError, match="ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST"):
        ros_isolation.configure("vlac_core", _test_dir(tmp_path, "vlac_core"))
    clean_env.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    with pytest.raises(ros_isolation.RosTestEnvironmentError, match="'SUBNET'"):
        ros_isolation.configure("vlac_core", _test_dir(tmp_path / "b", "vlac_core"))


def test_each_package_of_a_checkout_gets_its_own_domain(clean_env, tmp_path):
    ids = {ros_isolation.domain_id_for(package, tmp_path) for package in ros_isolation.PACKAGE_SLOTS}
    assert len(ids) == len(ros_isolation.PACKAGE_SLOTS)
    assert all(0 < i <= 101 for i in ids)
    clean_env.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain = ros_isolation.configure("vlac_actor", _test_dir(tmp_path, "vlac_actor"))
    assert domain == ros_isolation.domain_id_for("vlac_actor", tmp_path)
    assert int(__import__("os").environ["ROS_DOMAIN_ID"]) == domain


def test_a_domain_held_by_another_run_is_passed_over(clean_env, tmp_path):
    clean_env.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    own = ros_isolation.domain_id_for("vlac", tmp_path)
    other = _hold(own)
    try:
        domain = ros_isolation.configure("vlac", _test_dir(tmp_path, "vlac"))
        # the next checkout offset, the package's own slot: still apart from every other package's ids
        assert domain != own and domain % 8 == own % 8 and 0 < domain <= 101
        assert ros_isolation.claim_domain("vlac", tmp_path) == domain  # this process's own lock is no obstacle
        with pytest.raises(BlockingIOError):  # and it holds it against another run
            _hold(domain)
    finally:
        os.close(other)


def test_every_domain_held_is_an_error_naming_the_lock_folder(clean_env, tmp_path):
    slot = ros_isolation.PACKAGE_SLOTS["vlac_core"]
    held = [_hold(offset * 8 + slot) for offset in range(12)]
    try:
        with pytest.raises(ros_isolation.RosTestEnvironmentError, match=f"held by another.*{ros_isolation.lock_dir()}"):
            ros_isolation.claim_domain("vlac_core", tmp_path)
    finally:
        for fd in held:
            os.close(fd)


def test_an_explicit_domain_is_kept(clean_env, tmp_path):
    clean_env.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    clean_env.setenv("ROS_DOMAIN_ID", "42")
    assert ros_isolation.configure("vlac", _test_dir(tmp_path, "vlac")) == 42


def test_an_unknown_package_is_refused():
    with pytest.raises(ValueError, match="unknown package 'nope'"):
        ros_isolation.domain_id_for("nope", Path("."))


def test_a_missing_ros_stack_is_an_error_when_ros_is_required(clean_env, tmp_path):
    clean_env.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    clean_env.setenv("VLAC_REQUIRE_ROS", "1")
    clean_env.setitem(__import__("sys").modules, "rclpy", None)  # import rclpy -> ImportError
    with pytest.raises(ros_isolation.RosTestEnvironmentError, match="VLAC_REQUIRE_ROS=1 but rclpy cannot be imported"):
        ros_isolation.configure("vlac_core", _test_dir(tmp_path, "vlac_core"))


def test_skips_become_failures_only_when_ros_is_required(clean_env):
    def skipped():
        return SimpleNamespace(skipped=True, outcome="skipped", longrepr=("f.py", 3, "Skipped: no rclpy"))

    report = skipped()
    ros_isolation.fail_skips_when_required(report)
    assert report.outcome == "skipped"
    clean_env.setenv("VLAC_REQUIRE_ROS", "1")
    ros_isolation.fail_skips_when_required(report)
    assert report.outcome == "failed" and "Skipped: no rclpy" in report.longrepr
