"""Re-scoring given actions under the policy (teacher forcing), for the trainer's PPO recompute.

One forward pass over prompt + canonical action tokens (left-padded batch) gives, at every decision
of the grammar, the same constrained log-prob the sampler recorded (decoding.py; test: 1e-5 on the
torch backend), the entropy of that decision's distribution (for the entropy bonus), and the state value
V(s) at the prompt's last token (before any action token, so it does not depend on the action).
With ``with_grad=True`` the tensors stay in the autograd graph so a PPO loss can backpropagate through
them into the model and the value head. ``state_values`` reads V(s) alone (the step-limit bootstrap
reads it for the final observation), ``prompt_features`` the hidden state it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlac_core.action_text import parse_action
from vlac_core.model import encode, last_prompt_hidden
from vlac_core.types import DeltaAction

from .constrained import allowed_index, constrained_log_probs, entropy
from .policy import Policy


@dataclass
class ActionScores:
    """Per-decision log-probs and entropies, (B, S) padded with 0 where ``mask`` is False; values (B,), read by the
    value head from ``prompt_hidden`` (B, hidden): the hidden state at each prompt's last token, the same rows
    ``prompt_features`` gives (probes read them from here without a second forward pass).

    S is the largest number of decisions in the batch. On the policy's device; all float32 but ``prompt_hidden``
    (the model's dtype).
    """

    token_logprobs: torch.Tensor
    entropies: torch.Tensor
    mask: torch.Tensor
    values: torch.Tensor
    prompt_hidden: torch.Tensor

    @property
    def logprob(self) -> torch.Tensor:
        """(B,) log-probability of each whole action (sum over its decisions)."""
        return (self.token_logprobs * self.mask).sum(-1)

    @property
    def open_logprob(self) -> torch.Tensor:
        """(B,) log-probability of each action's gripper decision (``open: 0/1``): the grammar's last sampled
        decision (the closing ``}`` is forced, not a decision)."""
        rows = torch.arange(len(self.mask), device=self.mask.device)
        return self.token_logprobs[rows, self.mask.sum(-1) - 1]


def score_actions(
    policy: Policy,
    contents: Sequence[str],
    images: Sequence[Sequence[np.ndarray]],
    actions: Sequence[str | DeltaAction],
    *,
    with_grad: bool = False,
) -> ActionScores:
    """Score ``actions[i]`` (text or DeltaAction) as the answer to (contents[i], images[i]).

    Text must parse (vlac_core.action_text.parse_action) and lie in the grammar's limits, else a
    ValueError names the field. ``with_grad`` keeps the autograd graph (the model's train/eval mode
    is the caller's choice).
    """
    if not (len(contents) == len(images) == len(actions)) or not contents:
        raise ValueError(
            f"expected equal, non-zero counts, got {len(contents)} contents, {len(images)} image "
            f"lists, {len(actions)} actions"
        )
    grammar, device = policy.grammar, policy.device
    deltas = [parse_action(a) if isinstance(a, str) else a for a in actions]
    action_ids = [grammar.token_ids(d) for d in deltas]
    decisions = [grammar.walk(ids) for ids in action_ids]

    context = torch.enable_grad() if with_grad else torch.inference_mode()
    with context:
        batch = encode(policy.loaded, contents, images)
        prompts = [row[mask.bool()] for row, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)]
        lengths = [len(p) + len(a) for p, a in zip(prompts, action_ids, strict=True)]
        total = max(lengths)
        rows = len(contents)
        pad_id = policy.loaded.tokenizer.pad_token_id
        input_ids = torch.full((rows, total), pad_id, dtype=torch.long, device=device)
        attention = torch.zeros((rows, total), dtype=torch.long, device=device)
        for r in range(rows):
            sequence = torch.cat([prompts[r], torch.tensor(action_ids[r], dtype=torch.long, device=device)])
            input_ids[r, total - lengths[r] :] = sequence
            attention[r, total - lengths[r] :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        hidden = policy.decoder(
            input_ids=input_ids,
            pixel_values=batch.get("pixel_values"),
            attention_mask=attention,
            position_ids=positions,
            use_cache=False,
        ).last_hidden_state

        # hidden state one position before each decision token predicts it
        row_index, hidden_index, nodes = [], [], []
        for r in range(rows):
            action_start = total - len(action_ids[r])
            for position, node in decisions[r]:
                row_index.append(r)
                hidden_index.append(action_start + position - 1)
                nodes.append(node)
        ids, mask = allowed_index(grammar, nodes, device)
        row_t = torch.tensor(row_index, device=device)
        logits = policy.lm_head(hidden[row_t, torch.tensor(hidden_index, device=device)])
        log_probs = constrained_log_probs(logits, ids, mask, policy.decision_temperature(nodes))
        targets = torch.tensor(
            [grammar.allowed(n).index(action_ids[r][p]) for r, (p, n) in _flat(decisions)], device=device
        )
        chosen = log_probs.gather(1, targets[:, None]).squeeze(1)
        decision_entropy = entropy(log_probs, mask)

        width = max(len(d) for d in decisions)
        slot = torch.tensor([i for d in decisions for i in range(len(d))], device=device)
        out_logprobs = torch.zeros((rows, width), dtype=torch.float32, device=device).index_put((row_t, slot), chosen)
        out_entropy = torch.zeros((rows, width), dtype=torch.float32, device=device).index_put(
            (row_t, slot), decision_entropy
        )
        out_mask = torch.zeros((rows, width), dtype=torch.bool, device=device)
        out_mask[row_t, slot] = True
        # V(s): the hidden state at the prompt's last token (left padding: it sits just before the action)
        prompt_last = torch.tensor([total - len(ids) - 1 for ids in action_ids], device=device)
        prompt_hidden = hidden[torch.arange(rows, device=device), prompt_last]
        values = policy.value_head(prompt_hidden)
    return ActionScores(
        token_logprobs=out_logprobs, entropies=out_entropy, mask=out_mask, values=values, prompt_hidden=prompt_hidden
    )


def state_values(
    policy: Policy, contents: Sequence[str], images: Sequence[Sequence[np.ndarray]], *, with_grad: bool = False
) -> torch.Tensor:
    """V(s) of each prompt (B,), float32: the value head on the hidden state of the prompt's last token.

    The same readout as ``score_actions`` and the sampler, for states nobody acted in (an episode's
    final observation, which a truncated episode bootstraps from).
    """
    context = torch.enable_grad() if with_grad else torch.inference_mode()
    with context:
        return policy.value_head(prompt_features(policy, contents, images, with_grad=with_grad))


def prompt_features(
    policy: Policy, contents: Sequence[str], images: Sequence[Sequence[np.ndarray]], *, with_grad: bool = False
) -> torch.Tensor:
    """(B, hidden) the decoder's hidden state at each prompt's last token: what the value head and the first
    action decision read, i.e. everything the policy knows about the state; ``ActionScores.prompt_hidden``
    holds the same rows for scored actions (bench/actor_probe.py reads them there).
    """
    if len(contents) != len(images) or not contents:
        raise ValueError(f"expected equal, non-zero counts, got {len(contents)} contents, {len(images)} image lists")
    context = torch.enable_grad() if with_grad else torch.inference_mode()
    with context:
        return last_prompt_hidden(policy.loaded, encode(policy.loaded, contents, images))


def _flat(decisions: list[list[tuple[int, int]]]):
    for r, row in enumerate(decisions):
        for position, node in row:
            yield r, (position, node)
