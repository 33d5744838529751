"""Frame pairing, value curves and VOC/VROC/VOC-F1/NR against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlac_critic.metrics import negative_rate, spearman_with_time, voc, voc_f1, vroc
from vlac_critic.trajectory import critic_scale, pair_indices, update_value, value_curve


def test_pairs_with_frame_skipping_sample_every_skip_frames():
    assert pair_indices(12, 5, frame_skipping=True) == [(0, 5), (5, 10)]  # frame 11 is past the last sample
    assert pair_indices(11, 5, frame_skipping=True) == [(0, 5), (5, 10)]
    assert pair_indices(3, 1) == [(0, 1), (1, 2)]


def test_pairs_without_frame_skipping_pair_every_frame_with_the_one_skip_back():
    assert pair_indices(8, 5, frame_skipping=False) == [(0, 5), (1, 6), (2, 7)]
    assert critic_scale(5, frame_skipping=False) == pytest.approx(0.2)
    assert critic_scale(5, frame_skipping=True) == 1.0


def test_pairing_rejects_too_short_trajectories_and_bad_skip():
    with pytest.raises(ValueError, match="5 frames has no pair at skip 5"):
        pair_indices(5, 5)
    with pytest.raises(ValueError, match="skip must be >= 1"):
        pair_indices(5, 0)


def test_release_value_rule_applies_to_negative_critics_too():
    assert value_curve([50, 50, -50]).tolist() == [0.0, 50.0, 75.0, 62.5]
    assert value_curve([-50]).tolist() == [0.0, -50.0]  # goes below 0: the release's behaviour


def test_signed_value_rule_removes_a_share_of_the_progress_made():
    assert value_curve([50, 50, -50], rule="signed").tolist() == [0.0, 50.0, 75.0, 37.5]
    assert value_curve([-50], rule="signed").tolist() == [0.0, 0.0]
    assert update_value(40.0, -25.0, "signed") == pytest.approx(30.0)


def test_value_curve_scales_critics_and_skips_unparsed_ones():
    assert value_curve([50, None, 50], scale=0.5).tolist() == [0.0, 25.0, 25.0, 43.75]
    with pytest.raises(ValueError, match="value rule 'max'"):
        value_curve([1.0], rule="max")


def test_voc_hand_computed_with_a_dip():
    # ranks of [0, 50, 75, 62.5] are 1, 2, 4, 3: sum d^2 = 2, rho = 1 - 6*2/(4*15) = 0.8
    assert voc([0.0, 50.0, 75.0, 62.5]) == pytest.approx(0.8)


def test_voc_with_ties_uses_average_ranks():
    # ranks 1, 2.5, 2.5, 4 against 1..4: rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert voc([0.0, 10.0, 10.0, 20.0]) == pytest.approx(math.sqrt(0.9))


def test_voc_of_monotone_and_reversed_curves():
    assert voc([0, 1, 2, 3]) == pytest.approx(1.0)
    assert voc([3, 2, 1, 0]) == pytest.approx(-1.0)


def test_vroc_is_the_voc_of_the_negated_inverted_pair_critics():
    # a good critic answers the inverted pairs negatively (-20, -30); negated they raise the value
    assert vroc(value_curve([20.0, 30.0])) == pytest.approx(1.0)
    # a critic blind to order answers +25 to the inverted pairs too: negated, the value falls
    assert vroc(value_curve([-25.0, -25.0])) == pytest.approx(-1.0)
    # hand-computed with a dip: values 0, 50, 75, 62.5 -> 0.8, as for VOC
    assert vroc(value_curve([50.0, 50.0, -50.0])) == pytest.approx(0.8)


def test_undefined_correlations_are_nan_not_zero():
    assert math.isnan(voc([5.0, 5.0, 5.0]))
    assert math.isnan(spearman_with_time([1.0]))


def test_voc_f1_is_the_harmonic_mean_where_both_correlations_are_non_negative():
    assert voc_f1(0.8, 0.6) == pytest.approx(2 * 0.8 * 0.6 / 1.4)
    assert voc_f1(1.0, 1.0) == pytest.approx(1.0)
    assert voc_f1(0.0, 0.0) == 0.0
    assert math.isnan(voc_f1(float("nan"), 1.0))


def test_voc_f1_with_a_negative_correlation_is_the_worse_direction_and_stays_in_range():
    assert voc_f1(0.9, -0.5) == -0.5  # the plain harmonic mean gave -2.25
    assert voc_f1(1.0, -1.0) == -1.0  # and NaN here
    assert voc_f1(-0.3, -0.7) == -0.7
    grid = np.linspace(-1.0, 1.0, 41)
    values = np.array([[voc_f1(a, b) for b in grid] for a in grid])
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert np.all(np.diff(values, axis=0) >= -1e-12) and np.all(np.diff(values, axis=1) >= -1e-12)  # monotone


def test_negative_rate_counts_parsed_critics_below_zero():
    assert negative_rate([10.0, -5.0, None, 0.0, -1.0]) == pytest.approx(0.5)
    assert math.isnan(negative_rate([None, None]))
    assert negative_rate(np.array([1.0, 2.0])) == 0.0
