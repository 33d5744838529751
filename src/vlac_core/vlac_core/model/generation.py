"""Batched encoding and greedy decoding on a loaded model (shared by the critic and the actor).

Greedy is what the release uses for the critic (temperature 0.5 with top_k 1 is greedy). The raw
logits of every decoded step are returned on request: the done probability is read from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import BatchFeature

from vlac_core.prompts import SYSTEM_PROMPT

from .loading import LoadedModel


@dataclass
class GenerationResult:
    """Decoded answers of a batch, in input order.

    ``token_ids[i]`` stop before the first end-of-turn token; ``logits`` is (batch, steps, vocab)
    float32 on cpu (raw, before any processing), present only when asked for.
    """

    texts: list[str]
    token_ids: list[list[int]]
    logits: torch.Tensor | None = None


def encode(
    loaded: LoadedModel,
    contents: Sequence[str],
    images: Sequence[Sequence[np.ndarray]],
    system: str = SYSTEM_PROMPT,
) -> BatchFeature:
    """Tokenize a batch in the release's chat layout and move it to the model's device and dtype."""
    batch = loaded.processor(text=list(contents), images=images, system=system)
    moved = {k: v.to(loaded.device) for k, v in batch.items()}
    if "pixel_values" in moved:
        moved["pixel_values"] = moved["pixel_values"].to(loaded.dtype)
    return BatchFeature(data=moved)


def last_prompt_hidden(loaded: LoadedModel, batch: BatchFeature) -> torch.Tensor:
    """(B, hidden) the decoder's hidden state at each prompt's last token of an ``encode``d batch: what the first
    answer token is read from (the actor's value head and first decision, the critic's done digit). Runs under the
    caller's grad mode."""
    attention = batch["attention_mask"].to(loaded.device)
    hidden = loaded.model.model(  # the multimodal trunk without the vocabulary projection
        input_ids=batch["input_ids"].to(loaded.device),
        pixel_values=batch.get("pixel_values"),
        attention_mask=attention,
        position_ids=(attention.cumsum(-1) - 1).clamp(min=0),
        use_cache=False,
    ).last_hidden_state
    return hidden[:, -1]  # left-padded: the last column is every prompt's last token


@torch.inference_mode()
def greedy_generate(
    loaded: LoadedModel, batch: BatchFeature, max_new_tokens: int, return_logits: bool = False
) -> GenerationResult:
    """Greedy-decode up to ``max_new_tokens`` for every sample of a left-padded batch."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    tok = loaded.tokenizer
    eos_ids = {tok.eos_token_id}
    config_eos = loaded.model.generation_config.eos_token_id
    eos_ids.update(config_eos if isinstance(config_eos, list) else [config_eos] if config_eos is not None else [])
    out = loaded.model.generate(
        **batch,
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=sorted(eos_ids),
        pad_token_id=tok.pad_token_id,
        return_dict_in_generate=True,
        output_logits=return_logits,
    )
    new_ids = out.sequences[:, batch["input_ids"].shape[1] :].tolist()
    token_ids = []
    for ids in new_ids:
        cut = next((i for i, t in enumerate(ids) if t in eos_ids), len(ids))
        token_ids.append(ids[:cut])
    texts = [tok.decode(ids, skip_special_tokens=True) for ids in token_ids]
    logits = torch.stack(out.logits, dim=1).float().cpu() if return_logits else None
    return GenerationResult(texts=texts, token_ids=token_ids, logits=logits)
