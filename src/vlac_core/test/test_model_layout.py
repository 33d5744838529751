"""Pins the release's prompt and token layout on a tiny model (shared VLAC_REFERENCE.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vlac_core import prompts
from vlac_core.model import TinyModelSpec, build_tiny_processor, pixel_values, squash_resize
from vlac_core.model.chat import build_prompt, insert_missing_placeholders

SPEC = TinyModelSpec()
N_CTX = SPEC.image_seq_length  # 16 for 64 px at patch 8


@pytest.fixture(scope="module")
def processor():
    return build_tiny_processor(SPEC)


def _image(seed: int, h: int = 48, w: int = 80) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _ids(processor, content, images):
    return processor(text=[content], images=[images])["input_ids"][0].tolist()


def test_image_seq_length_is_patches_pixel_shuffled():
    assert N_CTX == (64 // 8) ** 2 // 4 == 16
    with pytest.raises(ValueError, match="even integer"):
        TinyModelSpec(image_size_px=72, patch_size_px=8)


def test_chat_layout_text_is_the_release_template_character_for_character():
    text = build_prompt(prompts.pair_progress_prompt("fold the towel"), n_images=2, image_seq_length=2)
    image = "<img><IMG_CONTEXT><IMG_CONTEXT></img>\n"
    expected_content = prompts.pair_progress_prompt("fold the towel").replace("<image>", image)
    assert text == (
        "<s><|im_start|>system\n" + prompts.SYSTEM_PROMPT + "<|im_end|>\n"
        "<|im_start|>user\n" + expected_content + "<|im_end|>\n<|im_start|>assistant\n"
    )
    # the newline after </img> comes on top of the one already following the placeholder
    assert "Image-1: " + image + "\nImage-2: " + image + "\nCompare two images" in text


def test_missing_placeholders_go_at_the_very_front_of_content():
    done = prompts.done_prompt("open the drawer")
    assert insert_missing_placeholders(done, 1) == "<image>" + done
    assert insert_missing_placeholders("Image-1: <image>\nx", 3) == "<image><image>Image-1: <image>\nx"
    assert insert_missing_placeholders(done, 0) == done
    with pytest.raises(ValueError, match="2 <image> placeholders but only 1 images"):
        insert_missing_placeholders("<image><image>", 1)


def test_tokens_start_with_bos_then_system_turn(processor):
    tok = processor.tokenizer
    ids = _ids(processor, prompts.done_prompt("pick up the red cube"), [_image(0)])
    assert ids[0] == tok.bos_token_id
    assert ids.count(tok.bos_token_id) == 1
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    assert ids[1] == im_start
    text = tok.decode(ids)
    assert text.startswith("<s><|im_start|>system\n" + prompts.SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_each_image_expands_to_img_context_tokens_and_a_newline(processor):
    tok = processor.tokenizer
    newline = tok.convert_tokens_to_ids("\n")
    images = [_image(i) for i in range(2)]
    ids = _ids(processor, prompts.pair_progress_prompt("fold the towel"), images)
    assert ids.count(processor.image_token_id) == 2 * N_CTX
    assert ids.count(processor.start_image_token_id) == 2
    ends = [i for i, t in enumerate(ids) if t == processor.end_image_token_id]
    assert len(ends) == 2
    for end in ends:  # </img>, the added newline, the prompt's own newline
        assert ids[end + 1 : end + 3] == [newline, newline]
        start = ids.index(processor.start_image_token_id, end - N_CTX - 1)
        assert ids[start + 1 : end] == [processor.image_token_id] * N_CTX


def test_done_prompt_image_is_inserted_before_its_text(processor):
    ids = _ids(processor, prompts.done_prompt("fold the towel"), [_image(3)])
    text = processor.tokenizer.decode(ids)
    user = text.split("<|im_start|>user\n", 1)[1]
    # one newline: the expansion's; the inserted placeholder brings none of its own
    assert user.startswith("<img>" + "<IMG_CONTEXT>" * N_CTX + "</img>\nThe 1 means yes")


def test_in_context_prompt_carries_reference_start_and_pair_images(processor):
    n_ref = 6
    images = [_image(i) for i in range(n_ref + 3)]
    batch = processor(text=[prompts.in_context_progress_prompt("fold the towel", n_ref)], images=[images])
    ids = batch["input_ids"][0].tolist()
    assert ids.count(processor.image_token_id) == (n_ref + 3) * N_CTX
    assert batch["pixel_values"].shape == (n_ref + 3, 3, 64, 64)


def test_batch_is_left_padded_and_images_kept_in_sample_order(processor):
    a, b, c = _image(0), _image(1), _image(2)
    batch = processor(
        text=[prompts.pair_progress_prompt("fold the towel"), prompts.done_prompt("x")], images=[[a, b], [c]]
    )
    mask = batch["attention_mask"]
    assert mask[0].all()
    n_pad = int((mask[1] == 0).sum())
    assert n_pad > 0 and not mask[1, :n_pad].any() and mask[1, n_pad:].all()
    assert (batch["input_ids"][1, :n_pad] == processor.tokenizer.pad_token_id).all()
    assert batch["input_ids"][1, n_pad] == processor.tokenizer.bos_token_id
    expected = pixel_values([a, b, c], 64)
    assert np.array_equal(batch["pixel_values"].numpy(), expected.numpy())


def test_images_are_squash_resized_with_lanczos_not_cropped():
    image = _image(5, h=30, w=90)
    resized = squash_resize(image, 64)
    assert resized.shape == (64, 64, 3)
    ref = np.asarray(Image.fromarray(image).resize((64, 64), Image.Resampling.LANCZOS))
    assert np.array_equal(resized, ref)


def test_pixel_values_match_the_image_processor_normalisation(processor):
    image = _image(6, h=64, w=64)
    ours = pixel_values([image], 64).numpy()
    theirs = np.asarray(processor.image_processor([image], return_tensors="np")["pixel_values"])
    assert theirs.shape == ours.shape == (1, 3, 64, 64)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((8, 8, 3), dtype=np.float32), "dtype uint8"),
        (np.zeros((8, 8), dtype=np.uint8), "HxWx3"),
        (np.zeros((0, 8, 3), dtype=np.uint8), "empty image"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_images_are_rejected_naming_the_image(processor, image, match):
    with pytest.raises(ValueError, match=match) as info:
        processor(text=["x"], images=[[image]])
    assert "images[0]" in str(info.value)


def test_tokenizer_splits_digits_minus_and_whitespace(processor):
    tok = processor.tokenizer
    pieces = tok.convert_ids_to_tokens(tok("x: -47mm", add_special_tokens=False)["input_ids"])
    assert pieces == ["x:", " ", "-", "4", "7", "mm"]
    for token in ("<img>", "</img>", "<IMG_CONTEXT>", "<video>", "<|im_start|>", "<|im_end|>", "<s>"):
        ids = tok(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids)[0] == token
    text = "-12.5"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_a_repeated_image_object_is_resized_once_with_the_same_result():
    a, b = _image(7), _image(8)
    repeated = pixel_values([a, b, a, a], 64)
    separate = pixel_values([a, b, a.copy(), a.copy()], 64)
    assert torch.equal(repeated, separate)
    assert torch.equal(repeated[0], repeated[3])
