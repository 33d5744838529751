"""The internvl_chat -> transformers converter, on a tiny checkpoint written in the release's layout."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vlac_core import prompts
from vlac_core.model import ModelLoadError, build_tiny_model, encode, load_model
from vlac_core.model.convert_internvl_chat import (
    convert_checkpoint,
    convert_config,
    convert_state_dict,
    split_internlm2_wqkv,
)


def internlm2_qkv(x: torch.Tensor, wqkv: torch.Tensor, num_heads: int, num_kv_heads: int, head_dim: int):
    """q, k, v activations exactly as InternLM2Attention.forward computes them from its fused wqkv."""
    groups = num_heads // num_kv_heads
    b, n, _ = x.shape
    qkv = (x @ wqkv.T).reshape(b, n, num_kv_heads, 2 + groups, head_dim)  # "b q (h gs d) -> b q h gs d"
    q = qkv[..., :groups, :].reshape(b, n, num_kv_heads * groups, head_dim)  # "b q h gs d -> b q (h gs) d"
    return q, qkv[..., -2, :], qkv[..., -1, :]


def fuse_internlm2_wqkv(q, k, v, num_heads: int, num_kv_heads: int) -> torch.Tensor:
    """Inverse of the split, to write a tiny checkpoint in the release's layout."""
    groups, hidden = num_heads // num_kv_heads, q.shape[1]
    head_dim = q.shape[0] // num_heads
    blocks = torch.cat(
        [
            q.reshape(num_kv_heads, groups, head_dim, hidden),
            k.reshape(num_kv_heads, 1, head_dim, hidden),
            v.reshape(num_kv_heads, 1, head_dim, hidden),
        ],
        dim=1,
    )
    return blocks.reshape(-1, hidden)


def test_wqkv_split_reproduces_internlm2_heads():
    torch.manual_seed(0)
    heads, kv_heads, head_dim, hidden = 8, 2, 4, 32
    wqkv = torch.randn(kv_heads * (heads // kv_heads + 2) * head_dim, hidden)
    x = torch.randn(2, 5, hidden)
    q_ref, k_ref, v_ref = internlm2_qkv(x, wqkv, heads, kv_heads, head_dim)
    q_w, k_w, v_w = split_internlm2_wqkv(wqkv, heads, kv_heads)
    torch.testing.assert_close((x @ q_w.T).reshape(2, 5, heads, head_dim), q_ref)
    torch.testing.assert_close((x @ k_w.T).reshape(2, 5, kv_heads, head_dim), k_ref)
    torch.testing.assert_close((x @ v_w.T).reshape(2, 5, kv_heads, head_dim), v_ref)
    # Llama's GQA pairs query head i with kv head i // groups, as InternLM2 does
    torch.testing.assert_close(q_ref[:, :, 5], (x @ q_w.T).reshape(2, 5, heads, head_dim)[:, :, 5])


def to_release_layout(native_dir, out_dir) -> None:
    """Write the tiny native model as an internvl_chat checkpoint (InternViT + InternLM2 key names)."""
    native = load_model(native_dir, device="cpu", dtype="float32")
    cfg = native.model.config
    text, vision = cfg.text_config, cfg.vision_config
    state = native.model.state_dict()
    out: dict[str, torch.Tensor] = {}
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = re.match(r"model\.language_model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.weight", key)
        if m:
            layers.setdefault(int(m.group(1)), {})[m.group(2)] = value
            continue
        m = re.match(r"model\.vision_tower\.encoder\.layer\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)", key)
        if m:
            layers.setdefault(-1 - int(m.group(1)), {})[m.group(2) + m.group(3)] = value
            continue
        new = key
        for a, b in [
            ("model.vision_tower.", "vision_model."), (".encoder.layer.", ".encoder.layers."),
            ("embeddings.cls_token", "embeddings.class_embedding"),
            ("embeddings.position_embeddings", "embeddings.position_embedding"),
            ("embeddings.patch_embeddings.projection.", "embeddings.patch_embedding."),
            (".lambda_1", ".ls1"), (".lambda_2", ".ls2"), (".attention.projection_layer.", ".attn.proj."),
            (".layernorm_before.", ".norm1."), (".layernorm_after.", ".norm2."),
            ("model.multi_modal_projector.layer_norm.", "mlp1.0."),
            ("model.multi_modal_projector.linear_1.", "mlp1.1."),
            ("model.multi_modal_projector.linear_2.", "mlp1.3."),
            ("model.language_model.", "language_model.model."), ("lm_head.", "language_model.output."),
            (".embed_tokens.", ".tok_embeddings."), (".self_attn.o_proj.", ".attention.wo."),
            (".mlp.gate_proj.", ".feed_forward.w1."), (".mlp.up_proj.", ".feed_forward.w3."),
            (".mlp.down_proj.", ".feed_forward.w2."), (".input_layernorm.", ".attention_norm."),
            (".post_attention_layernorm.", ".ffn_norm."),
        ]:  # fmt: skip
            new = new.replace(a, b)
        out[new] = value
    for index, parts in layers.items():
        if index >= 0:
            wqkv = fuse_internlm2_wqkv(
                parts["q"], parts["k"], parts["v"], text.num_attention_heads, text.num_key_value_heads
            )
            out[f"language_model.model.layers.{index}.attention.wqkv.weight"] = wqkv
        else:
            prefix = f"vision_model.encoder.layers.{-1 - index}.attn.qkv."
            out[prefix + "weight"] = torch.cat([parts["qweight"], parts["kweight"], parts["vweight"]])
            out[prefix + "bias"] = torch.cat([parts["qbias"], parts["kbias"], parts["vbias"]])
    out_dir.mkdir()
    save_file({k: v.contiguous() for k, v in out.items()}, str(out_dir / "model.safetensors"))
    chat_config = {
        "model_type": "internvl_chat",
        "architectures": ["InternVLChatModel"],
        "downsample_ratio": 0.5,
        "force_image_size": vision.image_size[0],
        "select_layer": -1,
        "ps_version": "v2",
        "template": "internvl2_5",
        "vision_config": {
            "model_type": "intern_vit_6b", "hidden_size": vision.hidden_size,
            "num_hidden_layers": vision.num_hidden_layers, "num_attention_heads": vision.num_attention_heads,
            "intermediate_size": vision.intermediate_size, "image_size": vision.image_size[0],
            "patch_size": vision.patch_size[0], "qkv_bias": True, "qk_normalization": False,
            "norm_type": "layer_norm", "layer_norm_eps": vision.layer_norm_eps, "hidden_act": "gelu",
        },
        "llm_config": {
            "model_type": "internlm2", "architectures": ["InternLM2ForCausalLM"], "vocab_size": text.vocab_size,
            "hidden_size": text.hidden_size, "intermediate_size": text.intermediate_size,
            "num_hidden_layers": text.num_hidden_layers, "num_attention_heads": text.num_attention_heads,
            "num_key_value_heads": text.num_key_value_heads, "max_position_embeddings": 4096,
            "rms_norm_eps": text.rms_norm_eps, "rope_theta": 10000.0,
            "rope_scaling": {"type": "dynamic", "factor": 2.0}, "bias": False, "tie_word_embeddings": False,
            "bos_token_id": text.bos_token_id, "eos_token_id": [text.eos_token_id], "pad_token_id": text.pad_token_id,
        },
    }  # fmt: skip
    (out_dir / "config.json").write_text(json.dumps(chat_config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(native_dir / name, out_dir / name)


@pytest.fixture(scope="module")
def native_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("convert") / "native")


@pytest.fixture(scope="module")
def release_dir(native_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("convert") / "release"
    to_release_layout(native_dir, path)
    return path


def test_release_layout_checkpoint_is_refused_by_the_loader(release_dir):
    with pytest.raises(ModelLoadError, match="convert_internvl_chat"):
        load_model(release_dir)


def test_converted_checkpoint_computes_what_the_original_computes(native_dir, release_dir, tmp_path):
    assert any(".attention.wqkv." in k for k in load_file(str(release_dir / "model.safetensors")))
    converted = load_model(convert_checkpoint(release_dir, tmp_path / "hf", dtype="fp32"))
    original = load_model(native_dir)
    rng = np.random.default_rng(0)
    images = [[rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(2)]]
    contents = [prompts.pair_progress_prompt("fold the towel")]
    a, b = encode(original, contents, images), encode(converted, contents, images)
    assert torch.equal(a["input_ids"], b["input_ids"])
    with torch.inference_mode():
        torch.testing.assert_close(converted.model(**b).logits, original.model(**a).logits, atol=1e-5, rtol=1e-5)
    assert converted.model.config.text_config.rope_parameters["rope_type"] == "dynamic"


def test_conversion_saves_bf16_by_default(release_dir, tmp_path):
    out = convert_checkpoint(release_dir, tmp_path / "bf16")
    weights = load_file(str(out / "model.safetensors"))
    assert {v.dtype for v in weights.values()} == {torch.bfloat16}


def test_conversion_errors_name_the_problem(release_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    shutil.copy(release_dir / "config.json", tmp_path / "empty" / "config.json")
    with pytest.raises(ModelLoadError, match="no weights"):
        convert_checkpoint(tmp_path / "empty", tmp_path / "out")
    chat_config = json.loads((release_dir / "config.json").read_text())
    with pytest.raises(ValueError, match=r"unexpected weight .extra\.weight."):
        convert_state_dict({"extra.weight": torch.zeros(1)}, chat_config)
    # A frame size the patch grid does not divide would have been truncated into a wrong image-token count.
    patch_px = chat_config["vision_config"]["patch_size"]
    with pytest.raises(ValueError, match=rf"image_size_px: {patch_px * 4 + 1} px is not a whole grid of {patch_px} px"):
        convert_config({**chat_config, "force_image_size": patch_px * 4 + 1}, image_token_id=1)
