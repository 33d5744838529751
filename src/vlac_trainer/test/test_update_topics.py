"""What the trainer node publishes per update: the defined figures only, by topic name (update_log.topic_values)."""

from __future__ import annotations

import dataclasses
import math

from vlac_trainer.online.ppo_trainer import UpdateStats
from vlac_trainer.online.update_log import TOPIC_STATS, topic_values


def stats(**overrides) -> UpdateStats:
    base = UpdateStats(
        policy_version=3,
        warmup=False,
        steps=10,
        demo_steps=0,
        minibatches=2,
        loss=0.5,
        pg_loss=0.25,
        v_loss=0.125,
        entropy=1.5,
        demo_nll=None,
        self_imitation_nll=None,
        self_imitation_steps=0,
        approx_kl=0.01,
        clipfrac=0.2,
        max_abs_logratio_first=0.0,
    )
    return dataclasses.replace(base, **overrides)


def test_every_topic_names_a_numeric_field_of_the_update():
    fields = {f.name: f for f in dataclasses.fields(UpdateStats)}
    assert set(TOPIC_STATS.values()) <= set(fields)
    assert all(name.isidentifier() for name in TOPIC_STATS)  # a valid ROS topic name segment


def test_a_figure_that_is_off_or_undefined_is_not_published():
    values = topic_values(stats())  # no anchor (None), lessons off and no value figures (NaN)
    assert values == {
        "loss": 0.5,
        "pg_loss": 0.25,
        "value_loss": 0.125,
        "entropy": 1.5,
        "approx_kl": 0.01,
        "clipfrac": 0.2,
        "policy_version": 3.0,
    }
    assert all(isinstance(v, float) for v in values.values())


def test_the_anchor_and_the_lessons_figures_are_published_once_defined():
    values = topic_values(
        stats(prior_kl=0.02, lesson_norm=4.0, lesson_cos_to_past=0.1, lesson_agreement=math.nan, grad_norm=math.inf)
    )
    assert values["prior_kl"] == 0.02 and values["lesson_norm"] == 4.0 and values["lesson_cos_to_past"] == 0.1
    assert "lesson_agreement" not in values  # the first lesson after warm-up: no pair to agree yet
    assert values["grad_norm"] == math.inf  # a diverging gradient is shown as it was, not hidden
