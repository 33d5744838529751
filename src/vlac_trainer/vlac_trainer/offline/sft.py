"""Supervised fine-tuning batches: the release's chat layout with the answer appended, loss on the answer only.

The prompt tokens are exactly what inference feeds (``VlacInternVLProcessor.build_text``: BOS, system,
user CONTENT with expanded images, assistant header); the answer's tokens and the end-of-turn token
follow. Only those are supervised, so the model is never trained to predict the prompt (which would
spend its tiny capacity on the fixed text) and learns to stop after the answer. The prompt and the
answer are tokenized separately and concatenated, so the answer starts on a token boundary exactly
where generation starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlac_core.model import LoadedModel, pixel_values

#: Label of positions the loss ignores (torch's cross-entropy default).
IGNORE_INDEX = -100


@dataclass
class AnswerBatch:
    """Right-padded token ids, attention mask, labels (IGNORE_INDEX outside answers), pixel values."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor | None

    @property
    def answer_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


def answer_batch(
    loaded: LoadedModel, contents: Sequence[str], images: Sequence[Sequence[np.ndarray]], answers: Sequence[str]
) -> AnswerBatch:
    """Tokenize (CONTENT, images, answer) triples into a training batch on the model's device."""
    if not (len(contents) == len(images) == len(answers)) or not contents:
        raise ValueError(
            f"expected equal, non-zero counts, got {len(contents)} contents, {len(images)} image lists, "
            f"{len(answers)} answers"
        )
    processor, tok = loaded.processor, loaded.tokenizer
    rows: list[tuple[list[int], list[int]]] = []
    for n, (content, ims, answer) in enumerate(zip(contents, images, answers, strict=True)):
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"answers[{n}]: expected a non-empty answer text, got {answer!r}")
        prompt_ids = tok(processor.build_text(content, len(ims)), add_special_tokens=False)["input_ids"]
        answer_ids = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
        rows.append((prompt_ids, answer_ids))
    width = max(len(p) + len(a) for p, a in rows)
    input_ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for r, (prompt_ids, answer_ids) in enumerate(rows):
        length = len(prompt_ids) + len(answer_ids)
        input_ids[r, :length] = torch.tensor(prompt_ids + answer_ids)
        attention[r, :length] = 1
        labels[r, len(prompt_ids) : length] = torch.tensor(answer_ids)
    flat = [im for ims in images for im in ims]
    pixels = None
    if flat:
        image_processor = processor.image_processor
        pixels = pixel_values(flat, loaded.image_size_px, image_processor.image_mean, image_processor.image_std)
        pixels = pixels.to(loaded.device, loaded.dtype)
    device = loaded.device
    return AnswerBatch(input_ids.to(device), attention.to(device), labels.to(device), pixels)


def answer_loss(model: torch.nn.Module, batch: AnswerBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy over answer tokens (next-token prediction) and the answer-token accuracy.

    The vocabulary projection runs only at the positions that predict an answer token: the prompt is
    most of every sequence and its logits would be thrown away.
    """
    hidden = model.model(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask, pixel_values=batch.pixel_values
    ).last_hidden_state
    targets = batch.labels[:, 1:]
    rows, cols = torch.nonzero(targets != IGNORE_INDEX, as_tuple=True)
    logits = model.lm_head(hidden[rows, cols]).float()  # hidden at position p predicts token p + 1
    wanted = targets[rows, cols]
    loss = torch.nn.functional.cross_entropy(logits, wanted)
    with torch.no_grad():
        accuracy = float((logits.argmax(-1) == wanted).float().mean())
    return loss, {"token_accuracy": accuracy}
