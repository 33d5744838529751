"""vlac.graph: the node list both the launch files and the whole-graph test start, without ROS."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vlac.episode.arm_wiring import SCENES_PER_ARM
from vlac.graph import effective_parameters, node_list, section_matches, session_root
from vlac.param_file import merged_param_text, read_session_sections, ros_param_file
from vlac_core.config import ConfigError, load_param_file

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config"


def table(specs):
    return [(s.package, s.executable, s.namespace, s.name) for s in specs]


def by_fqn(specs):
    return {s.fqn: s for s in specs}


def test_one_simulated_arm():
    specs = node_list(CONFIG / "sim_pick_bowl.yaml")
    assert table(specs) == [
        ("vlac_actor", "actor_node", "", "actor_node"),
        ("vlac_critic", "critic_node", "", "critic_node"),
        ("vlac_trainer", "trainer_node", "", "trainer_node"),
        ("vlac", "episode_manager_node", "arm_0", "episode_manager"),
        ("piper_driver", "arm_node", "arm_0", "sim_node"),  # the one arm node, named after its backend
    ]
    assert by_fqn(specs)["/arm_0/sim_node"].overrides["backend"] == "sim"
    assert all(s.param_file == ros_param_file(CONFIG / "sim_pick_bowl.yaml") for s in specs)  # the merged overlay
    manager = by_fqn(specs)["/arm_0/episode_manager"].overrides
    assert manager == {
        "robot_id": "arm_0",
        "record": True,
        "bag_dir": str(REPO / "out/ros_session/bags/arm_0"),
    }
    # The trainer re-reads the arm's training bags at start (a restart loses nothing).
    trainer = by_fqn(specs)["/trainer_node"].overrides
    assert trainer["bag_dirs"] == [str(REPO / "out/ros_session/bags/arm_0/train")]


def test_two_arms_share_actor_critic_and_trainer_and_draw_their_own_scenes():
    specs = node_list(CONFIG / "sim_multi_arm.yaml", 2, record=False)
    assert [s.fqn for s in specs] == [
        "/actor_node",
        "/critic_node",
        "/trainer_node",
        "/arm_0/episode_manager",
        "/arm_0/sim_node",
        "/arm_1/episode_manager",
        "/arm_1/sim_node",
    ]
    nodes = by_fqn(specs)
    # arm_1's episode manager derives its seeds from its robot id (vlac.episode.arm_wiring.arm_seeds,
    # the session's rule); its sim node's first scene follows the same rule.
    assert nodes["/arm_1/episode_manager"].overrides["robot_id"] == "arm_1"
    assert "scene_seed" not in nodes["/arm_1/episode_manager"].overrides
    assert nodes["/arm_1/sim_node"].overrides == {"seed": SCENES_PER_ARM, "backend": "sim"}
    assert nodes["/trainer_node"].overrides["bag_dirs"] == [
        str(Path(nodes[f"/arm_{k}/episode_manager"].overrides["bag_dir"]) / "train") for k in (0, 1)
    ]
    assert nodes["/arm_1/episode_manager"].overrides["record"] is False
    assert nodes["/arm_0/episode_manager"].overrides["bag_dir"] != nodes["/arm_1/episode_manager"].overrides["bag_dir"]


def test_real_arms_get_their_own_can_port_and_camera_from_per_arm_sections():
    path = CONFIG / "real_two_arms.yaml"
    specs = node_list(path, 2, sim=False)
    assert [s.fqn for s in specs][3:] == [
        "/arm_0/episode_manager",
        "/arm_0/driver_node",
        "/arm_0/camera_node",
        "/arm_1/episode_manager",
        "/arm_1/driver_node",
        "/arm_1/camera_node",
    ]
    sections = load_param_file(path)
    arm0 = effective_parameters(sections, "/arm_0/driver_node", "driver_node")
    arm1 = effective_parameters(sections, "/arm_1/driver_node", "driver_node")
    assert (arm0["can_port"], arm1["can_port"]) == ("can0", "can1")
    assert arm0["speed_rate_pct"] == arm1["speed_rate_pct"] == 30  # the shared section reaches both
    cams = [effective_parameters(sections, f"/arm_{k}/camera_node", "camera_node")["device"] for k in (0, 1)]
    assert cams == ["/dev/video0", "/dev/video2"]
    # The camera node's image_raw is what each arm's episode manager reads as its front image.
    camera = by_fqn(specs)["/arm_1/camera_node"]
    assert camera.remappings == (("image_raw", "front_camera/image_raw"),)
    assert camera.command("/ws/install", "o.yaml")[-2:] == ["-r", "image_raw:=front_camera/image_raw"]
    assert all(not s.remappings for s in specs if s.name != "camera_node")
    driver = by_fqn(specs)["/arm_1/driver_node"]
    assert (driver.executable, driver.overrides["backend"]) == ("arm_node", "sdk")


@pytest.mark.parametrize(
    ("key", "fqn", "matches"),
    [
        ("sim_node", "/sim_node", True),
        ("sim_node", "/arm_0/sim_node", False),  # a plain name is the root namespace only (as rcl reads it)
        ("/**/sim_node", "/arm_0/sim_node", True),
        ("/**/sim_node", "/sim_node", True),
        ("/**/sim_node", "/a/b/sim_node", True),
        ("arm_1/sim_node", "/arm_1/sim_node", True),
        ("arm_1/sim_node", "/arm_0/sim_node", False),
        ("/*/sim_node", "/arm_3/sim_node", True),
        ("/*/sim_node", "/sim_node", False),
        ("/**", "/anything/at/all", True),
        ("/**/sim_node", "/arm_0/sim_node_2", False),
    ],
)
def test_sections_match_nodes_by_ros_rules(key, fqn, matches):
    assert section_matches(key, fqn) is matches


def test_a_later_per_arm_section_wins_over_the_shared_one(tmp_path):
    path = tmp_path / "s.yaml"
    arm_1 = {"arm_1/sim_node": {"ros__parameters": {"task": "sweep", "seed": 7}}}
    path.write_text(merged_param_text(CONFIG / "sim_pick_bowl.yaml") + yaml.safe_dump(arm_1))
    nodes = by_fqn(node_list(path, 2))
    sections = load_param_file(path)
    assert effective_parameters(sections, "/arm_0/sim_node", "sim_node")["task"] == "pick_bowl"
    assert effective_parameters(sections, "/arm_1/sim_node", "sim_node")["task"] == "sweep"
    assert nodes["/arm_0/sim_node"].overrides["seed"] == 0
    assert nodes["/arm_1/sim_node"].overrides["seed"] == 7 + SCENES_PER_ARM


def test_relative_paths_resolve_against_the_session_root_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nodes = by_fqn(node_list(CONFIG / "sim_pick_bowl.yaml"))
    assert session_root(CONFIG / "sim_pick_bowl.yaml") == REPO
    assert nodes["/actor_node"].overrides["checkpoint_path"] == str(REPO / "models/sim_actor")
    assert nodes["/critic_node"].overrides["checkpoint"] == str(REPO / "models/sim_critic")
    assert nodes["/trainer_node"].overrides["output_dir"] == str(REPO / "out/ros_session/trainer")
    # A file outside a config/ folder: its own folder is the root; absolute paths stay as they are.
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    text = merged_param_text(CONFIG / "sim_pick_bowl.yaml").replace(
        "checkpoint: models/sim_critic", "checkpoint: /abs/critic"
    )
    (elsewhere / "s.yaml").write_text(text)
    nodes = by_fqn(node_list(elsewhere / "s.yaml"))
    assert nodes["/actor_node"].overrides["checkpoint_path"] == str(elsewhere / "models/sim_actor")
    assert nodes["/critic_node"].overrides["checkpoint"] == "/abs/critic"


def test_a_bad_value_in_a_per_arm_section_names_the_file_node_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text((CONFIG / "real_two_arms.yaml").read_text().replace("can_port: can1", "speed_rate_pct: 500"))
    with pytest.raises(ConfigError, match=r"bad\.yaml \[/arm_1/driver_node\].*speed_rate_pct: 500"):
        node_list(path, 2, sim=False)
    path.write_text((CONFIG / "real_two_arms.yaml").read_text().replace("can_port: can1", "can_prot: can1"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['can_prot'\]"):
        node_list(path, 2, sim=False)


def test_a_session_file_cannot_set_the_arm_backend_the_section_name_decides_it(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        merged_param_text(CONFIG / "sim_pick_bowl.yaml")
        + yaml.safe_dump({"arm_0/sim_node": {"ros__parameters": {"backend": "sdk"}}})
    )
    with pytest.raises(ConfigError, match=r"\[/arm_0/sim_node\]: unknown key\(s\) \['backend'\]"):
        node_list(path)


def test_an_actor_and_trainer_that_disagree_fail_before_any_node_starts(tmp_path):
    path = tmp_path / "disagree.yaml"
    sections = read_session_sections(CONFIG / "sim_pick_bowl.yaml")
    sections["trainer_node"]["max_task_chars"] = sections["actor_node"].get("max_task_chars", 300) + 1
    path.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    with pytest.raises(ConfigError, match=r"disagree\.yaml: .*max_task_chars"):
        node_list(path)


def test_a_group_advantage_needs_every_arm_to_repeat_its_scenes(tmp_path):
    path = tmp_path / "groups.yaml"
    sections = read_session_sections(CONFIG / "sim_pick_bowl.yaml")
    sections["trainer_node"]["advantage"] = "group"
    sections["arm_0/episode_manager"] = {"scene_repeats": 4, "return_explore": False}
    path.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    assert len(node_list(path, 1)) > 0  # arm 0 runs each scene 4 times: one batch of 4 per scene
    with pytest.raises(ConfigError, match=r"groups\.yaml \[/arm_1/episode_manager\]: .*scene_repeats is 1"):
        node_list(path, 2)  # arm 1 runs each scene once: none of its episodes would have a group


def test_the_phase_matched_group_advantage_is_refused_on_real_arms_which_record_no_phase(tmp_path):
    path = tmp_path / "phase.yaml"
    sections = read_session_sections(CONFIG / "real_two_arms.yaml")
    sections["trainer_node"]["advantage"] = "group_phase"
    path.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    with pytest.raises(ConfigError, match=r"phase\.yaml \[trainer_node\]: advantage: group_phase compares episodes by"):
        node_list(path, 2, sim=False)
    sim = tmp_path / "sim_phase.yaml"
    sections = read_session_sections(CONFIG / "sim_pick_bowl.yaml")
    sections["trainer_node"]["advantage"] = "group_phase"
    sections["/**/episode_manager"]["scene_repeats"] = 4
    sections["/**/episode_manager"]["return_explore"] = False
    sim.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    assert len(node_list(sim, 1)) > 0  # a simulated arm records the phase on every step


def test_a_scene_pool_is_refused_on_real_arms_naming_the_key(tmp_path):
    path = tmp_path / "pool.yaml"
    sections = read_session_sections(CONFIG / "real_two_arms.yaml")
    sections["arm_1/episode_manager"] = {"scene_pool": 5}
    path.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    with pytest.raises(ConfigError, match=r"pool\.yaml \[/arm_1/episode_manager\]: scene_pool: 5 cycles simulated"):
        node_list(path, 2, sim=False)
    sim = tmp_path / "sim_pool.yaml"
    sections = read_session_sections(CONFIG / "sim_pick_bowl.yaml")
    sections["/**/episode_manager"]["scene_pool"] = 5
    sim.write_text(yaml.safe_dump({name: {"ros__parameters": p} for name, p in sections.items()}, sort_keys=False))
    assert "/arm_1/sim_node" in by_fqn(node_list(sim, 2))  # simulated arms take it


def test_at_least_one_arm():
    with pytest.raises(ConfigError, match="arms: expected at least 1 arm, got 0"):
        node_list(CONFIG / "sim_pick_bowl.yaml", 0)


def test_a_node_runs_from_the_install_folder_with_the_session_file_then_its_overrides(tmp_path):
    spec = by_fqn(node_list(CONFIG / "sim_multi_arm.yaml", 2))["/arm_1/episode_manager"]
    command = spec.command("/ws/install", tmp_path / "o.yaml")
    assert command == [
        "/ws/install/vlac/lib/vlac/episode_manager_node",
        "--ros-args",
        "-r",
        "__node:=episode_manager",
        "-r",
        "__ns:=/arm_1",
        "--params-file",
        str(spec.param_file),
        "--params-file",
        str(tmp_path / "o.yaml"),
    ]
    assert yaml.safe_load(spec.overrides_yaml()) == {"/arm_1/episode_manager": {"ros__parameters": spec.overrides}}
