"""One session file names the same folders in both runtimes, whatever the working directory.

``vlac session --config`` (vlac.param_file.load_session_files) and the ROS graph
(vlac.graph.node_list) resolve relative paths against the file's session root: the folder above
``config/``, else the file's own folder.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from vlac.cli import main
from vlac.graph import node_list
from vlac.param_file import load_session_files, session_root

SECTIONS = {
    "actor_node": {"checkpoint_path": "models/actor"},
    "critic_node": {"checkpoint": "models/critic"},
    "trainer_node": {"checkpoint_path": "models/actor", "output_dir": "out/trainer", "bag_dirs": ["b/train"]},
    "/**/episode_manager": {"bag_dir": "out/bags"},
    "session": {"out_dir": "out/session", "demo_dir": "~/demos"},
}


def write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({k: {"ros__parameters": v} for k, v in SECTIONS.items()}, sort_keys=False))
    return path


def test_relative_paths_resolve_against_the_session_root_from_any_working_directory(tmp_path, monkeypatch):
    config = write(tmp_path / "project" / "config" / "s.yaml")
    root = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    files = load_session_files(Path("..") / "project" / "config" / "s.yaml")  # a relative --config too
    assert session_root(config) == root
    assert files.actor.checkpoint_path == files.trainer.checkpoint_path == str(root / "models/actor")
    assert files.critic.checkpoint == str(root / "models/critic")
    assert (files.trainer.output_dir, files.trainer.bag_dirs) == (str(root / "out/trainer"), [str(root / "b/train")])
    assert (files.manager.bag_dir, files.session.out_dir) == (str(root / "out/bags"), str(root / "out/session"))
    assert files.session.demo_dir == str(Path.home() / "demos")
    # The ROS graph gives its nodes the same folders.
    nodes = {s.fqn: s.overrides for s in node_list(config)}
    assert nodes["/actor_node"]["checkpoint_path"] == files.actor.checkpoint_path
    assert nodes["/critic_node"]["checkpoint"] == files.critic.checkpoint
    assert nodes["/trainer_node"]["output_dir"] == files.trainer.output_dir
    assert nodes["/arm_0/episode_manager"]["bag_dir"] == str(Path(files.manager.bag_dir) / "arm_0")
    # A file outside config/: its own folder is the root; absolute paths stay as they are.
    loose = write(tmp_path / "loose" / "s.yaml")
    assert load_session_files(loose).actor.checkpoint_path == str(tmp_path / "loose" / "models/actor")


def test_vlac_session_names_the_resolved_checkpoint_whatever_the_working_directory(tmp_path, monkeypatch, capsys):
    config = write(tmp_path / "project" / "config" / "s.yaml")
    (tmp_path / "project" / "models" / "actor").mkdir(parents=True)  # empty: no checkpoint in it
    monkeypatch.chdir(tmp_path)
    assert main(["session", "--config", str(config.relative_to(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert f"actor_node.checkpoint_path: checkpoint '{tmp_path / 'project' / 'models' / 'actor'}'" in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "project" / "out").exists()
