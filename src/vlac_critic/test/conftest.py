"""Tiny models for the critic tests, built once per session (offline, ~0.7 M parameters).

``random_model_dir``: random weights, answers are gibberish (the unparsable path).
``progress_model_dir``: the same model taught to answer every prompt with ``25``, and
``done_model_dir`` taught to answer ``1`` — real weights producing real, parsable answers, so the
parsing, value and CLI paths run end to end without any stand-in for the model. (The progress
model answers ``25`` to the done prompt too: that is the unparsable done path.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from critic_testing import frames

from vlac_core import prompts
from vlac_core.model import build_tiny_model, encode, load_model

PAIR_ANSWER = "25"
DONE_ANSWER = "1"


def teach(
    model_dir, answer: str, first_token_probs: dict[str, float] | None = None, n_samples: int = 4, steps: int = 300,
    seed: int = 0,
) -> None:  # fmt: skip
    """Teach the tiny model at ``model_dir`` to answer ``answer`` to the critic prompts, in place.

    ``first_token_probs`` (e.g. {"1": 0.7, "0": 0.3}) makes the first answer token a spread
    distribution instead of a sure one, so the done probability is read from real, uncertain logits.

    Only the output projection is trained, on hidden states computed once with the rest frozen:
    a linear fit that takes a second instead of a minute of full fine-tuning on 2 shared cores.
    """
    torch.manual_seed(seed)
    loaded = load_model(model_dir, device="cpu", dtype="float32")
    model, tok = loaded.model, loaded.tokenizer
    rng = np.random.default_rng(seed)
    tasks = ["pick up the red cube", "open the drawer", "fold the towel", "put the bowl in the sink"]
    features, targets = [], []
    for i in range(n_samples):
        task = tasks[i % len(tasks)]
        for content, n_images in (
            (prompts.pair_progress_prompt(task), 2),
            (prompts.in_context_progress_prompt(task, 3), 6),
            (prompts.done_prompt(task), 1),
        ):
            images = [frames(n_images, seed=int(rng.integers(1 << 30)), size=(32 + 8 * i, 48))]
            batch = encode(loaded, [content], images)
            answer_ids = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
            ids = torch.cat([batch["input_ids"], torch.tensor([answer_ids[:-1]])], dim=1)
            with torch.no_grad():
                hidden = model(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    pixel_values=batch["pixel_values"],
                    output_hidden_states=True,
                ).hidden_states[-1][0]
            n = len(answer_ids)
            features.append(hidden[-n:])
            target = torch.nn.functional.one_hot(torch.tensor(answer_ids), len(tok)).float()
            if first_token_probs:
                target[0] = 0.0
                for token, prob in first_token_probs.items():
                    target[0, tok.convert_tokens_to_ids(token)] = prob
            targets.append(target)
    features, targets = torch.cat(features), torch.cat(targets)
    head = model.lm_head
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(head(features), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(model_dir)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("critic_models") / "random")


@pytest.fixture(scope="session")
def progress_model_dir(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("critic_models") / "progress")
    teach(path, PAIR_ANSWER)
    return path


@pytest.fixture(scope="session")
def done_model_dir(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("critic_models") / "done")
    teach(path, DONE_ANSWER)
    return path


@pytest.fixture(scope="session")
def unsure_done_model_dir(tmp_path_factory):
    """Answers "1" greedily, with P("1") = 0.7 and P("0") = 0.3 at the first answer token."""
    path = build_tiny_model(tmp_path_factory.mktemp("critic_models") / "unsure_done")
    teach(path, DONE_ANSWER, first_token_probs={"1": 0.7, "0": 0.3}, steps=600)
    return path
