"""The actor service (what the node drives): errors answered per request, versions, history, config."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from actor_testing import make_observation

from vlac_actor.config import ActorConfig
from vlac_actor.grammar import ActionLimits
from vlac_actor.history import ActionHistory
from vlac_actor.service import ActorService
from vlac_actor.value_head import VALUE_HEAD_FILE
from vlac_actor.vllm_backend import action_regex, vllm_available, vllm_logit_temperature, vllm_prompt
from vlac_core.action_text import format_action
from vlac_core.config import ConfigError, from_mapping
from vlac_core.model import load_processor
from vlac_core.types import DeltaAction


@pytest.fixture(scope="module")
def service(policy_dir):
    config = from_mapping(
        ActorConfig,
        {"checkpoint_path": str(policy_dir), "policy_version": 1, "devices": ["cpu", "cpu"], "seed": 0},
    )
    service = ActorService(config)
    yield service
    service.close()


def test_service_answers_and_tags_stamp_latency_and_version(service):
    obs = make_observation(2)
    reply = service.act(obs, greedy=True)
    assert reply.ok, reply.error
    assert reply.action.policy_version == 1 and reply.action.obs_stamp_s == obs.stamp_s
    assert reply.action.inference_latency_s >= reply.queue_wait_s >= 0.0
    assert not reply.action.logprob_needs_recompute


def test_bad_requests_are_answered_with_the_reason_and_service_goes_on(service):
    far = service.act(make_observation(0, z_mm=5000.0))
    assert not far.ok and "state z_mm = 5000.0 is outside the arm's range" in far.error
    bad_temperature = service.act(make_observation(0), temperature=-1.0)
    assert not bad_temperature.ok and "temperature" in bad_temperature.error
    assert service.act(make_observation(1)).ok
    assert service.stats().failed >= 1


def test_new_versions_load_in_the_background_and_broken_ones_leave_the_old_serving(
    service, policy_dir, policy_dir_v2, tmp_path
):
    broken = tmp_path / "broken"
    shutil.copytree(policy_dir_v2, broken)
    (broken / VALUE_HEAD_FILE).unlink()
    assert "loading policy version 5" in service.announce_version(5, str(broken))
    deadline = time.monotonic() + 60
    while "reload_error" not in service.diagnostics() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "policy version 5" in service.diagnostics()["reload_error"]
    assert "no value_head.safetensors" in service.diagnostics()["reload_error"]
    assert service.act(make_observation(3)).action.policy_version == 1

    assert "not a directory" in service.announce_version(6, str(tmp_path / "missing"))
    assert "loading" in service.announce_version(7, str(policy_dir_v2))
    assert service.wait_for_version(7, timeout_s=60)
    assert service.act(make_observation(3)).action.policy_version == 7
    assert "ignored" in service.announce_version(7, str(policy_dir_v2))
    assert service.diagnostics()["replica_versions"] == "7,7"


def test_a_pinned_policy_keeps_its_version_while_announcements_reach_the_shared_replicas(policy_dir, policy_dir_v2):
    config = from_mapping(ActorConfig, {"checkpoint_path": str(policy_dir), "policy_version": 1, "seed": 0})
    service = ActorService(config)
    try:
        with service.pinned_policy() as pinned:
            assert pinned.version == 1
            assert "loading policy version 2" in service.announce_version(2, str(policy_dir_v2))
            assert service.wait_for_version(2, timeout_s=60)  # not held back by the pin
            assert service.act(make_observation(1), greedy=True).action.policy_version == 2
            reply = pinned.act(make_observation(2), greedy=True)
            assert reply.ok, reply.error
            assert reply.action.policy_version == 1
            assert "state z_mm" in pinned.act(make_observation(0, z_mm=5000.0)).error  # errors answered too
        with service.pinned_policy() as pinned:
            assert pinned.version == 2 and pinned.max_batch == config.max_batch
            assert pinned.act(make_observation(3), greedy=True).action.policy_version == 2
        with service.pinned_policy(max_batch=5) as pinned:  # an evaluation on 5 arms side by side
            assert pinned.max_batch == 5
            assert pinned.act(make_observation(3), greedy=True).ok
        assert service.diagnostics()["replica_versions"] == "2"
    finally:
        service.close()


def test_pinning_a_version_whose_folders_are_all_gone_names_the_folder(policy_dir, tmp_path):
    copy = tmp_path / "policy"
    shutil.copytree(policy_dir, copy)
    config = from_mapping(ActorConfig, {"checkpoint_path": str(copy), "policy_version": 1, "seed": 0})
    service = ActorService(config)
    try:
        shutil.rmtree(copy)
        with pytest.raises(FileNotFoundError, match=rf"cannot pin policy version 1 .*{copy}"), service.pinned_policy():
            pass
    finally:
        service.close()


def test_history_is_per_robot_and_restarts_with_each_episode():
    history = ActionHistory(length=2)
    moves = [DeltaAction(i, 0, 0, 0, 0, 0, 1) for i in range(4)]
    assert history.recent("arm_0", 0) == ()
    for seq, move in enumerate(moves):
        history.recent("arm_0", seq)
        history.record("arm_0", seq, move)
    assert history.recent("arm_0", 4) == tuple(moves[2:])
    assert history.recent("arm_1", 5) == ()
    assert history.recent("arm_0", 0) == ()  # a new episode of arm_0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "checkpoint_path: empty"),
        ({"checkpoint_path": "x", "devices": []}, "devices: empty"),
        ({"checkpoint_path": "x", "backend": "vllm", "devices": ["cuda:0", "cuda:1"]}, "one GPU per actor process"),
        ({"checkpoint_path": "x", "max_task_chars": 0}, "max_task_chars: 0 is below the minimum 1"),
        (
            {"checkpoint_path": "x", "num_views": 2},
            "num_views: no longer set here; it comes from the policy checkpoint's policy_settings.json",
        ),
        (
            {"checkpoint_path": "x", "max_translation_mm": 60},
            "max_translation_mm: no longer set here; it comes from the policy checkpoint's policy_settings.json",
        ),
    ],
)
def test_config_errors_name_the_key(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_mapping(ActorConfig, values)


def test_vllm_refuses_a_policy_whose_fields_have_their_own_temperatures(policy_dir, tmp_path):
    from vlac_actor.policy_settings import PolicySettings, write_policy_settings
    from vlac_actor.service import build_backend

    checkpoint = tmp_path / "policy"
    shutil.copytree(policy_dir, checkpoint)
    write_policy_settings(checkpoint, PolicySettings(field_logit_temperatures=(0.15, 0.15, 0.15, 0.3, 0.3, 0.3, 0.3)))
    config = from_mapping(ActorConfig, {"checkpoint_path": str(checkpoint), "backend": "vllm", "devices": ["cuda:0"]})
    # refused before vLLM is imported: the same message on a GPU machine with vLLM installed
    with pytest.raises(ConfigError, match=r"backend 'vllm': the policy's field_logit_temperatures .* differ per field"):
        build_backend(config, checkpoint, 0, 0)
    assert vllm_logit_temperature(PolicySettings(field_logit_temperatures=(0.3,) * 7)) == 0.3
    assert vllm_logit_temperature(PolicySettings(logit_temperature=0.5)) == 0.5


def test_vllm_regex_admits_exactly_the_grammars_actions():
    pattern = re.compile(action_regex(ActionLimits(max_translation_mm=50, max_rotation_deg=90)))
    assert pattern.fullmatch(format_action(DeltaAction(-47, 19, 50, 14, -90, 15, 0)))
    assert not pattern.fullmatch(format_action(DeltaAction(-51, 19, 50, 14, -90, 15, 0)))
    assert not pattern.fullmatch(format_action(DeltaAction(0, 0, 0, 91, 0, 0, 1)))
    assert not pattern.fullmatch(
        "{x: -0mm, y: 0mm, z: 0mm, roll: 0 degrees, pitch: 0 degrees, yaw: 0 degrees, open: 1}"
    )


def test_vllm_prompt_expands_to_the_release_layout(policy_dir):
    processor = load_processor(policy_dir)
    content = "Image-1: <image>\nImage-2: <image>\nWhat action?"
    expanded = vllm_prompt(content, 2).replace(
        "<IMG_CONTEXT>", "<img>" + "<IMG_CONTEXT>" * processor.image_seq_length + "</img>"
    )
    assert expanded == processor.build_text(content, 2)


@pytest.mark.skipif(not vllm_available(), reason="vLLM is CUDA-only and optional; not installed on this machine")
def test_vllm_backend_flags_log_probs_for_recompute(policy_dir):
    from vlac_actor.request import ActorRequest
    from vlac_actor.vllm_backend import VllmBackend

    backend = VllmBackend(policy_dir, version=3, limits=ActionLimits())
    (action,) = backend.act([ActorRequest(make_observation(0))])
    assert action.logprob_needs_recompute and action.policy_version == 3
