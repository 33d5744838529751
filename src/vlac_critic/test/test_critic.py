"""The critic on tiny models: batching, in-context mode, done probability, unparsable answers, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from critic_testing import frames

from vlac_core.model import load_model
from vlac_critic.backends import TorchBackend
from vlac_critic.critic import Critic, CriticInputError, reference_from_trajectory


@pytest.fixture(scope="module")
def progress_critic(progress_model_dir):
    return Critic(TorchBackend(load_model(progress_model_dir)), batch_size=4)


@pytest.fixture(scope="module")
def done_critic(done_model_dir):
    return Critic(TorchBackend(load_model(done_model_dir)), batch_size=4)


@pytest.fixture(scope="module")
def random_critic(random_model_dir):
    return Critic(TorchBackend(load_model(random_model_dir)), batch_size=4)


def test_pairs_are_scored_in_batches_and_parsed(progress_critic):
    f = frames(11, seed=1)
    before = progress_critic.stats.pairs_scored
    batches = []
    scores = progress_critic.progress("open the drawer", f[:-1], f[1:], on_batch=batches.append)
    assert batches == [4, 4, 2]
    assert [s.progress_pct for s in scores] == [25.0] * 10
    assert all(s.parsed and s.raw_answer == "25" for s in scores)
    assert progress_critic.stats.pairs_scored == before + 10


def test_batch_size_does_not_change_answers(progress_model_dir):
    loaded = load_model(progress_model_dir)
    f = frames(6, seed=2)
    one = Critic(TorchBackend(loaded), batch_size=1).progress("fold the towel", f[:-1], f[1:])
    five = Critic(TorchBackend(loaded), batch_size=5).progress("fold the towel", f[:-1], f[1:])
    assert one == five


def test_in_context_mode_takes_reference_and_first_frame(progress_critic):
    ref = reference_from_trajectory(frames(20, seed=3))
    assert len(ref) == 6
    f = frames(4, seed=4)
    scores = progress_critic.progress("open the drawer", f[:-1], f[1:], reference=ref, first_frame=f[0])
    assert [s.progress_pct for s in scores] == [25.0] * 3


def test_reference_selection_follows_the_release():
    trajectory = [np.full((8, 8, 3), i, dtype=np.uint8) for i in range(11)]
    picked = [int(im[0, 0, 0]) for im in reference_from_trajectory(trajectory, 6)]
    assert picked == [0, 2, 4, 6, 8, 10]
    assert len(reference_from_trajectory(trajectory[:3], 6)) == 3
    with pytest.raises(CriticInputError, match="n_reference: expected 2 to 11 frames, got 12"):
        reference_from_trajectory(trajectory, 12)


def test_unparsable_answers_are_counted_logged_and_give_no_number(random_critic, caplog):
    f = frames(3, seed=5)
    before = random_critic.stats.progress_parse_failures
    with caplog.at_level(logging.WARNING, logger="vlac_critic"):
        scores = random_critic.progress("open the drawer", f[:-1], f[1:])
    assert all(s.progress_pct is None and not s.parsed for s in scores)
    assert all(s.error and s.raw_answer for s in scores)
    assert random_critic.stats.progress_parse_failures == before + 2
    assert sum("unparsable progress answer" in r.message for r in caplog.records) == 2
    assert repr(scores[0].raw_answer) in caplog.text


def test_done_probability_from_digit_logits(done_critic):
    scores = done_critic.done("open the drawer", frames(3, seed=6))
    assert all(s.raw_answer == "1" for s in scores)
    assert all(s.done_prob is not None and 0.9 < s.done_prob <= 1.0 for s in scores)


def test_done_answer_that_is_not_a_digit_is_reported(progress_critic):
    before = progress_critic.stats.done_parse_failures
    scores = progress_critic.done("open the drawer", frames(2, seed=7))
    assert all(s.done_prob is None and s.raw_answer == "25" for s in scores)
    assert progress_critic.stats.done_parse_failures == before + 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": ""}, "task: expected a non-empty task text"),
        ({"task": "   "}, "task: expected a non-empty task text"),
        ({"earlier": [], "later": []}, "no frame pairs"),
        ({"later": frames(1)}, "earlier has 2 frames but later has 1"),
        ({"earlier": [np.zeros((8, 8, 3), np.float32)] * 2}, r"earlier\[0\]: expected dtype uint8"),
        ({"later": [np.zeros((8, 8), np.uint8)] * 2}, r"later\[0\]: expected shape HxWx3"),
        ({"later": [np.zeros((8, 0, 3), np.uint8)] * 2}, r"later\[0\]: empty image"),
        ({"reference": frames(12), "first_frame": frames(1)[0]}, "reference: expected 2 to 11 frames, got 12"),
        ({"reference": frames(3)}, "first_frame: required"),
    ],
)
def test_bad_progress_requests_name_what_is_wrong(random_critic, kwargs, match):
    args = {"task": "open the drawer", "earlier": frames(2), "later": frames(2), **kwargs}
    with pytest.raises(CriticInputError, match=match):
        random_critic.progress(**args)


def test_bad_done_requests_name_what_is_wrong(random_critic):
    with pytest.raises(CriticInputError, match="no frames"):
        random_critic.done("open the drawer", [])
    with pytest.raises(CriticInputError, match=r"single \(8, 8, 3\) array"):
        random_critic.done("open the drawer", np.zeros((8, 8, 3), np.uint8))


def test_uncertain_done_answer_gives_the_expected_digit(unsure_done_model_dir):
    """P("1") ~ 0.7, P("0") ~ 0.3: both above 0.1 x top, so done_prob = 0.7 / (0.7 + 0.3) ~ 0.7."""
    critic = Critic(TorchBackend(load_model(unsure_done_model_dir)))
    scores = critic.done("open the drawer", frames(2, seed=8))
    for score in scores:
        assert score.raw_answer == "1"
        assert score.done_prob == pytest.approx(0.7, abs=0.08)
