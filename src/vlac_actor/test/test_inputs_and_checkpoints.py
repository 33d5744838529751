"""Actor inputs (release prompt, views, history, bad input) and policy checkpoints with their value head."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch
from actor_testing import make_observation

from vlac_actor.decoding import SamplingSettings, decode_actions
from vlac_actor.inputs import ActorInputError, InputLimits, actor_content
from vlac_actor.policy import load_policy
from vlac_actor.policy_settings import PolicySettings, read_policy_settings, write_policy_settings
from vlac_actor.value_head import VALUE_HEAD_FILE, ValueHeadError
from vlac_core.action_text import format_state
from vlac_core.config import ConfigError
from vlac_core.prompts import actor_prompt
from vlac_core.types import DeltaAction


def test_prompt_is_the_release_actor_prompt_when_history_is_off():
    obs = make_observation(1, n_views=2)
    content, images = actor_content(obs, InputLimits(num_views=2))
    assert content == actor_prompt(obs.task, format_state(obs.end_pose, obs.gripper_open), 2)
    assert content.startswith("Image-1: <image>\nImage-2: <image>\n")
    assert len(images) == 2 and images[0] is obs.images[0]


def test_extra_views_are_not_shown_and_missing_views_are_refused():
    _, images = actor_content(make_observation(0, n_views=3), InputLimits(num_views=1))
    assert len(images) == 1
    with pytest.raises(ActorInputError, match=r"has 1 camera view.*expects 2"):
        actor_content(make_observation(0, n_views=1), InputLimits(num_views=2))


def test_state_outside_the_arm_range_and_overlong_task_are_refused():
    with pytest.raises(ActorInputError, match=r"state z_mm = 1500.0 is outside the arm's range ±1000 mm"):
        actor_content(make_observation(0, z_mm=1500.0), InputLimits())
    with pytest.raises(ActorInputError, match="task text has 301 characters, at most 300"):
        actor_content(make_observation(0, task="x" * 301), InputLimits())


def test_history_block_sits_before_the_action_tag_oldest_first():
    past = [DeltaAction(i, 0, 0, 0, 0, 0, 1) for i in range(1, 5)]
    content, _ = actor_content(make_observation(0), InputLimits(history_len=2), past)
    assert content.endswith(
        "</task> <history> {x: 3mm, y: 0mm, z: 0mm, roll: 0 degrees, pitch: 0 degrees, yaw: 0 degrees, open: 1} "
        "{x: 4mm, y: 0mm, z: 0mm, roll: 0 degrees, pitch: 0 degrees, yaw: 0 degrees, open: 1} </history> <action>"
    )
    start, _ = actor_content(make_observation(0), InputLimits(history_len=2))
    assert start.endswith("</task> <history> </history> <action>")
    with pytest.raises(ActorInputError, match="history is off"):
        actor_content(make_observation(0), InputLimits(), past)


def test_settings_read_from_a_checkpoint_round_trip(tmp_path):
    write_policy_settings(tmp_path, PolicySettings(max_translation_mm=40, max_rotation_deg=30, num_views=2))
    assert read_policy_settings(tmp_path) == PolicySettings(max_translation_mm=40, max_rotation_deg=30, num_views=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"max_translation_mm": 40, "views": 2}', r"unknown key\(s\) \['views'\]"),
        ('{"num_views": 5}', r"num_views: 5 is above the maximum 3"),
        ("[1, 2]", r"expected a JSON object"),
        ('{"field_logit_temperatures": [0.15, 0.3]}', r"field_logit_temperatures: expected 7 numbers"),
        ('{"field_logit_temperatures": [1, 1, 0.01, 1, 1, 1, 1]}', r"field_logit_temperatures: dz_mm's 0\.01 is out"),
        ('{"field_logit_temperatures": [1, 1, 1, 1, 1, 1, "hot"]}', r"field_logit_temperatures\[6\]: expected a num"),
    ],
)
def test_malformed_settings_are_refused_naming_the_file_and_the_key(tmp_path, text, message):
    (tmp_path / "policy_settings.json").write_text(text)
    with pytest.raises(ConfigError, match=r"policy_settings\.json: " + message):
        read_policy_settings(tmp_path)


def test_field_temperatures_override_the_one_temperature_field_by_field(tmp_path):
    settings = PolicySettings(logit_temperature=0.3, field_logit_temperatures=(0.15, 0.15, 0.15, 0.3, 0.3, 0.3, 1.0))
    write_policy_settings(tmp_path, settings)
    assert read_policy_settings(tmp_path) == settings  # JSON's list comes back as the tuple
    assert [settings.field_temperature(k) for k in (0, 2, 3, 6)] == [0.15, 0.15, 0.3, 1.0]
    assert settings.one_temperature is None
    assert PolicySettings(logit_temperature=0.3).field_temperature(6) == 0.3
    assert PolicySettings(logit_temperature=0.3).one_temperature == 0.3
    assert PolicySettings(field_logit_temperatures=(0.5,) * 7).one_temperature == 0.5


def test_policy_round_trips_with_its_value_head_and_settings(policy, tmp_path):
    assert policy.settings == PolicySettings()  # a checkpoint without policy_settings.json: the release's
    policy = replace(policy, settings=PolicySettings(history_len=2, image_size_px=48))
    policy.save(tmp_path)
    again = load_policy(tmp_path, device="cpu")
    assert again.settings == policy.settings and again.grammar.limits == policy.grammar.limits
    assert torch.equal(again.value_head.linear.weight, policy.value_head.linear.weight)
    content, images = actor_content(make_observation(3), InputLimits())
    greedy = [SamplingSettings(greedy=True)]
    (a,) = decode_actions(policy, [content], [images], greedy)
    (b,) = decode_actions(again, [content], [images], greedy)
    assert (a.text, a.value) == (b.text, b.value)


def test_checkpoint_without_value_head_is_an_error_unless_a_fresh_one_is_allowed(policy_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(policy_dir, plain)
    (plain / VALUE_HEAD_FILE).unlink()
    with pytest.raises(ValueHeadError, match=r"has no value_head\.safetensors.*allow_fresh_value_head"):
        load_policy(plain, device="cpu")
    fresh = load_policy(plain, device="cpu", allow_fresh_value_head=True)
    assert fresh.value_head.hidden_size == 128


def test_value_head_of_the_wrong_size_is_refused(policy_dir, tmp_path):
    from vlac_actor.value_head import ValueHead

    odd = tmp_path / "odd"
    shutil.copytree(policy_dir, odd)
    ValueHead(64).save(odd)
    with pytest.raises(ValueHeadError, match="do not fit a model of hidden size 128"):
        load_policy(odd, device="cpu")
