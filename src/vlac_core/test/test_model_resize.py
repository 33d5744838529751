"""A checkpoint resized to another frame size computes what the original computes on such frames, and the rest of
the stack sees an ordinary checkpoint of that size (processor, image tokens, generation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vlac_core import prompts
from vlac_core.model import TinyModelSpec, build_tiny_model, encode, greedy_generate, load_model
from vlac_core.model.processor import pixel_values
from vlac_core.model.resize import RESIZED_FROM_FILE, image_seq_length_for, resize_checkpoint


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    spec = TinyModelSpec(image_size_px=32, vision_hidden=16, vision_layers=1, text_hidden=32, text_layers=1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model32", spec)


def _pixels(loaded, size_px: int) -> torch.Tensor:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (size_px, size_px, 3), dtype=np.uint8) for _ in range(2)]
    image_processor = loaded.processor.image_processor
    return pixel_values(frames, size_px, image_processor.image_mean, image_processor.image_std)


def test_the_resized_model_sees_a_larger_frame_as_the_original_does_with_its_embeddings_interpolated(small, tmp_path):
    original = load_model(small, device="cpu", dtype="fp32")
    resized = load_model(resize_checkpoint(small, tmp_path / "model48", 48), device="cpu", dtype="fp32")
    assert (original.image_size_px, original.image_seq_length) == (32, 4)
    assert (resized.image_size_px, resized.image_seq_length) == (48, 9)  # a 6 x 6 patch grid, pixel-shuffled
    pixels = _pixels(original, 48)
    with torch.no_grad():
        ours = resized.model.model.get_image_features(pixel_values=pixels)
        theirs = original.model.model.get_image_features(pixel_values=pixels)  # transformers interpolates on the fly
    ours = getattr(ours, "pooler_output", ours)
    theirs = getattr(theirs, "pooler_output", theirs)
    torch.testing.assert_close(ours, theirs)
    rest = {k: v for k, v in original.model.state_dict().items() if not k.endswith("position_embeddings")}
    for key, value in rest.items():  # every other weight is the original's
        torch.testing.assert_close(resized.model.state_dict()[key], value)
    record = json.loads((tmp_path / "model48" / RESIZED_FROM_FILE).read_text())
    assert record == {"source": str(small), "source_image_size_px": 32, "image_size_px": 48}


def test_a_resized_checkpoint_answers_prompts_with_its_frames(small, tmp_path):
    resized = load_model(resize_checkpoint(small, tmp_path / "model64", 64), device="cpu", dtype="fp32")
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(2)]
    batch = encode(resized, [prompts.pair_progress_prompt("pick up the bowl")], [frames])
    assert batch["pixel_values"].shape[-2:] == (64, 64)
    assert int((batch["input_ids"] == resized.processor.image_token_id).sum()) == 2 * 16
    assert len(greedy_generate(resized, batch, max_new_tokens=3).texts) == 1


@pytest.mark.parametrize("size_px", [40, 36, 0])
def test_a_size_the_patch_grid_cannot_take_is_refused_naming_it(small, tmp_path, size_px):
    with pytest.raises(ValueError, match=rf"image_size_px: {size_px} px is not a whole grid of 8 px patches"):
        resize_checkpoint(small, tmp_path / "bad", size_px)
    assert not (tmp_path / "bad").exists()
    assert image_seq_length_for(96, 8, 0.5) == 36
