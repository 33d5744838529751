"""Loading, saving, device/dtype choice and batched decoding of tiny InternVL models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from vlac_core import prompts
from vlac_core.model import (
    DamagedCheckpointError,
    ModelLoadError,
    VlacInternVLProcessor,
    build_tiny_model,
    encode,
    greedy_generate,
    load_model,
    resolve_device,
    resolve_dtype,
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load_model(tiny_dir)


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(n)]


def test_auto_device_and_dtype_on_this_machine(loaded):
    expect_cuda = torch.cuda.is_available()
    assert loaded.device.type == ("cuda" if expect_cuda else "cpu")
    assert loaded.dtype == (torch.bfloat16 if expect_cuda else torch.float32)
    assert next(loaded.model.parameters()).dtype == loaded.dtype
    assert isinstance(loaded.processor, VlacInternVLProcessor)


def test_device_and_dtype_are_overridable_and_checked():
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype(None, torch.device("cuda")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='int8'"):
        resolve_dtype("int8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_save_and_load_round_trip_is_exact(tiny_dir, loaded, tmp_path):
    loaded.model.save_pretrained(tmp_path)
    loaded.processor.save_pretrained(tmp_path)
    again = load_model(tmp_path, device="cpu", dtype="float32")
    contents = [prompts.pair_progress_prompt("fold the towel")]
    a, b = encode(loaded, contents, [_images(2)]), encode(again, contents, [_images(2)])
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["pixel_values"], b["pixel_values"])
    with torch.inference_mode():
        assert torch.equal(loaded.model(**a).logits, again.model(**b).logits)


def test_bf16_override_loads_and_runs(tiny_dir):
    bf16 = load_model(tiny_dir, device="cpu", dtype="bfloat16")
    batch = encode(bf16, [prompts.done_prompt("x")], [_images(1)])
    assert batch["pixel_values"].dtype == torch.bfloat16
    assert len(greedy_generate(bf16, batch, max_new_tokens=2).token_ids[0]) <= 2


def test_batched_greedy_decoding_matches_one_by_one(loaded):
    contents = [prompts.pair_progress_prompt("fold the towel"), prompts.done_prompt("pick up the red cube")]
    images = [_images(2, seed=1), _images(1, seed=2)]
    batched = greedy_generate(loaded, encode(loaded, contents, images), max_new_tokens=4, return_logits=True)
    for i in range(2):
        single = greedy_generate(loaded, encode(loaded, contents[i : i + 1], images[i : i + 1]), 4, True)
        assert single.token_ids[0] == batched.token_ids[i]
        assert single.texts[0] == batched.texts[i]
        n = len(single.token_ids[0])
        torch.testing.assert_close(single.logits[0, :n], batched.logits[i, :n], atol=1e-4, rtol=1e-4)


def test_checkpoint_without_weights_is_a_clear_error(tiny_dir, tmp_path):
    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelLoadError, match=r"no weights \(\*\.safetensors\)"):
        load_model(tmp_path)


def test_missing_dir_and_missing_config_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not a directory"):
        load_model(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "incomplete metadata, file not fully covered"),
        (lambda data: np.random.default_rng(3).bytes(len(data)), "Error while deserializing header"),
        (lambda data: b"", "Error while deserializing header"),
    ],
    ids=["truncated", "random", "empty"],
)
def test_damaged_weights_file_is_one_error_naming_the_file(tiny_dir, tmp_path, damage, reason):
    copy = shutil.copytree(tiny_dir, tmp_path / "model")
    weights = copy / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(DamagedCheckpointError, match=rf"^{weights}: not a complete safetensors file \(.*{reason}"):
        load_model(copy)


def test_empty_checkpoint_folder_says_it_is_empty(tmp_path):
    with pytest.raises(ModelLoadError, match=r"no config\.json \(the folder is empty\)"):
        load_model(tmp_path)


def test_checkpoint_check_imports_neither_torch_nor_transformers(tmp_path):
    code = (
        "import sys\n"
        "from vlac_core.model import ModelLoadError, check_checkpoint_dir\n"
        f"try:\n    check_checkpoint_dir({str(tmp_path)!r})\nexcept ModelLoadError:\n    pass\n"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_release_layout_checkpoint_points_to_the_converter(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "internvl_chat"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="convert_internvl_chat"):
        load_model(tmp_path)


def test_checkpoint_saved_by_transformers_internvl_processor_loads_with_one_tile(tiny_dir, tmp_path):
    """An InternVL checkpoint in transformers' format names InternVLProcessor, the torchvision image
    processor and dynamic tiling; it must load here (no torchvision) with the release's one-tile layout."""
    shutil.copytree(tiny_dir, tmp_path / "hf", dirs_exist_ok=True)
    config_file = tmp_path / "hf" / "processor_config.json"
    config = json.loads(config_file.read_text())
    config["processor_class"] = "InternVLProcessor"
    config["image_processor"].update(
        {"image_processor_type": "GotOcr2ImageProcessorFast", "crop_to_patches": True, "max_patches": 12}
    )
    config_file.write_text(json.dumps(config))
    loaded = load_model(tmp_path / "hf")
    assert isinstance(loaded.processor, VlacInternVLProcessor)
    assert loaded.processor.image_processor.crop_to_patches is False
    batch = encode(loaded, [prompts.done_prompt("x")], [_images(1)])
    assert batch["pixel_values"].shape == (1, 3, 64, 64)
    assert int((batch["input_ids"] == loaded.processor.image_token_id).sum()) == 16
