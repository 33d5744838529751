"""The constrained distribution at a decision: softmax of the raw logits over the allowed tokens only.

Shared by sampling and by re-scoring so both compute log-probs with the very same operations. This
is the policy pi(a|s) PPO works with: the logits over the policy's logit temperature (its
policy_settings.json: one number, or one per field; 1 unless set), renormalised over what the grammar
allows, so a forced token has probability 1 and carries no log-prob. A request's sampling temperature
and top-p only shape exploration; they never change the recorded log-probs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .grammar import ActionGrammar


def allowed_index(
    grammar: ActionGrammar, nodes: Sequence[int], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) allowed token ids per decision node (padded with 0) and the (N, K) mask of real entries."""
    allowed = [grammar.allowed(n) for n in nodes]
    width = max(len(a) for a in allowed)
    ids = torch.zeros((len(nodes), width), dtype=torch.long)
    mask = torch.zeros((len(nodes), width), dtype=torch.bool)
    for i, a in enumerate(allowed):
        ids[i, : len(a)] = torch.tensor(a, dtype=torch.long)
        mask[i, : len(a)] = True
    return ids.to(device), mask.to(device)


def constrained_log_probs(
    logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, temperature: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """(N, V) raw logits -> (N, K) float32 log-probs of softmax(logits / ``temperature``) over the allowed ids
    (-inf where masked); ``temperature`` is one number or an (N, 1) tensor, one per decision
    (``Policy.decision_temperature``)."""
    selected = logits.float().gather(1, ids).masked_fill(~mask, float("-inf"))
    return torch.log_softmax(selected / temperature, dim=-1)  # / 1.0 is exact: T = 1 changes nothing


def entropy(log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, K) masked log-probs -> (N,) entropy in nats of each constrained distribution."""
    probs = log_probs.exp()
    return -(probs * log_probs.masked_fill(~mask, 0.0)).sum(-1)
