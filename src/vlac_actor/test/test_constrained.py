"""The constrained distribution PPO's log-probs and entropy come from, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from vlac_actor.constrained import allowed_index, constrained_log_probs, entropy


class _TwoNodeGrammar:
    """Just the grammar's ``allowed(node)`` lookup: node 0 allows tokens 1 and 3, node 1 forces token 2."""

    def allowed(self, node: int) -> tuple[int, ...]:
        return ((1, 3), (2,))[node]


def test_log_probs_are_renormalised_over_the_allowed_tokens_only():
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]))
    ids, mask = allowed_index(_TwoNodeGrammar(), [0, 1], torch.device("cpu"))
    assert ids.tolist() == [[1, 3], [2, 0]] and mask.tolist() == [[True, True], [True, False]]
    log_probs = constrained_log_probs(logits, ids, mask)
    # node 0: p(1) = 2 / (2 + 4), p(3) = 4 / 6; node 1: the forced token has probability 1 (log-prob 0)
    assert log_probs[0].tolist() == pytest.approx([math.log(1 / 3), math.log(2 / 3)])
    assert log_probs[1, 0].item() == pytest.approx(0.0)
    assert log_probs[1, 1].item() == -math.inf  # padding never carries probability
    # a constant shift of the raw logits (what temperature-1 softmax ignores) changes nothing
    assert constrained_log_probs(logits + 5.0, ids, mask)[0].tolist() == pytest.approx(log_probs[0].tolist())


def test_a_logit_temperature_divides_the_logits_before_the_softmax():
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]))
    ids, mask = allowed_index(_TwoNodeGrammar(), [0, 1], torch.device("cpu"))
    # T = 0.5 squares the odds: p(1) : p(3) = 2^2 : 4^2; the forced token keeps probability 1
    log_probs = constrained_log_probs(logits, ids, mask, temperature=0.5)
    assert log_probs[0].tolist() == pytest.approx([math.log(4 / 20), math.log(16 / 20)])
    assert log_probs[1, 0].item() == pytest.approx(0.0)


def test_one_temperature_per_decision_divides_each_row_by_its_own():
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]))
    ids, mask = allowed_index(_TwoNodeGrammar(), [0, 0], torch.device("cpu"))
    log_probs = constrained_log_probs(logits, ids, mask, temperature=torch.tensor([[0.5], [1.0]]))
    assert log_probs[0].tolist() == pytest.approx(constrained_log_probs(logits, ids, mask, 0.5)[0].tolist())
    assert log_probs[1].tolist() == pytest.approx([math.log(1 / 3), math.log(2 / 3)])


def test_entropy_in_nats_and_zero_for_a_forced_token():
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]))
    ids, mask = allowed_index(_TwoNodeGrammar(), [0, 1], torch.device("cpu"))
    h = entropy(constrained_log_probs(logits, ids, mask), mask)
    expected = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    assert h.tolist() == pytest.approx([expected, 0.0])


class _WideGrammar:
    """Node 0 allows tokens 1 and 3 (padded to the width of node 1), node 1 allows tokens 0, 2 and 4."""

    def allowed(self, node: int) -> tuple[int, ...]:
        return ((1, 3), (0, 2, 4))[node]


def test_bfloat16_logits_give_float32_log_probs_and_disallowed_tokens_carry_nothing_however_large():
    # Raw logits, all exact in bfloat16 (the model's dtype on the GPU). The disallowed ids carry the
    # largest logits of each row (row 0: id 0, which is also row 0's padding id, and id 4; row 1:
    # ids 1 and 3): none of that mass may leak into the constrained distribution.
    logits = torch.tensor([[9.0, 1.0, 0.0, 2.0, 5.0], [1.0, 7.0, 1.0, 7.0, 1.0]], dtype=torch.bfloat16)
    ids, mask = allowed_index(_WideGrammar(), [0, 1], torch.device("cpu"))
    assert ids.tolist() == [[1, 3, 0], [0, 2, 4]] and mask.tolist() == [[True, True, False], [True, True, True]]
    log_probs = constrained_log_probs(logits, ids, mask)
    assert log_probs.dtype == torch.float32
    # Row 0, over tokens 1 and 3 only: p(1) = e^1 / (e^1 + e^2) = 1 / (1 + e), p(3) = e / (1 + e), so
    # log p(1) = -log(1 + e) = -1.3132617 and log p(3) = 1 - log(1 + e) = -0.3132617 (in float32 to
    # 1e-6; bfloat16 arithmetic would be off by about 1e-3, far above the sampler/re-scorer's 1e-5).
    assert log_probs[0, :2].tolist() == pytest.approx([-1.3132617, -0.3132617], abs=1e-6)
    assert log_probs[0, 2].item() == -math.inf
    # Row 1, tokens 0, 2 and 4 have equal logits: uniform, log p = -log 3 = -1.0986123 each.
    assert log_probs[1].tolist() == pytest.approx([-1.0986123] * 3, abs=1e-6)
    # Greedy decoding picks the argmax of these log-probs: token 3 in row 0 (not 0 or 4, the larger raw logits).
    assert int(ids[0, log_probs[0].argmax()]) == 3
    # Entropy, nats: row 0, -(p log p + q log q) with p = 1 / (1 + e) = 0.2689414, q = 0.7310586:
    # 0.2689414 * 1.3132617 + 0.7310586 * 0.3132617 = 0.5822031; row 1, uniform over 3: log 3 = 1.0986123.
    assert entropy(log_probs, mask).tolist() == pytest.approx([0.5822031, 1.0986123], abs=1e-6)
