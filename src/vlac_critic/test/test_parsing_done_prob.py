"""Strict answer parsing and the expected-digit done probability."""

from __future__ import annotations

import numpy as np
import pytest

from vlac_core.model import build_tiny_tokenizer
from vlac_critic.done_prob import digit_probs_from_logits, digit_token_ids, expected_digit
from vlac_critic.parsing import AnswerParseError, parse_done, parse_progress_pct


@pytest.mark.parametrize(("raw", "value"), [("12.5", 12.5), ("-30", -30.0), (" +4 ", 4.0), ("0", 0.0), ("100", 100.0)])
def test_progress_answers_that_parse(raw, value):
    assert parse_progress_pct(raw) == value


@pytest.mark.parametrize("raw", ["", "abc", "12.5%", "1e3", "nan", "inf", "- 3", "12 5", "101", "-100.5", "3.4.5"])
def test_progress_answers_that_do_not_parse_keep_the_raw_text(raw):
    with pytest.raises(AnswerParseError) as info:
        parse_progress_pct(raw)
    assert info.value.raw == raw
    assert repr(raw) in str(info.value)


def test_done_answer_is_zero_or_one_only():
    assert parse_done("1") == 1 and parse_done(" 0\n") == 0
    for raw in ("2", "yes", "01", ""):
        with pytest.raises(AnswerParseError, match="not 0 or 1"):
            parse_done(raw)


def test_expected_digit_keeps_candidates_above_a_tenth_of_the_top():
    # 0: 0.6, 1: 0.3 -> both kept: (0*0.6 + 1*0.3) / 0.9
    assert expected_digit([0.6, 0.3], (0, 1)) == pytest.approx(1 / 3)
    # 1: 0.95, 0: 0.05 -> 0.05 < 0.095, dropped: exactly 1
    assert expected_digit([0.05, 0.95], (0, 1)) == 1.0
    # over ten digits: 7 (0.5), 8 (0.4) kept, 2 (0.04) dropped
    probs = np.zeros(10)
    probs[[2, 7, 8]] = [0.04, 0.5, 0.4]
    assert expected_digit(probs) == pytest.approx((7 * 0.5 + 8 * 0.4) / 0.9)


def test_expected_digit_rejects_no_digit_mass():
    with pytest.raises(ValueError, match="no probability on any digit"):
        expected_digit([0.0, 0.0], (0, 1))


def test_digit_ids_come_from_the_vocabulary_and_probs_from_a_full_softmax():
    tok = build_tiny_tokenizer()
    ids = digit_token_ids(tok, (0, 1))
    assert [tok.decode(i).strip() for i in ids[0]] == ["0"] * len(ids[0])
    assert ids[1] and ids[0] != ids[1]
    logits = np.full((1, len(tok)), -1e9)
    logits[0, ids[0][0]] = np.log(0.2)
    logits[0, ids[1][0]] = np.log(0.6)
    logits[0, 5] = np.log(0.2)  # some other token takes the rest
    np.testing.assert_allclose(digit_probs_from_logits(logits, ids), [[0.2, 0.6]])
