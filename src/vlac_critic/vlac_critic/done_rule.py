"""The critic's done rule: when its done probabilities end an episode, and which rule suits a given critic.

The critic reports probabilities only. An episode is done at the first step whose done probability exceeded
a threshold on that step and the ``confirm_steps`` - 1 steps before it (``confirmed_done``: the one rule the
episode loop, the audits and the benches apply).

Which threshold and how many steps is a property of the critic, not of the session: a critic fine-tuned on
near-goal failures learns caution, and the release's one step over 0.9 then stays silent on true completions
(paying the policy for its moves after them) while another critic fires falsely on the same rule
(docs/rl_experiments.md, "The fine-tuned critic in a full run of the loop"). So a rule is chosen for a critic
on rollouts with ground truth, judged per episode where the loop would end it (``score_rules``,
``choose_rule``), and stored beside the checkpoint (``done_rule.json``); a session with
``episode_manager.done_rule: critic`` runs with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vlac_core.config import ConfigError

#: The file beside a critic checkpoint that holds its done rule.
DONE_RULE_FILE = "done_rule.json"

#: Per episode, judged at the step where a rule first fires (where the loop would end the episode):
#: on_time: the task is done there; early: not yet, but later in the episode; false_done: not then nor later;
#: missed: it never fires though the task gets done; quiet: it never fires and the task is never done.
OUTCOMES = ("on_time", "early", "missed", "false_done", "quiet")
#: The outcomes that pay the policy wrongly: a done on a failure (early, false_done) ends it as a success; a
#: silence (missed) runs a success on to the step limit, paid for the moves after completion.
WRONG_OUTCOMES = ("early", "false_done", "missed")

#: The rules ``choose_rule`` picks from by default, 1 to 4 steps over each threshold; the rollout audit's per-step
#: operating points use the same thresholds. Why this fine a grid: a rule is chosen from it on one set of rollouts
#: and then judged on another (item 5's done bar is precision >= 0.9 at recall >= 0.9).
RULE_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)
RULE_CONFIRM_STEPS = (1, 2, 3, 4)


@dataclass(frozen=True)
class DoneRule:
    """Done when the done probability exceeds ``threshold`` on ``confirm_steps`` steps in a row."""

    threshold: float
    confirm_steps: int

    def __post_init__(self) -> None:
        # the bounds of episode_manager.done_threshold / done_confirm_steps
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
            raise ConfigError(f"done rule threshold: expected a number, got {self.threshold!r}")
        if not 0.01 <= self.threshold <= 1.0:
            raise ConfigError(f"done rule threshold: {self.threshold!r} is outside [0.01, 1]")
        if isinstance(self.confirm_steps, bool) or not isinstance(self.confirm_steps, int):
            raise ConfigError(f"done rule confirm_steps: expected an integer, got {self.confirm_steps!r}")
        if not 1 <= self.confirm_steps <= 100:
            raise ConfigError(f"done rule confirm_steps: {self.confirm_steps!r} is outside [1, 100]")

    def __str__(self) -> str:
        return f"{self.confirm_steps} step(s) over {self.threshold:g}"


def parse_rule(text: str) -> DoneRule:
    """``THRESHOLD:STEPS`` (e.g. ``0.8:3``) as a DoneRule; ValueError naming the text otherwise."""
    try:
        threshold, steps = text.split(":")
        return DoneRule(float(threshold), int(steps))
    except ValueError as error:  # ConfigError is a ValueError too
        raise ValueError(
            f"{text!r}: expected THRESHOLD:STEPS with a threshold in [0.01, 1] and steps >= 1, e.g. 0.8:3 ({error})"
        ) from None


def rule_argument(text: str) -> DoneRule:
    """``parse_rule`` for an argparse ``type=``: a bad text is a usage error that names it."""
    import argparse

    try:
        return parse_rule(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def confirmed_done(done_probs: Sequence[float], threshold: float, confirm_steps: int = 1) -> list[bool]:
    """Per step, whether the critic's done holds there: its done probability exceeded ``threshold`` on that
    step and on the ``confirm_steps`` - 1 steps before it. NaN (an unparsable answer) breaks a run.

    The loop ends an episode at the first True; the audits and bench/critic_quality.py apply the same rule offline.
    """
    flags, run = [], 0
    for prob in done_probs:
        run = run + 1 if prob > threshold else 0  # NaN > threshold is False
        flags.append(run >= confirm_steps)
    return flags


def first_fire(done_probs: Sequence[float | None], rule: DoneRule) -> int | None:
    """The step where ``rule`` first holds (None: never); a None probability counts as NaN."""
    probs = [math.nan if p is None else float(p) for p in done_probs]
    return next((i for i, done in enumerate(confirmed_done(probs, rule.threshold, rule.confirm_steps)) if done), None)


def episode_outcome(done_probs: Sequence[float | None], success: Sequence[bool], rule: DoneRule) -> str:
    """One of ``OUTCOMES`` for an episode whose step i has done probability ``done_probs[i]`` and ground-truth
    success ``success[i]``, judged where the rule first fires."""
    return _judged(done_probs, success, rule)[0]


def _judged(done_probs: Sequence[float | None], success: Sequence[bool], rule: DoneRule) -> tuple[str, int | None]:
    """``episode_outcome`` and the step the rule first fires (None: never)."""
    truth = np.asarray(success, dtype=bool)
    if truth.shape != (len(done_probs),):
        raise ValueError(f"episode_outcome: {len(done_probs)} done probabilities against {truth.shape} truth flags")
    fired = first_fire(done_probs, rule)
    if fired is None:
        return ("missed" if truth.any() else "quiet"), None
    if truth[fired]:
        return "on_time", fired
    return ("early" if truth[fired:].any() else "false_done"), fired


def score_rules(
    episodes: Sequence[tuple[Sequence[float | None], Sequence[bool]]], rules: Sequence[DoneRule]
) -> list[dict]:
    """Per rule, how many of ``episodes`` ((done probabilities, success flags) per step) end each way, the wrong
    ones in all, and the mean steps from the first truly done step to the fire over the on-time episodes
    (``delay_steps_mean``; NaN when none is on time)."""
    rows = []
    for rule in rules:
        counts = dict.fromkeys(OUTCOMES, 0)
        delays = []
        for probs, success in episodes:
            outcome, fired = _judged(probs, success, rule)
            counts[outcome] += 1
            if outcome == "on_time":  # steps after the first truly done one
                delays.append(fired - int(np.argmax(np.asarray(success, dtype=bool))))
        rows.append(
            {
                "threshold": rule.threshold,
                "confirm_steps": rule.confirm_steps,
                **counts,
                "wrong": sum(counts[k] for k in WRONG_OUTCOMES),
                "delay_steps_mean": float(np.mean(delays)) if delays else math.nan,
            }
        )
    return rows


def rule_grid(
    thresholds: Sequence[float] = RULE_THRESHOLDS, confirm_steps: Sequence[int] = RULE_CONFIRM_STEPS
) -> list[DoneRule]:
    return [DoneRule(float(t), int(n)) for n in confirm_steps for t in thresholds]


def choose_rule(rows: Sequence[dict]) -> dict:
    """The row of ``score_rules`` with the fewest wrong episodes; at a tie the earlier fire (smaller mean delay),
    then the fewer confirm steps and the higher threshold (the simpler, more cautious rule)."""
    if not rows:
        raise ValueError("choose_rule: no rule was scored")

    def key(row: dict) -> tuple:
        delay = row["delay_steps_mean"]
        return (row["wrong"], math.inf if math.isnan(delay) else delay, row["confirm_steps"], -row["threshold"])

    return min(rows, key=key)


def done_rule_path(checkpoint: str | Path) -> Path:
    return Path(checkpoint) / DONE_RULE_FILE


def write_done_rule(checkpoint: str | Path, rule: DoneRule, chosen_on: dict) -> Path:
    """``done_rule.json`` beside the checkpoint: the rule and how it was chosen (``chosen_on``: the rollouts,
    the scores), so a reader can judge it."""
    from vlac_core.jsonio import write_json

    folder = Path(checkpoint)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a critic checkpoint folder")
    return write_json(done_rule_path(folder), {**asdict(rule), "chosen_on": chosen_on})


def read_done_rule(checkpoint: str | Path) -> DoneRule:
    """The rule stored beside ``checkpoint``; ConfigError naming the file and how to make one when it is missing
    or damaged (never a default in its place)."""
    import json

    path = done_rule_path(checkpoint)
    if not path.is_file():
        raise ConfigError(
            f"{path}: no done rule beside this critic checkpoint; choose one on rollouts with ground truth "
            "(python -m vlac_trainer.offline.critic_rollouts done-rule FOLDER... --checkpoint "
            f"{checkpoint} --write) or set episode_manager.done_rule: config"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DoneRule(data["threshold"], data["confirm_steps"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: not a done rule ({type(error).__name__}: {error})") from None
