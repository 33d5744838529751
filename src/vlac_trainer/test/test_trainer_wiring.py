"""The trainer as both runtimes build it (vlac_trainer.online.wiring): start point, resume, settings shared with
the actor."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import ppo_trainer_helpers as h
import pytest
import torch

from vlac_actor.config import ActorConfig
from vlac_actor.grammar import ActionLimits
from vlac_actor.inputs import InputLimits
from vlac_actor.policy_settings import FILE_NAME, PolicySettings, read_policy_settings, write_policy_settings
from vlac_actor.value_head import ValueHeadError
from vlac_core.config import ConfigError, from_mapping
from vlac_core.model import TinyModelSpec, build_tiny_model
from vlac_trainer.online.trainer_config import TrainerConfig
from vlac_trainer.online.wiring import (
    SHARED_WITH_ACTOR,
    LateBags,
    build_trainer,
    check_actor_trainer_agree,
    check_groups,
    start_point,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return h.build_policy_dir(tmp_path_factory.mktemp("wiring_policy"))


def test_every_setting_the_actor_shares_must_be_equal_and_the_error_names_it(policy_dir):
    actor = ActorConfig(checkpoint_path=str(policy_dir))
    trainer = h.config(policy_dir)
    check_actor_trainer_agree(actor, trainer)  # defaults agree
    changed = {
        "policy_version": 3,
        "allow_fresh_value_head": True,
        "max_task_chars": 50,
        "max_abs_position_mm": 500.0,
    }
    assert set(changed) == set(SHARED_WITH_ACTOR)
    for key, value in changed.items():
        with pytest.raises(ConfigError, match=f"trainer_node.{key} = .* but actor_node.{key} = "):
            check_actor_trainer_agree(replace(actor, **{key: value}), trainer, "s.yaml")
        check_actor_trainer_agree(replace(actor, **{key: value}), replace(trainer, **{key: value}))
    with pytest.raises(ConfigError, match=r"trainer_node.checkpoint_path .* differs from actor_node.checkpoint_path"):
        check_actor_trainer_agree(replace(actor, checkpoint_path=str(policy_dir.parent)), trainer)


@pytest.mark.parametrize("key", ["max_translation_mm", "max_rotation_deg", "num_views", "history_len"])
def test_a_grammar_or_prompt_setting_in_the_trainer_section_is_refused_naming_its_source(key):
    with pytest.raises(ConfigError, match=rf"s\.yaml \[trainer_node\]: {key}: no longer set here; it comes from "):
        from_mapping(TrainerConfig, {"checkpoint_path": "/models/a", key: 1}, where="s.yaml [trainer_node]")


def test_a_fresh_start_uses_the_configured_checkpoint_and_version(policy_dir, tmp_path):
    start = start_point(h.config(policy_dir, policy_version=4), tmp_path)
    assert (start.policy_path, start.policy_version, start.resumed) == (str(policy_dir), 4, False)


def test_a_missing_checkpoint_is_an_error_naming_the_key_and_path(tmp_path):
    missing = tmp_path / "nowhere"
    expected = f"trainer_node.checkpoint_path: checkpoint '{missing}' does not exist"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        start_point(h.config(missing), tmp_path / "out")


def test_the_built_trainer_scores_prompts_under_the_checkpoints_settings_and_the_configured_checks(
    policy_dir, tmp_path
):
    checkpoint = shutil.copytree(policy_dir, tmp_path / "policy")
    write_policy_settings(checkpoint, PolicySettings(max_translation_mm=40, max_rotation_deg=30, history_len=2))
    cfg = h.config(checkpoint, max_task_chars=40, policy_version=2, keep_policy_versions=2, keep_policy_every=5)
    trainer = build_trainer(cfg, tmp_path / "out", start_point(cfg, tmp_path / "out"), None)
    assert (trainer.publisher.keep, trainer.publisher.keep_every) == (2, 5)
    assert trainer.trainer.input_limits == InputLimits(history_len=2, max_task_chars=40)
    assert trainer.trainer.policy.grammar.limits == ActionLimits(max_translation_mm=40, max_rotation_deg=30)
    assert trainer.trainer.policy.version == 2 and trainer.status.policy_version == 2


def test_allow_fresh_value_head_reaches_the_trainers_policy(tmp_path):
    bare = build_tiny_model(tmp_path / "bare", TinyModelSpec(seed=0))  # no value_head.safetensors
    cfg = h.config(bare)
    with pytest.raises(ValueHeadError, match=r"value_head\.safetensors"):
        build_trainer(cfg, tmp_path / "a", start_point(cfg, tmp_path / "a"), None)
    fresh = replace(cfg, allow_fresh_value_head=True)
    assert build_trainer(fresh, tmp_path / "b", start_point(fresh, tmp_path / "b"), None).trainer.policy


def test_a_restart_resumes_at_the_last_published_version(policy_dir, tmp_path):
    announced = []
    cfg = h.config(policy_dir, episodes_per_update=2, update_epochs=1)
    first = build_trainer(cfg, tmp_path, start_point(cfg, tmp_path), lambda v, p: announced.append((v, p)))
    first.submit(h.episode("e0", [0.3, -0.2], seed=0))
    first.submit(h.episode("e1", [0.1, 0.2], seed=1))
    assert first.update_once().policy_version == 1
    first.save_checkpoint()
    # the published version carries the policy's grammar and prompt settings: the actor reads them there
    assert read_policy_settings(announced[-1][1]) == PolicySettings()
    assert (Path(announced[-1][1]) / FILE_NAME).is_file()

    start = start_point(cfg, tmp_path)
    assert start.resumed and (start.policy_version, start.policy_path) == announced[-1]
    again = build_trainer(cfg, tmp_path, start, None)
    assert again.status.policy_version == 1 and again.policy_path == announced[-1][1]
    assert sorted(again.missing_episode_ids(["e0", "e1", "e2"])) == ["e2"]
    assert not start_point(cfg, tmp_path, resume=False).resumed


def test_the_prior_kl_anchor_is_the_configured_checkpoint_frozen_even_after_a_resume(policy_dir, tmp_path):
    cfg = h.config(policy_dir, episodes_per_update=2, update_epochs=1, prior_kl_coef=1.0)
    first = build_trainer(cfg, tmp_path, start_point(cfg, tmp_path), None)
    off = replace(cfg, prior_kl_coef=0.0)
    assert build_trainer(off, tmp_path / "off", start_point(off, tmp_path / "off"), None).trainer.prior is None
    logged = replace(off, log_prior_kl=True)  # the drift logged without the anchor: the same frozen reference
    assert build_trainer(logged, tmp_path / "log", start_point(logged, tmp_path / "log"), None).trainer.prior
    first.submit(h.sampled(first.trainer.policy, h.episode("e0", [0.3, -0.2], seed=0)))
    first.submit(h.sampled(first.trainer.policy, h.episode("e1", [0.1, 0.2], seed=1)))
    assert first.update_once().prior_kl is not None
    first.save_checkpoint()

    start = start_point(cfg, tmp_path)
    again = build_trainer(cfg, tmp_path, start, None)
    prior, policy = again.trainer.prior, again.trainer.policy
    assert start.resumed and policy.version == 1 and prior.version == cfg.policy_version
    assert not any(p.requires_grad for p in prior.loaded.model.parameters())
    pairs = zip(policy.loaded.model.parameters(), prior.loaded.model.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)  # the resumed policy moved on; the anchor did not


@pytest.mark.parametrize("advantage", ["group", "group_phase"])
def test_a_group_advantage_needs_arms_that_repeat_scenes_in_whole_batches(advantage):
    check_groups("gae", 1, 4)  # GAE needs no groups
    check_groups(advantage, 4, 8)
    with pytest.raises(ConfigError, match=rf"advantage: {advantage} .* episode_manager\.scene_repeats is 1; set it"):
        check_groups(advantage, 1, 4)
    check_groups(advantage, 1000, 4)  # one scene throughout: every batch a part of its group
    with pytest.raises(ConfigError, match=r"episodes_per_update: 6 is neither a multiple of .*scene_repeats \(4\)"):
        check_groups(advantage, 4, 6)
    with pytest.raises(ConfigError, match=r"episodes_per_update: 1 is neither .* nor a divisor of it \(2 or more\)"):
        check_groups(advantage, 4, 1)


def test_a_finished_bag_whose_episode_never_came_is_read_back_when_two_scans_find_it_missing(policy_dir, tmp_path):
    # /episodes is volatile: an episode sent before the arm's publisher matched the trainer reaches no one.
    from vlac_core.bag import write_episode

    cfg = h.config(policy_dir, episodes_per_update=100)
    trainer = build_trainer(cfg, tmp_path / "out", start_point(cfg, tmp_path / "out"), None)
    bags = tmp_path / "bags" / "arm_0" / "train"
    late, said = LateBags(trainer, [bags, tmp_path / "no_arm_yet"]), []
    assert late.scan(said.append) == 0  # no bag yet, and a folder that does not exist holds none
    lost, received = (h.episode(f"arm_0-{name}", [0.2, -0.1], seed=k) for k, name in enumerate(("lost", "came")))
    for episode in (lost, received):
        write_episode(bags / episode.episode_id, episode)
    (bags / "arm_0-writing").mkdir()  # no metadata.yaml: still being written, its message comes when finished
    broken = bags / "arm_0-broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("not a bag\n")
    assert late.scan(said.append) == 0  # first seen finished: their messages may still be on their way
    trainer.submit(received)  # one message came
    assert late.scan(said.append) == 1  # the other, still missing a scan later: read back from its bag
    assert trainer.ingested_ids == ["arm_0-came", "arm_0-lost"]
    assert [t.action.text for t in trainer.rollouts.episodes()[-1].transitions] == [
        t.action.text for t in lost.transitions
    ]
    assert late.scan(said.append) == 0 and late.scan(said.append) == 0  # taken once; the broken bag reported once
    assert said[0].startswith(f"{broken} not handed to the trainer: ")
    assert said[1:] == [f"arm_0-lost: finished but never received on /episodes; read back from {bags / 'arm_0-lost'}"]
