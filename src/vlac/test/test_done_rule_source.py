"""episode_manager.done_rule: a session and a ROS graph run with the critic checkpoint's own done rule when told to,
and refuse at start-up, naming the key, when it has none (never the written keys in its place)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vlac.graph import node_list
from vlac.param_file import EpisodeManagerConfig, load_session_files, read_session_sections
from vlac_core.config import ConfigError
from vlac_critic.done_rule import DoneRule, write_done_rule

CONFIG = Path(__file__).resolve().parents[3] / "config"


def session_file(tmp_path: Path, critic: Path, manager: dict, arm_1: dict | None = None) -> Path:
    sections = read_session_sections(CONFIG / "sim_pick_bowl.yaml")
    sections["critic_node"]["checkpoint"] = str(critic)
    sections["/**/episode_manager"].update(manager)
    if arm_1 is not None:
        sections["arm_1/episode_manager"] = arm_1
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    return path


@pytest.fixture
def critic(tmp_path):
    folder = tmp_path / "critic"
    folder.mkdir()
    return folder


def test_the_session_runs_with_the_critics_rule_when_told_to(tmp_path, critic):
    write_done_rule(critic, DoneRule(0.8, 3), {"episodes": 150})
    manager = load_session_files(session_file(tmp_path, critic, {"done_rule": "critic"})).manager
    assert (manager.done_threshold, manager.done_confirm_steps) == (0.8, 3)
    assert manager.done_rule_checkpoint == str(critic)
    loop = manager.loop_config()
    assert (loop.done_threshold, loop.done_confirm_steps) == (0.8, 3)
    # done_rule: config (the default) keeps the keys as written, whatever the checkpoint holds
    manager = load_session_files(session_file(tmp_path, critic, {"done_threshold": 0.7})).manager
    assert (manager.done_rule, manager.done_threshold, manager.done_confirm_steps) == ("config", 0.7, 1)


def test_a_critic_without_a_rule_is_refused_naming_the_key_and_the_file(tmp_path, critic):
    path = session_file(tmp_path, critic, {"done_rule": "critic"})
    with pytest.raises(
        ConfigError, match=r"session\.yaml \[episode_manager\]: done_rule: critic: .*done_rule\.json: no"
    ):
        load_session_files(path)


def test_the_session_refuses_a_rule_checkpoint_other_than_its_critic(tmp_path, critic):
    write_done_rule(critic, DoneRule(0.8, 3), {})
    other = tmp_path / "other"
    other.mkdir()
    path = session_file(tmp_path, critic, {"done_rule": "critic", "done_rule_checkpoint": str(other)})
    with pytest.raises(ConfigError, match=r"done_rule_checkpoint: .*other is not the critic this session runs"):
        load_session_files(path)


def test_a_ros_node_reads_the_rule_from_its_checkpoint_key_and_needs_it():
    with pytest.raises(ConfigError, match="done_rule: critic needs the critic's checkpoint in done_rule_checkpoint"):
        EpisodeManagerConfig(done_rule="critic").with_done_rule()
    assert EpisodeManagerConfig(done_threshold=0.7).with_done_rule() == EpisodeManagerConfig(done_threshold=0.7)


def test_the_graph_hands_each_arm_that_asks_the_critics_checkpoint(tmp_path, critic):
    write_done_rule(critic, DoneRule(0.8, 3), {})
    specs = {s.fqn: s for s in node_list(session_file(tmp_path, critic, {}, arm_1={"done_rule": "critic"}), 2)}
    assert "done_rule_checkpoint" not in specs["/arm_0/episode_manager"].overrides
    assert specs["/arm_1/episode_manager"].overrides["done_rule_checkpoint"] == str(critic)
    # the node resolves it with the same code: the section with the override in force
    node = EpisodeManagerConfig(done_rule="critic", done_rule_checkpoint=str(critic)).with_done_rule()
    assert (node.done_threshold, node.done_confirm_steps) == (0.8, 3)
    (critic / "done_rule.json").unlink()
    with pytest.raises(ConfigError, match=r"session\.yaml \[/arm_1/episode_manager\]: done_rule: critic: .*no done"):
        node_list(session_file(tmp_path, critic, {}, arm_1={"done_rule": "critic"}), 2)
