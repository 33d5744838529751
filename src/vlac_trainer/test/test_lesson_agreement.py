"""The running agreement of the updates' lessons, on constructed lessons whose cosines are known."""

from __future__ import annotations

import math

import pytest
import torch

from vlac_trainer.online.lesson_agreement import LessonAgreement


def basis(i: int, size: int = 8) -> torch.Tensor:
    e = torch.zeros(size)
    e[i] = 1.0
    return e


def test_lessons_alike_agree_fully_whatever_their_length():
    running = LessonAgreement()
    first = running.add(3.0 * basis(0))
    assert first.norm == pytest.approx(3.0) and first.lessons == 1
    assert math.isnan(first.cos_to_past) and math.isnan(first.agreement) and math.isnan(first.shared_to_noise)
    second = running.add(0.5 * basis(0))
    assert second.cos_to_past == pytest.approx(1.0) and second.agreement == pytest.approx(1.0)
    assert second.shared_to_noise == math.inf  # nothing but the shared lesson


def test_orthogonal_lessons_share_nothing_and_opposite_ones_cancel():
    running = LessonAgreement()
    figures = [running.add(basis(i)) for i in range(3)]
    assert [f.cos_to_past for f in figures[1:]] == [0.0, 0.0]
    assert figures[-1].agreement == pytest.approx(0.0, abs=1e-7) and figures[-1].shared_to_noise == 0.0
    opposite = LessonAgreement()
    opposite.add(basis(0))
    back = opposite.add(-2.0 * basis(0))
    assert back.cos_to_past == pytest.approx(-1.0) and back.agreement == pytest.approx(-1.0)
    assert back.shared_to_noise == 0.0


@pytest.mark.parametrize("rho", [0.05, 0.3])
def test_a_shared_part_of_squared_length_rho_reads_as_agreement_rho(rho):
    # Unit lessons s + n_i, |s|^2 = rho, the n_i orthogonal to s and to each other, |n_i|^2 = 1 - rho: every pair's
    # cosine is rho. The k-th lesson against the sum of the k - 1 before it:
    # (k - 1) rho / sqrt((k - 1)(1 + (k - 2) rho)).
    n = 6
    shared = math.sqrt(rho) * basis(0, n + 1)
    running = LessonAgreement()
    for k in range(1, n + 1):
        figures = running.add(shared + math.sqrt(1 - rho) * basis(k, n + 1))
        if k >= 2:
            expected_cos = (k - 1) * rho / math.sqrt((k - 1) * (1 + (k - 2) * rho))
            assert figures.cos_to_past == pytest.approx(expected_cos, rel=1e-5)
            assert figures.agreement == pytest.approx(rho, rel=1e-5)
            assert figures.shared_to_noise == pytest.approx(math.sqrt(k * rho / (1 - rho)), rel=1e-5)
    assert figures.lessons == n


def test_a_zero_lesson_teaches_nothing_and_is_not_counted():
    running = LessonAgreement()
    running.add(basis(0))
    running.add(basis(1))
    zero = running.add(torch.zeros(8))
    assert zero.norm == 0.0 and math.isnan(zero.cos_to_past) and zero.lessons == 2
    assert zero.agreement == pytest.approx(0.0, abs=1e-7)


def test_the_running_state_round_trips_and_continues_as_if_never_stopped():
    lessons = [torch.randn(8, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    whole = LessonAgreement()
    for lesson in lessons[:2]:
        whole.add(lesson)
    resumed = LessonAgreement()
    resumed.load_state(whole.state())
    for lesson in lessons[2:]:
        expected, got = whole.add(lesson), resumed.add(lesson)
        assert got.cos_to_past == pytest.approx(expected.cos_to_past)
        assert got.agreement == pytest.approx(expected.agreement) and got.lessons == expected.lessons
    assert LessonAgreement().state() == {"unit_sum": None, "count": 0}


@pytest.mark.parametrize(
    ("lesson", "match"),
    [
        (torch.zeros(2, 4), "flat lesson vector expected, got shape \\(2, 4\\)"),
        (torch.tensor([1.0, math.nan]), "non-finite"),
    ],
)
def test_a_malformed_lesson_is_refused_naming_why(lesson, match):
    with pytest.raises(ValueError, match=match):
        LessonAgreement().add(lesson)


def test_a_lesson_of_another_size_is_refused():
    running = LessonAgreement()
    running.add(basis(0, 8))
    with pytest.raises(ValueError, match="a lesson of 4 entries where the earlier ones had 8"):
        running.add(basis(0, 4))


def test_a_state_whose_count_and_sum_disagree_is_refused():
    with pytest.raises(ValueError, match="count 3 with no sum"):
        LessonAgreement().load_state({"unit_sum": None, "count": 3})
