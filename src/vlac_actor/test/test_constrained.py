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


def test_entropy_in_nats_and_zero_for_a_forced_token():
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]))
    ids, mask = allowed_index(_TwoNodeGrammar(), [0, 1], torch.device("cpu"))
    h = entropy(constrained_log_probs(logits, ids, mask), mask)
    expected = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    assert h.tolist() == pytest.approx([expected, 0.0])
