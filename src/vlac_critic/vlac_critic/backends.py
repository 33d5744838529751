"""Inference backends of the critic: one interface, torch by default, vLLM on request.

Both build the very same prompt text from ``vlac_core.prompts`` and the model layer's chat layout;
they differ only in who runs the model. A backend answers a batch of (CONTENT, images) with the
greedy answer texts and, when asked, the probability of given digits at the first answer token
(the done probability is read from those).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .done_prob import digit_probs_from_logits, digit_token_ids

BACKENDS = ("torch", "vllm")


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (e.g. vLLM not installed); the message says why."""


@dataclass
class BackendOutput:
    """Answers of one batch, in input order; ``first_digit_probs`` is (batch, n_digits) or None."""

    texts: list[str]
    first_digit_probs: np.ndarray | None = None
    timings_s: dict[str, float] = field(default_factory=dict)  # e.g. preprocess_s, generate_s


class CriticBackend(Protocol):
    """What the critic needs from a model runner."""

    name: str
    image_size_px: int

    def generate(
        self,
        contents: Sequence[str],
        images: Sequence[Sequence[np.ndarray]],
        max_new_tokens: int,
        digits: Sequence[int] | None = None,
    ) -> BackendOutput: ...


class TorchBackend:
    """Runs a :class:`vlac_core.model.LoadedModel` with transformers' ``generate`` (greedy, batched)."""

    name = "torch"

    def __init__(self, loaded) -> None:
        self.loaded = loaded
        self._digit_ids: dict[tuple[int, ...], dict[int, list[int]]] = {}

    @property
    def image_size_px(self) -> int:
        return self.loaded.image_size_px

    def generate(self, contents, images, max_new_tokens, digits=None) -> BackendOutput:
        from vlac_core.model import encode, greedy_generate

        start = time.perf_counter()
        batch = encode(self.loaded, contents, images)
        encoded = time.perf_counter()
        result = greedy_generate(self.loaded, batch, max_new_tokens, return_logits=digits is not None)
        generated = time.perf_counter()
        probs = None
        if digits is not None:
            key = tuple(digits)
            if key not in self._digit_ids:
                self._digit_ids[key] = digit_token_ids(self.loaded.tokenizer, key)
            probs = digit_probs_from_logits(result.logits[:, 0].numpy(), self._digit_ids[key])
        timings = {"preprocess_s": encoded - start, "generate_s": generated - encoded}
        return BackendOutput(texts=result.texts, first_digit_probs=probs, timings_s=timings)


def make_backend(kind: str, checkpoint: str | Path, device: str | None = None, dtype: str | None = None):
    """Load ``checkpoint`` into the named backend ("torch" or "vllm")."""
    if kind == "torch":
        from vlac_core.model import load_model

        return TorchBackend(load_model(checkpoint, device=device, dtype=dtype))
    if kind == "vllm":
        from .vllm_backend import VllmBackend

        return VllmBackend(checkpoint, dtype=dtype)
    raise ValueError(f"backend {kind!r}: expected one of {BACKENDS}")
