"""Structured action decoding: the template is teacher-forced, only the numbers are chosen.

A manual loop over the KV cache, batched over requests (left-padded prompts). Each forward pass feeds,
per row, the token chosen at the last decision plus every token the grammar then forces, up to the
next decision; so an action costs one pass per decision (~18 with the tiny tokenizer) instead of one
per token (~53). Rows advance independently: a row whose chunk is shorter than the others' is padded
on the right within the step, and the padding is masked out of attention and skipped by the position
ids, so each row sees exactly the sequence it would see alone (re-scoring checks this to 1e-5).

The value head reads the final hidden state at the prompt's last token, before any action token: a
state value V(s) that does not depend on the action sampled (``scoring`` reads it at the same place).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlac_core.action_text import format_action, parse_action
from vlac_core.model import encode
from vlac_core.types import DeltaAction

from .constrained import allowed_index, constrained_log_probs, entropy
from .policy import Policy


@dataclass(frozen=True)
class SamplingSettings:
    """How one request's numbers are chosen: argmax, or sampling with temperature and nucleus (top-p)."""

    greedy: bool = False
    temperature: float = 1.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not (self.temperature > 0 and np.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class DecodedAction:
    """One decoded action: the numbers, the text, and what PPO needs.

    ``token_logprobs``/``entropies`` are per decision (sampled position), in order, in nats, under the
    constrained policy (the policy's logit temperatures; a request's sampling temperature never enters);
    ``token_ids`` are the action's canonical ids (forced ones too).
    """

    delta: DeltaAction
    text: str
    token_ids: tuple[int, ...]
    token_logprobs: tuple[float, ...]
    entropies: tuple[float, ...]
    value: float
    forward_passes: int

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))


def _choose(log_probs: torch.Tensor, settings: SamplingSettings, generator: torch.Generator | None) -> int:
    """Index into one row's allowed tokens: argmax, or a temperature/top-p sample."""
    if settings.greedy:
        return int(torch.argmax(log_probs))
    probs = torch.softmax(log_probs / settings.temperature, dim=-1)
    if settings.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # keep the smallest head whose mass reaches top_p (always at least the most likely token)
        keep = (torch.cumsum(sorted_probs, 0) - sorted_probs) < settings.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.inference_mode()
def decode_actions(
    policy: Policy,
    contents: Sequence[str],
    images: Sequence[Sequence[np.ndarray]],
    settings: Sequence[SamplingSettings],
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> list[DecodedAction]:
    """Decode one action per (content, images) pair; ``settings[i]`` says how row i chooses.

    ``generator`` (a CPU torch.Generator) makes sampling reproducible; one generator per row makes each row's
    draws independent of which rows it is batched with (an episode then replays from its own seed whatever
    else runs beside it: ``critic_rollouts.collect``).
    """
    if not (len(contents) == len(images) == len(settings)) or not contents:
        raise ValueError(
            f"expected equal, non-zero counts, got {len(contents)} contents, {len(images)} image "
            f"lists, {len(settings)} settings"
        )
    generators = list(generator) if isinstance(generator, (list, tuple)) else [generator] * len(contents)
    if len(generators) != len(contents):
        raise ValueError(f"expected one generator per row, got {len(generators)} for {len(contents)} rows")
    grammar, device = policy.grammar, policy.device
    pad_id = policy.loaded.tokenizer.pad_token_id
    batch = encode(policy.loaded, contents, images)
    rows = len(contents)
    prefix, first_node = grammar.forced_path(grammar.start)
    prefix_ids = torch.tensor(prefix, dtype=torch.long, device=device).expand(rows, -1)
    input_ids = torch.cat([batch["input_ids"], prefix_ids], dim=1)
    attention = torch.cat([batch["attention_mask"], torch.ones_like(prefix_ids)], dim=1)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    out = policy.decoder(
        input_ids=input_ids,
        pixel_values=batch.get("pixel_values"),
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
    )
    cache = out.past_key_values
    # V(s) at the prompt's last token (left-padded prompts: the column before the forced prefix)
    values = policy.value_head(out.last_hidden_state[:, batch["input_ids"].shape[1] - 1]).cpu().tolist()
    last_hidden = out.last_hidden_state[:, -1]
    n_tokens = attention.sum(-1)  # real tokens so far per row: the next position id
    passes = 1

    nodes = [first_node] * rows
    token_ids = [list(prefix) for _ in range(rows)]
    logprobs: list[list[float]] = [[] for _ in range(rows)]
    entropies: list[list[float]] = [[] for _ in range(rows)]
    if first_node == grammar.final:  # cannot happen with the template, but would loop forever
        raise RuntimeError("the action grammar has no decision")

    while True:
        active = [r for r in range(rows) if nodes[r] != grammar.final]
        if not active:
            break
        active_nodes = [nodes[r] for r in active]
        ids, mask = allowed_index(grammar, active_nodes, device)
        logits = policy.lm_head(last_hidden[active])
        log_probs = constrained_log_probs(logits, ids, mask, policy.decision_temperature(active_nodes))
        row_entropy = entropy(log_probs, mask).cpu()
        log_probs_cpu, ids_cpu, mask_cpu = log_probs.cpu(), ids.cpu(), mask.cpu()  # one device sync per pass
        chunks: dict[int, list[int]] = {}
        for i, r in enumerate(active):
            choice = _choose(log_probs_cpu[i][mask_cpu[i]], settings[r], generators[r])
            token = int(ids_cpu[i, choice])
            logprobs[r].append(float(log_probs_cpu[i, choice]))
            entropies[r].append(float(row_entropy[i]))
            forced, nodes[r] = grammar.forced_path(grammar.step(nodes[r], token))
            chunks[r] = [token, *forced]
            token_ids[r] += chunks[r]

        width = max(len(c) for c in chunks.values())
        step_ids = torch.full((rows, width), pad_id, dtype=torch.long)
        step_mask = torch.zeros((rows, width), dtype=torch.long)
        for r, chunk in chunks.items():
            step_ids[r, : len(chunk)] = torch.tensor(chunk)
            step_mask[r, : len(chunk)] = 1
        step_mask = step_mask.to(device)
        attention = torch.cat([attention, step_mask], dim=1)
        step_positions = n_tokens[:, None] + torch.arange(width, device=device)[None, :]
        out = policy.decoder(
            input_ids=step_ids.to(device),
            attention_mask=attention,
            position_ids=step_positions,
            past_key_values=cache,
            use_cache=True,
        )
        cache, passes = out.past_key_values, passes + 1
        n_tokens = n_tokens + step_mask.sum(-1)
        last_index = torch.tensor([max(len(chunks.get(r, ())), 1) - 1 for r in range(rows)], device=device)
        step_last = out.last_hidden_state[torch.arange(rows, device=device), last_index]
        active_rows = torch.tensor(active, device=device)
        last_hidden = last_hidden.index_copy(0, active_rows, step_last[active_rows])

    decoded = []
    for r in range(rows):
        action_ids = tuple(token_ids[r])
        delta = grammar.action_of(action_ids)
        text = format_action(delta)
        if parse_action(text) != delta:  # the grammar guarantees it; a failure here is a bug, not bad luck
            raise RuntimeError(f"decoded action {text!r} does not parse back to {delta}")
        decoded.append(
            DecodedAction(
                delta=delta,
                text=text,
                token_ids=action_ids,
                token_logprobs=tuple(logprobs[r]),
                entropies=tuple(entropies[r]),
                value=float(values[r]),
                forward_passes=passes,
            )
        )
    return decoded
