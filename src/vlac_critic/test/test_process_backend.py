"""The critic's model in a child process (``own_process``): same answers, frames sent once, failures named."""

from __future__ import annotations

import itertools
import os
import signal

import numpy as np
import pytest
from critic_testing import frames

from vlac_core.config import ConfigError, from_mapping
from vlac_core.model import load_model
from vlac_core.prompts import done_prompt, in_context_progress_prompt, pair_progress_prompt
from vlac_critic.backends import TorchBackend
from vlac_critic.config import CriticConfig
from vlac_critic.critic import Critic
from vlac_critic.process_backend import CriticProcessError, ProcessBackend
from vlac_critic.wiring import build_shared_critic

TASK = "open the drawer"
DIGITS = (0, 1)


@pytest.fixture(scope="module")
def in_process(random_model_dir):
    return TorchBackend(load_model(random_model_dir))


@pytest.fixture(scope="module")
def child(random_model_dir):
    backend = ProcessBackend(random_model_dir, torch_threads=1, cache_frames=4)
    yield backend
    backend.close()


def _calls(video):
    """An episode's critic calls: each step's pair, its done check, and an in-context pair."""
    reference = video[:3]
    for earlier, later in itertools.pairwise(video):
        yield [pair_progress_prompt(TASK)], [[earlier, later]], 6, None
        yield [done_prompt(TASK)], [[later]], 2, DIGITS
    yield [in_context_progress_prompt(TASK, 3)], [[*reference, video[0], video[-2], video[-1]]], 6, None


def test_the_child_answers_as_the_in_process_backend_while_frames_cross_once(child, in_process):
    """Gibberish from random weights pins the very same model and inputs: any resize or order slip shows."""
    # 64 px and 640x480 frames (the camera's), so the child's resize is the processor's
    video = frames(4, seed=5, size=(480, 640)) + frames(3, seed=6, size=(64, 64))
    sent_before = child.frames_sent
    for contents, images, max_new_tokens, digits in _calls(video):
        mine = child.generate(contents, images, max_new_tokens, digits)
        theirs = in_process.generate(contents, images, max_new_tokens, digits)
        assert mine.texts == theirs.texts
        if digits is None:
            assert mine.first_digit_probs is None
        else:
            np.testing.assert_allclose(mine.first_digit_probs, theirs.first_digit_probs, rtol=0, atol=1e-6)
    # 7 frames, each sent once although scored up to 4 times; the in-context call's 3 reference frames
    # and first frame were evicted (cache of 4) and sent again
    assert child.frames_sent - sent_before == 7 + 3
    assert child.cached_frames == 5  # the in-context call's 5 distinct frames stay until the next call


def test_a_frame_evicted_from_the_cache_is_sent_again_and_scored_alike(child, in_process):
    video = frames(8, seed=7)
    for frame in video:  # more distinct frames than the cache holds
        child.generate([done_prompt(TASK)], [[frame]], 2, DIGITS)
    sent = child.frames_sent
    first, last = video[0], video[-1]
    mine = child.generate([done_prompt(TASK)] * 2, [[first], [last]], 2, DIGITS)
    assert child.frames_sent == sent + 1  # the last frame is still held, the first went again
    theirs = in_process.generate([done_prompt(TASK)] * 2, [[first], [last]], 2, DIGITS)
    np.testing.assert_allclose(mine.first_digit_probs, theirs.first_digit_probs, rtol=0, atol=1e-6)


def test_a_failed_call_is_raised_and_the_child_serves_the_next(child, in_process):
    bad = np.zeros((8, 8, 3), np.float32)  # the caller's Critic checks images; the child is the backstop
    with pytest.raises(CriticProcessError, match=r"scoring failed: ValidationError: frame \d+: expected dtype uint8"):
        child.generate([done_prompt(TASK)], [[bad]], 2, DIGITS)
    good = frames(1, seed=8)[0]
    mine = child.generate([done_prompt(TASK)], [[good]], 2, DIGITS)
    theirs = in_process.generate([done_prompt(TASK)], [[good]], 2, DIGITS)
    assert mine.texts == theirs.texts


def test_a_checkpoint_the_child_cannot_load_is_an_error_naming_why(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CriticProcessError, match=r"critic process: starting failed: \w+Error"):
        ProcessBackend(tmp_path)


def test_a_child_that_dies_is_named_on_the_next_call_and_close_does_not_hang(random_model_dir):
    backend = ProcessBackend(random_model_dir)
    try:
        os.kill(backend.pid, signal.SIGKILL)
        with pytest.raises(CriticProcessError, match=r"exited while scoring \(exit code -9\)|gone \(exit code -9\)"):
            backend.generate([done_prompt(TASK)], [frames(1)], 2, DIGITS)
    finally:
        backend.close()
    with pytest.raises(CriticProcessError, match="closed"):
        backend.generate([done_prompt(TASK)], [frames(1)], 2, DIGITS)


def test_own_process_is_wired_from_the_config_and_closing_the_shared_critic_stops_the_child(random_model_dir):
    config = from_mapping(CriticConfig, {"checkpoint": str(random_model_dir), "own_process": True, "device": "cpu"})
    shared = build_shared_critic(config)
    backend = shared.critic.backend
    assert isinstance(backend, ProcessBackend) and backend._worker.alive
    video = frames(3, seed=9)
    in_process = Critic(TorchBackend(load_model(random_model_dir)))
    assert shared.done(TASK, video) == in_process.done(TASK, video)
    shared.close()
    assert not backend._worker.alive


def test_own_process_is_for_the_torch_backend_only():
    with pytest.raises(ConfigError, match="own_process: only for backend torch"):
        from_mapping(CriticConfig, {"checkpoint": "x", "backend": "vllm", "own_process": True})
