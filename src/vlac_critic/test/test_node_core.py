"""The critic node's logic without ROS: requests through real vlac_msgs types (rosbags), streaming,
configuration and diagnostics."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from critic_testing import frames

from vlac_core.config import ConfigError, describe, from_mapping
from vlac_core.images import image_to_msg
from vlac_core.message_set import rosbags_message_set
from vlac_core.model import load_model
from vlac_core.type_store import make_typestore
from vlac_critic.backends import TorchBackend
from vlac_critic.config import CriticConfig
from vlac_critic.critic import Critic, CriticStats
from vlac_critic.diagnostics import ERROR, OK, WARN, critic_health
from vlac_critic.requests import fill, score_done, score_progress
from vlac_critic.streaming import ProgressStream

TASK = "open the drawer"


@pytest.fixture(scope="module")
def store():
    return make_typestore()


@pytest.fixture(scope="module")
def msgs(store):
    return rosbags_message_set(store)


@pytest.fixture(scope="module")
def critic(progress_model_dir):
    return Critic(TorchBackend(load_model(progress_model_dir)), batch_size=8)


def _empty_image(msgs):
    return msgs.Image(
        header=msgs.header(0.0), height=0, width=0, encoding="", is_bigendian=0, step=0, data=msgs.uint8_array(b"")
    )


def progress_request(store, msgs, n_pairs=2, reference=0, task=TASK, encoding="rgb8"):
    images = [image_to_msg(f, msgs, stamp_s=1.0 + i) for i, f in enumerate(frames(n_pairs + 1, seed=21))]
    if encoding != "rgb8":
        images[0].encoding = encoding
    ref = [image_to_msg(f, msgs, stamp_s=0.0) for f in frames(reference, seed=22)] if reference else []
    request_cls = store.types["vlac_msgs/srv/ScoreProgress_Request"]
    return request_cls(
        task=task,
        earlier=images[:-1],
        later=images[1:],
        reference=ref,
        first_frame=images[0] if reference else _empty_image(msgs),
    )


def test_progress_request_is_scored_pair_by_pair(store, msgs, critic):
    reply = score_progress(critic, progress_request(store, msgs, n_pairs=3))
    assert reply.ok and reply.error == ""
    assert reply.parsed == [True] * 3 and reply.progress_pct == [25.0] * 3 and reply.raw_answers == ["25"] * 3
    response_cls = store.types["vlac_msgs/srv/ScoreProgress_Response"]
    response = fill(response_cls(ok=False, error="", parsed=[], progress_pct=[], raw_answers=[]), reply)
    response.parsed = np.asarray(response.parsed, dtype=bool)  # rosbags wants numpy for primitive arrays
    response.progress_pct = np.asarray(response.progress_pct, dtype=np.float64)
    back = store.deserialize_cdr(store.serialize_cdr(response, response.__msgtype__), response.__msgtype__)
    assert back.ok and back.progress_pct.tolist() == [25.0] * 3


def test_progress_request_with_reference_uses_in_context_mode(store, msgs, critic):
    reply = score_progress(critic, progress_request(store, msgs, n_pairs=1, reference=4))
    assert reply.ok and reply.progress_pct == [25.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": ""}, "task: expected a non-empty task text"),
        ({"reference": 12}, "reference: expected 2 to 11 frames, got 12"),
        ({"encoding": "rgba16"}, r"earlier\[0\]: sensor_msgs/Image.encoding 'rgba16' is not supported"),
        ({"n_pairs": 0}, "no frame pairs"),
    ],
)
def test_bad_progress_requests_are_answered_with_an_error(store, msgs, critic, kwargs, match):
    reply = score_progress(critic, progress_request(store, msgs, **kwargs))
    assert not reply.ok and reply.progress_pct == []
    assert re.search(match, reply.error), reply.error


def test_a_failing_model_is_reported_not_raised(store, msgs, critic, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(critic, "progress", out_of_memory)
    reply = score_progress(critic, progress_request(store, msgs))
    assert not reply.ok and reply.error == "critic failed: RuntimeError: CUDA out of memory"


def test_unparsed_answers_are_flagged_with_nan_progress(store, msgs, random_model_dir):
    critic = Critic(TorchBackend(load_model(random_model_dir)))
    reply = score_progress(critic, progress_request(store, msgs, n_pairs=2))
    assert reply.ok and reply.parsed == [False, False]
    assert all(math.isnan(p) for p in reply.progress_pct)


def test_done_request_flags_done_only_with_the_callers_threshold(store, msgs, done_model_dir):
    critic = Critic(TorchBackend(load_model(done_model_dir)))
    request_cls = store.types["vlac_msgs/srv/ScoreDone_Request"]
    images = [image_to_msg(f, msgs, stamp_s=1.0) for f in frames(2, seed=23)]
    reply = score_done(critic, request_cls(task=TASK, images=images, threshold=0.0))
    assert reply.ok and reply.done == [] and all(p > 0.9 for p in reply.done_prob)  # probabilities only
    reply = score_done(critic, request_cls(task=TASK, images=images, threshold=0.9))
    assert reply.ok and reply.done == [True, True]
    reply = score_done(critic, request_cls(task=TASK, images=images, threshold=1.0))
    assert reply.ok and reply.done == [False, False]
    reply = score_done(critic, request_cls(task=TASK, images=images, threshold=1.5))
    assert not reply.ok and reply.error.startswith("threshold: expected 0 (probabilities only)")
    reply = score_done(critic, request_cls(task=TASK, images=[], threshold=0.0))
    assert not reply.ok and "images: no frames" in reply.error


def test_stream_scores_newest_frame_against_skip_back_once():
    stream = ProgressStream(skip=2)
    f = frames(5, seed=24)
    stream.push(f[0], 0.0)
    stream.push(f[1], 0.2)
    assert stream.pending() is None  # needs skip + 1 frames
    stream.push(f[2], 0.4)
    pair = stream.pending()
    assert pair.earlier is f[0] and pair.later is f[2] and pair.stamp_s == 0.4
    assert stream.record(pair, 50.0) == 50.0
    assert stream.pending() is None  # nothing new since
    stream.push(f[3], 0.6)
    stream.push(f[4], 0.8)  # f[3] is superseded before it was scored
    pair = stream.pending()
    assert pair.earlier is f[2] and pair.later is f[4]
    assert stream.record(pair, None) == 50.0  # unparsed: value unchanged
    stream.reset()
    assert stream.pending() is None and stream.value_pct == 0.0


def test_stream_rejects_bad_frames_and_settings():
    with pytest.raises(ValueError, match="frame: expected dtype uint8"):
        ProgressStream(1).push(np.zeros((4, 4, 3), np.float32), 0.0)
    with pytest.raises(ValueError, match="skip must be >= 1"):
        ProgressStream(0)
    with pytest.raises(ValueError, match="value rule"):
        ProgressStream(1, value_rule="max")


def test_config_is_validated_naming_the_key():
    config = from_mapping(CriticConfig, {"checkpoint": "/models/vlac", "skip": 3})
    assert config.skip == 3
    with pytest.raises(ConfigError, match="checkpoint: a local checkpoint directory is required"):
        from_mapping(CriticConfig, {})
    with pytest.raises(ConfigError, match="skip: 0 is below the minimum 1"):
        from_mapping(CriticConfig, {"checkpoint": "x", "skip": 0})
    with pytest.raises(ConfigError, match="backend: 'onnx' is not one of"):
        from_mapping(CriticConfig, {"checkpoint": "x", "backend": "onnx"})
    with pytest.raises(ConfigError, match="stream_task: required"):
        from_mapping(CriticConfig, {"checkpoint": "x", "stream_image_topic": "/arm_0/image_raw"})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['skp'\]"):
        from_mapping(CriticConfig, {"checkpoint": "x", "skp": 1})
    assert all(description for _, _, description in describe(CriticConfig))


def test_diagnostics_levels():
    assert critic_health(None, "ModelLoadError: no weights").level == ERROR
    assert critic_health(None, None).message == "loading model"
    stats = CriticStats(pairs_scored=4, last_latency_s=0.0123)
    health = critic_health(stats, None, requests_failed=1)
    assert health.level == OK
    assert ("last_latency_s", "0.0123") in health.values and ("requests_failed", "1") in health.values
    stats.progress_parse_failures = 2
    assert critic_health(stats, None).level == WARN
