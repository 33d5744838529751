"""Done probability from the digit logits: the release's "expected digit" rule.

At a digit position the release keeps the candidate digits whose probability is above 0.1 x the
most likely one and averages them weighted by probability. The done answer is the single digit
``0`` or ``1``, so only those two digits are candidates and the expected digit is a probability in
[0, 1]. (The release prints the expected digit with one decimal before comparing it with the
threshold; the probability is kept unrounded here, which can only differ within 0.05 of the
threshold.) Token ids are derived from the vocabulary (every token that decodes to the digit, with or
without a leading space), never hard-coded: real tokenizers spell digits differently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A candidate digit must be at least this share of the most likely digit's probability.
CANDIDATE_RATIO = 0.1


def expected_digit(digit_probs: Sequence[float], digits: Sequence[int] | None = None) -> float:
    """Probability-weighted mean of the candidate digits (those above 0.1 x the top one).

    ``digit_probs[k]`` is the probability of ``digits[k]`` (default 0..len-1). Raises when all are
    zero: there is then no digit answer to read.
    """
    probs = np.asarray(digit_probs, dtype=np.float64)
    values = np.arange(len(probs), dtype=np.float64) if digits is None else np.asarray(digits, dtype=np.float64)
    if probs.ndim != 1 or probs.shape != values.shape:
        raise ValueError(f"digit_probs and digits must be equal-length vectors, got {probs.shape} and {values.shape}")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError(f"digit probabilities must be finite and >= 0, got {probs.tolist()}")
    top = probs.max(initial=0.0)
    if top <= 0:
        raise ValueError("no probability on any digit")
    keep = probs > CANDIDATE_RATIO * top
    return float((values[keep] * probs[keep]).sum() / probs[keep].sum())


def digit_token_ids(tokenizer, digits: Sequence[int] = (0, 1)) -> dict[int, list[int]]:
    """For each digit, every vocabulary id whose token decodes to that digit (leading space allowed)."""
    wanted = {str(d): d for d in digits}
    ids: dict[int, list[int]] = {d: [] for d in digits}
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id]).strip()
        if text in wanted:
            ids[wanted[text]].append(token_id)
    missing = [d for d, found in ids.items() if not found]
    if missing:
        raise ValueError(f"the tokenizer has no token for digit(s) {missing}")
    return ids


def digit_probs_from_logits(logits: np.ndarray, digit_ids: dict[int, list[int]]) -> np.ndarray:
    """(batch, vocab) raw logits -> (batch, n_digits) probabilities (softmax over the whole vocabulary)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    return np.stack([probs[:, ids].sum(axis=-1) for ids in digit_ids.values()], axis=-1)
