"""Session files as overlays of one base (``extends``): merged key by key, each file of a chain checked on
its own, and every shipped session file loading to the values it had before it became an overlay."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from vlac.graph import effective_parameters, node_list
from vlac.param_file import load_session_files, read_session_sections, ros_param_file, section_class, session_root
from vlac_actor.policy_settings import read_policy_settings
from vlac_core.config import ConfigError, from_mapping, load_param_file

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config"
#: Each shipped session file's effective values, computed from the files as they were before they became
#: overlays of config/session_base.yaml (the embedded session's six configs, and the config every node of a
#: two-arm ROS graph declares), relative paths against the repository. Less the keys that left the session
#: file since: the grammar and prompt settings (max_translation_mm, max_rotation_deg, num_views, history_len)
#: of actor_node and trainer_node, which the policy checkpoint now carries (vlac_actor.policy_settings).
BEFORE = json.loads((Path(__file__).parent / "data" / "session_effective_values.json").read_text())
#: experiment_pick_bowl spelled its arm sections ``sim_node`` / ``episode_manager``, which ROS applies to
#: root-namespace nodes only: no arm's node got them. As an overlay it spells them ``/**/`` like the base, so
#: under ROS every arm now gets what the embedded session always got: the one intended change.
ROS_NOW_AS_EMBEDDED = {
    "experiment_pick_bowl": {
        f"ros /arm_{k}/{node}": f"embedded {part}"
        for k in (0, 1)
        for node, part in (("sim_node", "sim"), ("episode_manager", "manager"))
    }
}
#: The one value every simulated session changed on purpose since: the shipped actor moved from 64 px frames
#: to 96 px (README, Models), so the simulated cameras render what it was trained on.
SHIPPED_ACTOR_FRAMES = {"image_size_px": 96}
SIMULATED = ("demo", "experiment_pick_bowl", "sim_multi_arm", "sim_pick_bowl")
ARM_NODES = {True: ("episode_manager", "sim_node"), False: ("episode_manager", "driver_node", "camera_node")}
#: Keys a section gained since (new parameters, at their defaults): the SDK backend's tuning, exposed when the
#: driver_node section came to extend SdkConfig instead of copying ten of its keys by hand, and its wait for
#: the arm to report an e-stop reset (resume_timeout_s); return-and-explore's choice of state to return to and
#: the backpressure from the trainer (the episode_manager node under ROS, the manager of the embedded session);
#: the scripted operator's stall takeover (the embedded session only); the trainer's self-imitation (off),
#: decoupled PPO (off) and group advantage (off: gae, its weighting per step) with the arms' scene repeats (1: none)
#: and scene pool (0: none),
#: the skip of optimiser steps on a zero gradient (off), the trainer node's rescan of the bags for episodes
#: whose message never came (every 10 s), the lesson diagnostic (off), the mid-run policies kept (none) and the KL
#: guard within an update (off).
_NEW_TRAINER_KEYS = {
    "own_process": False,
    "self_imitation_coef": 0.0,
    "self_imitation_capacity": 50,
    "ppo_clip_around": "behaviour",
    "behaviour_weight_max": 1.0,
    "advantage": "gae",
    "group_weighting": "step",
    "skip_zero_gradient_steps": False,
    "bag_rescan_s": 10.0,
    "lesson_agreement": False,
    "log_prior_kl": False,
    "keep_policy_every": 0,
    "kl_guard": 0.0,
}
#: the done rule's source (config: the keys as written) and the ROS nodes' critic checkpoint for done_rule: critic.
_NEW_MANAGER_KEYS = {
    "return_to": "start",
    "max_waiting_batches": 0,
    "scene_repeats": 1,
    "scene_pool": 0,
    "done_rule": "config",
    "done_rule_checkpoint": "",
}
ADDED_SINCE = {
    "episode_manager": _NEW_MANAGER_KEYS,
    "embedded manager": _NEW_MANAGER_KEYS,
    "embedded session": {
        "guided_explore_stall_steps": 0,
        "guided_explore_stall_phases": [],
        "eval_parallel": 1,
    },
    "critic_node": {"own_process": False},
    "embedded critic": {"own_process": False},
    "trainer_node": _NEW_TRAINER_KEYS,
    "embedded trainer": _NEW_TRAINER_KEYS,
    "driver_node": {
        "connect_timeout_s": 2.0,
        "position_tolerance_mm": 2.0,
        "rotation_tolerance_deg": 2.0,
        "gripper_tolerance_mm": 2.0,
        "motion_settle_s": 0.05,
        "gripper_stall_s": 0.2,
        "poll_period_s": 0.01,
        "resume_timeout_s": 5.0,
    },
}

#: Added keys a shipped file sets away from their defaults: the experiment runs its evaluation trials side by
#: side and the critic's model and each PPO update in child processes (README, Figures: the 200-episode runs),
#: and its arms wait for the trainer rather than outrun it (episode_manager.max_waiting_batches).
ADDED_AND_SET = {
    "experiment_pick_bowl": {
        "embedded session": {"eval_parallel": 10},
        "embedded manager": {"max_waiting_batches": 1},
        "episode_manager": {"max_waiting_batches": 1},
        "critic_node": {"own_process": True},
        "embedded critic": {"own_process": True},
        "trainer_node": {"own_process": True},
        "embedded trainer": {"own_process": True},
    }
}


def effective_values(path: Path, sim: bool) -> dict:
    """What ``vlac session`` builds from ``path`` and what each node of a two-arm ROS graph gets from it."""
    files = load_session_files(path)
    sections = read_session_sections(path)
    values = {
        f"embedded {name}": dataclasses.asdict(getattr(files, name))
        for name in ("sim", "actor", "critic", "trainer", "manager", "session")
    }
    nodes = [(f"/{name}", name) for name in ("actor_node", "critic_node", "trainer_node")]
    nodes += [(f"/arm_{k}/{name}", name) for k in (0, 1) for name in ARM_NODES[sim]]
    for fqn, name in nodes:
        config = from_mapping(section_class(name), effective_parameters(sections, fqn, name))
        values[f"ros {fqn}"] = dataclasses.asdict(config)
    return json.loads(json.dumps(values).replace(f"{session_root(path)}/", ""))


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_every_session_file_loads_to_the_values_it_had_before_it_became_an_overlay(name):
    after = effective_values(CONFIG / f"{name}.yaml", sim=name != "real_two_arms")
    assert sorted(after) == sorted(BEFORE[name])
    changed = ROS_NOW_AS_EMBEDDED.get(name, {})
    for part, values in BEFORE[name].items():
        key = part.rsplit("/", 1)[-1]
        added = {**ADDED_SINCE.get(key, {}), **ADDED_AND_SET.get(name, {}).get(key, {})}
        assert {k: after[part].pop(k) for k in added} == added, f"{name}: {part}: the added keys' defaults"
        expected = BEFORE[name][changed[part]] if part in changed else values
        if name in SIMULATED and key in ("embedded sim", "sim_node"):
            expected = {**expected, **SHIPPED_ACTOR_FRAMES}
        assert after[part] == expected, f"{name}: {part}"


def write(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def section(**params) -> dict:
    return {"ros__parameters": params}


def test_an_overlay_is_merged_over_its_base_section_by_section_and_key_by_key(tmp_path):
    write(
        tmp_path / "base.yaml",
        {
            "/**/sim_node": section(task="pick_bowl", image_size_px=64),
            "actor_node": section(checkpoint_path="models/a", devices=["cpu", "cpu"]),
            "critic_node": section(checkpoint="models/c"),
            "trainer_node": section(checkpoint_path="models/a"),
            "session": section(episodes=20, arms=1),
        },
    )
    (tmp_path / "tasks").mkdir()
    overlay = write(
        tmp_path / "tasks" / "sweep.yaml",
        {
            "extends": "../base.yaml",
            "session": section(arms=2),
            "actor_node": section(devices=["auto"]),
            "arm_1/sim_node": section(seed=7),
        },
    )
    sections = read_session_sections(overlay)
    assert list(sections) == [
        "/**/sim_node",
        "actor_node",
        "critic_node",
        "trainer_node",
        "session",
        "arm_1/sim_node",
    ]  # ROS: later sections win
    assert sections["actor_node"] == {"checkpoint_path": "models/a", "devices": ["auto"]}  # a list is replaced
    assert sections["session"] == {"episodes": 20, "arms": 2}
    files = load_session_files(overlay)
    assert (files.session.episodes, files.session.arms, files.sim.image_size_px) == (20, 2, 64)


def test_an_overlay_of_an_overlay_applies_the_chain_in_order(tmp_path):
    write(tmp_path / "a.yaml", {"session": section(episodes=1, arms=1, eval_trials=3)})
    write(tmp_path / "b.yaml", {"extends": "a.yaml", "session": section(episodes=2, arms=2)})
    write(tmp_path / "c.yaml", {"extends": "b.yaml", "session": section(episodes=3)})
    assert read_session_sections(tmp_path / "c.yaml")["session"] == {"episodes": 3, "arms": 2, "eval_trials": 3}


def test_a_missing_base_names_the_overlay_and_the_path(tmp_path):
    overlay = write(tmp_path / "o.yaml", {"extends": "nowhere.yaml", "session": section(arms=2)})
    with pytest.raises(ConfigError, match=rf"{overlay}: extends: base file not found: {tmp_path / 'nowhere.yaml'}"):
        read_session_sections(overlay)


def test_a_cycle_is_refused_naming_the_chain(tmp_path):
    write(tmp_path / "a.yaml", {"extends": "b.yaml"})
    write(tmp_path / "b.yaml", {"extends": "a.yaml"})
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    with pytest.raises(
        ConfigError, match=rf"{b}: extends: the chain comes back to a file it passed: {a} -> {b} -> {a}"
    ):
        read_session_sections(a)


def test_an_unknown_key_or_section_is_named_with_the_file_it_is_in(tmp_path):
    base = write(tmp_path / "base.yaml", {"trainer_node": section(learning_rate=1e-5, learnig_rate=1e-4)})
    overlay = write(tmp_path / "o.yaml", {"extends": "base.yaml", "session": section(arms=2)})
    with pytest.raises(ConfigError, match=rf"{base} \[trainer_node\]: unknown key\(s\) \['learnig_rate'\]"):
        load_session_files(overlay)
    write(tmp_path / "base.yaml", {"trainer": section(learning_rate=1e-5)})
    with pytest.raises(ConfigError, match=rf"{base}: unknown section 'trainer'"):
        load_session_files(overlay)


def test_a_grammar_or_prompt_setting_in_a_session_file_is_refused_naming_where_it_comes_from(tmp_path):
    overlay = write(
        tmp_path / "o.yaml", {"extends": str(CONFIG / "sim_pick_bowl.yaml"), "actor_node": section(num_views=2)}
    )
    expected = (
        rf"{overlay} \[actor_node\]: num_views: no longer set here; "
        r"it comes from the policy checkpoint's policy_settings\.json"
    )
    with pytest.raises(ConfigError, match=expected):
        load_session_files(overlay)


def test_the_backpressure_limit_in_the_session_section_is_refused_naming_its_place_now(tmp_path):
    overlay = write(
        tmp_path / "o.yaml", {"extends": str(CONFIG / "sim_pick_bowl.yaml"), "session": section(max_waiting_batches=1)}
    )
    expected = rf"{overlay} \[session\]: max_waiting_batches: no longer set here; set episode_manager\.max_waiting_"
    with pytest.raises(ConfigError, match=expected):
        load_session_files(overlay)


def test_extends_must_name_a_file(tmp_path):
    overlay = write(tmp_path / "o.yaml", {"extends": ["a.yaml", "b.yaml"]})
    with pytest.raises(ConfigError, match=r"o\.yaml: extends: expected the path of the base session file, got \["):
        read_session_sections(overlay)


def test_ros_gets_the_merged_file_of_an_overlay_and_a_plain_file_as_it_is(tmp_path):
    write(tmp_path / "base.yaml", {"critic_node": section(checkpoint="models/c", batch_size=8)})
    overlay = write(tmp_path / "o.yaml", {"extends": "base.yaml", "critic_node": section(batch_size=4)})
    merged = ros_param_file(overlay)
    assert merged != overlay and load_param_file(merged) == read_session_sections(overlay)
    assert ros_param_file(tmp_path / "base.yaml") == tmp_path / "base.yaml"
    assert {spec.param_file for spec in node_list(CONFIG / "sim_multi_arm.yaml", 2)} == {
        ros_param_file(CONFIG / "sim_multi_arm.yaml")
    }


def test_the_shipped_sessions_are_overlays_of_one_base():
    for name in SIMULATED:
        assert yaml.safe_load((CONFIG / f"{name}.yaml").read_text())["extends"] == "session_base.yaml", name


def test_the_simulated_cameras_render_the_frame_size_the_shipped_actor_was_trained_on():
    recorded = read_policy_settings(REPO / "models" / "sim_actor").image_size_px
    for name in SIMULATED:
        assert load_session_files(CONFIG / f"{name}.yaml").sim.image_size_px == recorded, name
