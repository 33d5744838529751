"""What `ros2 launch vlac ...` finds once the workspace is installed: launch files, session files and
the shipped models they name, found through the ament index as ROS finds them."""

from __future__ import annotations

from pathlib import Path

import pytest

ament_index = pytest.importorskip("ament_index_python.packages", reason="needs the ament index (ROS 2)")

from vlac.param_file import load_session_files  # noqa: E402

SIM_SESSIONS = ("demo.yaml", "sim_pick_bowl.yaml", "sim_multi_arm.yaml")


@pytest.fixture(scope="module")
def share() -> Path:
    return Path(ament_index.get_package_share_directory("vlac"))


def test_the_launch_files_and_the_session_files_are_installed(share):
    assert {p.name for p in (share / "launch").glob("*.launch.py")} >= {"rl_session.launch.py", "multi_arm.launch.py"}
    assert {p.name for p in (share / "config").glob("*.yaml")} >= set(SIM_SESSIONS) | {"real_two_arms.yaml"}


@pytest.mark.parametrize("name", SIM_SESSIONS)
def test_an_installed_session_file_names_installed_models(share, name):
    files = load_session_files(share / "config" / name)
    for checkpoint in (files.actor.checkpoint_path, files.critic.checkpoint, files.trainer.checkpoint_path):
        assert (Path(checkpoint) / "model.safetensors").is_file(), checkpoint
    for model in ("sim_actor", "sim_critic"):
        assert (share / "models" / model / "model.safetensors").is_file()
