"""vlac_critic.done_rule: the loop's done rule judged per episode, a rule chosen for a critic, and the file that
carries it beside the checkpoint."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from vlac_core.config import ConfigError
from vlac_critic.done_rule import (
    DoneRule,
    choose_rule,
    confirmed_done,
    episode_outcome,
    parse_rule,
    read_done_rule,
    rule_argument,
    rule_grid,
    score_rules,
    write_done_rule,
)

SUCCESS_FROM_3 = np.array([False, False, False, True, True, True])
NEVER = np.zeros(6, dtype=bool)


def test_confirmed_done_needs_a_run_of_steps_over_the_threshold():
    probs = [0.95, math.nan, 0.95, 0.95, 0.9, 0.95, 0.95, 0.95]
    assert confirmed_done(probs, 0.9) == [True, False, True, True, False, True, True, True]
    assert confirmed_done(probs, 0.9, 2) == [False, False, False, True, False, False, True, True]
    assert confirmed_done(probs, 0.9, 3) == [False] * 7 + [True]
    assert confirmed_done([], 0.9, 3) == []


@pytest.mark.parametrize(
    ("probs", "success", "rule", "outcome"),
    [
        ([0.1, 0.1, 0.1, 0.95, 0.95, 0.95], SUCCESS_FROM_3, DoneRule(0.9, 1), "on_time"),
        ([0.1, 0.95, 0.1, 0.95, 0.95, 0.95], SUCCESS_FROM_3, DoneRule(0.9, 1), "early"),  # a spike before success
        ([0.1, 0.95, 0.1, 0.95, 0.95, 0.95], SUCCESS_FROM_3, DoneRule(0.9, 2), "on_time"),  # confirmed at step 4
        ([0.1, 0.1, 0.1, 0.85, 0.85, 0.85], SUCCESS_FROM_3, DoneRule(0.9, 1), "missed"),  # under the release's 0.9
        ([0.1, 0.1, 0.1, 0.85, 0.85, 0.85], SUCCESS_FROM_3, DoneRule(0.8, 3), "on_time"),
        ([0.1, 0.1, 0.1, 0.85, None, 0.85], SUCCESS_FROM_3, DoneRule(0.8, 2), "missed"),  # unparsable breaks the run
        ([0.1, 0.1, 1.0, 0.1, 0.1, 0.1], NEVER, DoneRule(0.9, 1), "false_done"),
        ([0.1, 0.1, 1.0, 0.1, 0.1, 0.1], NEVER, DoneRule(0.9, 2), "quiet"),
        # done, then undone: firing while it is done is on time, though the episode ends failed
        (
            [0.1, 0.1, 0.95, 0.1, 0.1, 0.1],
            np.array([False, False, True, False, False, False]),
            DoneRule(0.9, 1),
            "on_time",
        ),
    ],
)
def test_episode_outcomes(probs, success, rule, outcome):
    assert episode_outcome(probs, success, rule) == outcome


def test_an_outcome_needs_one_truth_flag_per_probability():
    with pytest.raises(ValueError, match="3 done probabilities against"):
        episode_outcome([0.1, 0.2, 0.3], SUCCESS_FROM_3, DoneRule(0.9, 1))


def test_scores_count_wrong_episodes_and_the_delay_after_the_first_true_done():
    episodes = [
        ([0.1, 0.1, 0.1, 0.85, 0.95, 0.95], SUCCESS_FROM_3),  # 0.9:1 fires at 4 (1 late); 0.8:3 at 5 (2 late)
        ([0.1, 0.95, 0.1, 0.1, 0.1, 0.1], NEVER),  # a spike: 0.9:1 ends a failure as done
        ([0.1, 0.1, 0.1, 0.85, 0.85, 0.85], SUCCESS_FROM_3),  # 0.9:1 silent
    ]
    rows = {
        (r["threshold"], r["confirm_steps"]): r for r in score_rules(episodes, [DoneRule(0.9, 1), DoneRule(0.8, 3)])
    }
    assert (rows[(0.9, 1)]["on_time"], rows[(0.9, 1)]["false_done"], rows[(0.9, 1)]["missed"]) == (1, 1, 1)
    assert rows[(0.9, 1)]["wrong"] == 2 and rows[(0.9, 1)]["delay_steps_mean"] == 1.0
    assert (rows[(0.8, 3)]["on_time"], rows[(0.8, 3)]["quiet"], rows[(0.8, 3)]["wrong"]) == (2, 1, 0)
    assert rows[(0.8, 3)]["delay_steps_mean"] == 2.0
    assert choose_rule(list(rows.values()))["threshold"] == 0.8


def test_choice_breaks_ties_by_the_earlier_fire_then_the_simpler_rule():
    def row(threshold, steps, wrong, delay):
        return {"threshold": threshold, "confirm_steps": steps, "wrong": wrong, "delay_steps_mean": delay}

    assert choose_rule([row(0.9, 1, 3, 1.0), row(0.8, 2, 2, 5.0)])["confirm_steps"] == 2  # fewer wrong first
    assert choose_rule([row(0.9, 1, 2, 2.0), row(0.8, 2, 2, 1.0)])["confirm_steps"] == 2  # then the earlier fire
    assert choose_rule([row(0.9, 1, 2, math.nan), row(0.8, 2, 2, 9.0)])["confirm_steps"] == 2  # none on time: last
    assert choose_rule([row(0.8, 2, 2, 1.0), row(0.9, 1, 2, 1.0)])["confirm_steps"] == 1  # then fewer steps
    assert choose_rule([row(0.8, 1, 2, 1.0), row(0.9, 1, 2, 1.0)])["threshold"] == 0.9  # then the higher threshold
    with pytest.raises(ValueError, match="no rule"):
        choose_rule([])


def test_the_grid_spans_thresholds_and_confirm_steps():
    grid = rule_grid((0.5, 0.9), (1, 3))
    assert grid == [DoneRule(0.5, 1), DoneRule(0.9, 1), DoneRule(0.5, 3), DoneRule(0.9, 3)]


@pytest.mark.parametrize("bad", ["0.8", "x:3", "1.5:2", "0.8:0", "0.8:1.5"])
def test_a_bad_rule_text_is_named(bad):
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        parse_rule(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=bad.replace(".", r"\.")):
        rule_argument(bad)


def test_a_rule_text_parses():
    assert parse_rule("0.8:3") == rule_argument("0.8:3") == DoneRule(0.8, 3)


def test_a_rule_written_beside_a_checkpoint_reads_back(tmp_path):
    path = write_done_rule(tmp_path, DoneRule(0.8, 3), {"rollouts": ["r"], "wrong": 4})
    assert path == tmp_path / "done_rule.json"
    assert json.loads(path.read_text())["chosen_on"] == {"rollouts": ["r"], "wrong": 4}
    assert read_done_rule(tmp_path) == DoneRule(0.8, 3)
    assert str(read_done_rule(tmp_path)) == "3 step(s) over 0.8"


def test_a_missing_or_damaged_rule_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"no done rule beside this critic checkpoint.*done_rule: config"):
        read_done_rule(tmp_path)
    (tmp_path / "done_rule.json").write_text('{"threshold": 1.5, "confirm_steps": 2}')
    with pytest.raises(ConfigError, match=r"done_rule\.json: not a done rule .*outside \[0\.01, 1\]"):
        read_done_rule(tmp_path)
    (tmp_path / "done_rule.json").write_text('{"threshold": 0.8')
    with pytest.raises(ConfigError, match="not a done rule"):
        read_done_rule(tmp_path)
    with pytest.raises(ConfigError, match="not a critic checkpoint folder"):
        write_done_rule(tmp_path / "missing", DoneRule(0.8, 3), {})
