"""Convert a released VLAC / InternVL2 checkpoint (``internvl_chat`` custom code) to transformers' format.

Why conversion rather than ``trust_remote_code``: the release's custom code (InternVLChatModel,
InternLM2) is written against older transformers versions and would run code shipped with the
weights; after a one-off conversion the released checkpoints take the very same path as every other
model of the stack (``InternVLForConditionalGeneration``: batched ``generate`` with left padding, the
same processor and prompt layout, bf16 on GPU, vLLM's transformers-format InternVL), and that path
is what the tests exercise.

What changes (weights are copied, never altered numerically):

- InternViT: ``vision_model.*`` -> ``model.vision_tower.*``; the fused ``attn.qkv`` is cut in three
  equal row blocks (q, k, v); ``ls1``/``ls2`` -> ``lambda_1``/``lambda_2``; ``norm1``/``norm2`` ->
  ``layernorm_before``/``layernorm_after``; ``class_embedding`` -> ``cls_token``.
- Projector ``mlp1.{0,1,3}`` -> ``model.multi_modal_projector.{layer_norm,linear_1,linear_2}``.
- InternLM2 -> a Llama decoder (same RMSNorm, SwiGLU, rotary embedding incl. dynamic NTK scaling).
  Its fused ``wqkv`` rows are laid out per key/value head as ``[q_0 .. q_{g-1}, k, v]`` (g query
  heads per kv head, see InternLM2Attention), so query head ``h*g + j`` is row block ``(h, j)``; this
  is the grouping Llama's GQA uses, so the split keeps every head's pairing. ``w1/w3/w2`` ->
  ``gate/up/down_proj``; ``attention_norm``/``ffn_norm`` -> ``input_layernorm``/
  ``post_attention_layernorm``; ``tok_embeddings`` -> ``embed_tokens``; ``output`` -> ``lm_head``.
  A Qwen2 / Llama language model (other InternVL2 sizes) keeps its own layout and only moves.
- Tokenizer: ``tokenizer.json`` when the checkpoint has one; otherwise ``tokenizer.model``
  (sentencepiece) is converted by transformers' Llama converter — this needs the ``sentencepiece``
  package at conversion time and is not exercised in CI (no real tokenizer is shipped). InternVL's
  image tokens (``<img>``, ``</img>``, ``<IMG_CONTEXT>``) must already be in the vocabulary.

Usage: ``python -m vlac_core.model.convert_internvl_chat SRC_DIR DST_DIR [--dtype bf16]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    GotOcr2ImageProcessorPil,
    InternVLConfig,
    InternVLForConditionalGeneration,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

from .device import resolve_dtype
from .loading import ModelLoadError
from .processor import IMAGENET_MEAN, IMAGENET_STD, VlacInternVLProcessor, image_seq_length_for
from .tokenizer import IMG_CONTEXT_TOKEN, IMG_END_TOKEN, IMG_START_TOKEN

_VISION_RENAMES = [
    (r"^vision_model\.", "model.vision_tower."),
    (r"\.encoder\.layers\.", ".encoder.layer."),
    (r"embeddings\.class_embedding$", "embeddings.cls_token"),
    (r"embeddings\.position_embedding$", "embeddings.position_embeddings"),
    (r"embeddings\.patch_embedding\.", "embeddings.patch_embeddings.projection."),
    (r"\.ls1$", ".lambda_1"),
    (r"\.ls2$", ".lambda_2"),
    (r"\.attn\.proj\.", ".attention.projection_layer."),
    (r"\.attn\.q_norm\.", ".attention.q_norm."),
    (r"\.attn\.k_norm\.", ".attention.k_norm."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
]
_PROJECTOR_RENAMES = {
    "mlp1.0.": "model.multi_modal_projector.layer_norm.",
    "mlp1.1.": "model.multi_modal_projector.linear_1.",
    "mlp1.3.": "model.multi_modal_projector.linear_2.",
}
_INTERNLM2_RENAMES = [
    (r"^language_model\.model\.", "model.language_model."),
    (r"^language_model\.output\.", "lm_head."),
    (r"\.tok_embeddings\.", ".embed_tokens."),
    (r"\.attention\.wo\.", ".self_attn.o_proj."),
    (r"\.feed_forward\.w1\.", ".mlp.gate_proj."),
    (r"\.feed_forward\.w3\.", ".mlp.up_proj."),
    (r"\.feed_forward\.w2\.", ".mlp.down_proj."),
    (r"\.attention_norm\.", ".input_layernorm."),
    (r"\.ffn_norm\.", ".post_attention_layernorm."),
]
_HF_LLM_RENAMES = [(r"^language_model\.model\.", "model.language_model."), (r"^language_model\.lm_head\.", "lm_head.")]


def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def split_internlm2_wqkv(
    wqkv: torch.Tensor, num_heads: int, num_kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """InternLM2's fused (q, k, v) projection weight -> separate q, k, v weights (rows = outputs)."""
    groups = num_heads // num_kv_heads
    rows, hidden = wqkv.shape
    head_dim = rows // (num_kv_heads * (groups + 2))
    if num_kv_heads * (groups + 2) * head_dim != rows:
        raise ValueError(f"wqkv has {rows} rows, not divisible into {num_kv_heads} x ({groups} + 2) heads")
    blocks = wqkv.reshape(num_kv_heads, groups + 2, head_dim, hidden)
    q = blocks[:, :groups].reshape(num_heads * head_dim, hidden)
    k = blocks[:, groups].reshape(num_kv_heads * head_dim, hidden)
    v = blocks[:, groups + 1].reshape(num_kv_heads * head_dim, hidden)
    return q.contiguous(), k.contiguous(), v.contiguous()


def convert_state_dict(state: dict[str, torch.Tensor], chat_config: dict) -> dict[str, torch.Tensor]:
    """internvl_chat weights -> InternVLForConditionalGeneration weights (see the module docstring)."""
    llm = chat_config["llm_config"]
    internlm2 = llm.get("model_type") == "internlm2"
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("vision_model."):
            if ".attn.qkv." in key:
                base = _rename(key, _VISION_RENAMES).replace(".attn.qkv.", ".attention.{}.")
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                    out[base.format(name)] = part.contiguous()
            else:
                out[_rename(key, _VISION_RENAMES).replace(".attn.", ".attention.")] = value
        elif key.startswith("mlp1."):
            prefix = key[: len("mlp1.0.")]
            if prefix not in _PROJECTOR_RENAMES:
                raise ValueError(f"unexpected projector weight {key!r}")
            out[_PROJECTOR_RENAMES[prefix] + key[len(prefix) :]] = value
        elif key.startswith("language_model."):
            if internlm2 and ".attention.wqkv." in key:
                base = _rename(key, _INTERNLM2_RENAMES).replace(".attention.wqkv.", ".self_attn.{}.")
                q, k, v = split_internlm2_wqkv(value, llm["num_attention_heads"], llm["num_key_value_heads"])
                for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                    out[base.format(name)] = part
            else:
                out[_rename(key, _INTERNLM2_RENAMES if internlm2 else _HF_LLM_RENAMES)] = value
        else:
            raise ValueError(f"unexpected weight {key!r} in an internvl_chat checkpoint")
    return out


def convert_config(chat_config: dict, image_token_id: int) -> InternVLConfig:
    """internvl_chat config.json (dict) -> InternVLConfig with a Llama (InternLM2) or native text config."""
    vision = chat_config["vision_config"]
    llm = dict(chat_config["llm_config"])
    image_size = int(chat_config.get("force_image_size") or vision["image_size"])
    patch_size = int(vision["patch_size"])
    downsample = float(chat_config.get("downsample_ratio", 0.5))
    vision_config = {
        "hidden_size": vision["hidden_size"],
        "num_hidden_layers": vision["num_hidden_layers"],
        "num_attention_heads": vision["num_attention_heads"],
        "intermediate_size": vision["intermediate_size"],
        "image_size": [image_size, image_size],
        "patch_size": [patch_size, patch_size],
        "attention_bias": bool(vision.get("qkv_bias", True)),
        "use_qk_norm": bool(vision.get("qk_normalization", False)),
        "norm_type": vision.get("norm_type", "layer_norm"),
        "layer_norm_eps": vision.get("layer_norm_eps", 1e-6),
        "hidden_act": vision.get("hidden_act", "gelu"),
    }
    if llm.get("model_type") == "internlm2":
        text_config = LlamaConfig(
            vocab_size=llm["vocab_size"],
            hidden_size=llm["hidden_size"],
            intermediate_size=llm["intermediate_size"],
            num_hidden_layers=llm["num_hidden_layers"],
            num_attention_heads=llm["num_attention_heads"],
            num_key_value_heads=llm["num_key_value_heads"],
            hidden_act=llm.get("hidden_act", "silu"),
            max_position_embeddings=llm.get("max_position_embeddings", 32768),
            rms_norm_eps=llm.get("rms_norm_eps", 1e-5),
            rope_theta=llm.get("rope_theta", 10000.0),
            rope_scaling=llm.get("rope_scaling"),
            attention_bias=bool(llm.get("bias", False)),
            mlp_bias=False,
            tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)),
            bos_token_id=llm.get("bos_token_id", 1),
            eos_token_id=llm.get("eos_token_id", 2),
            pad_token_id=llm.get("pad_token_id", 2),
        ).to_dict()
    else:
        text_config = {k: v for k, v in llm.items() if k not in ("architectures", "auto_map", "attn_implementation")}
    # A size the patch grid or the pixel shuffle cannot divide is refused here, not truncated into a wrong count.
    seq_length = image_seq_length_for(image_size, patch_size, downsample)
    return InternVLConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_id=image_token_id,
        image_seq_length=seq_length,
        downsample_ratio=downsample,
        vision_feature_layer=int(chat_config.get("select_layer", -1)),
        tie_word_embeddings=bool(text_config.get("tie_word_embeddings", False)),
    )


def load_source_tokenizer(src: Path) -> PreTrainedTokenizerFast:
    """The checkpoint's tokenizer as a fast tokenizer, with InternVL's image tokens registered."""
    config = json.loads((src / "tokenizer_config.json").read_text()) if (src / "tokenizer_config.json").exists() else {}
    special = {
        "bos_token": config.get("bos_token") or "<s>",
        "eos_token": "<|im_end|>",  # the chat turn ends the answer
        "pad_token": config.get("pad_token") or "</s>",
        "unk_token": config.get("unk_token") or "<unk>",
    }
    special = {k: v["content"] if isinstance(v, dict) else v for k, v in special.items()}
    image_tokens = {
        "start_image_token": IMG_START_TOKEN,
        "end_image_token": IMG_END_TOKEN,
        "context_image_token": IMG_CONTEXT_TOKEN,
    }
    if (src / "tokenizer.json").exists():
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_file=str(src / "tokenizer.json"), extra_special_tokens=image_tokens, **special
        )
    elif (src / "tokenizer.model").exists():
        from transformers import LlamaTokenizerFast  # converts sentencepiece (needs the sentencepiece package)

        tokenizer = LlamaTokenizerFast(vocab_file=str(src / "tokenizer.model"), legacy=True, **special)
        added = json.loads((src / "added_tokens.json").read_text()) if (src / "added_tokens.json").exists() else {}
        for token, token_id in sorted(added.items(), key=lambda kv: kv[1]):
            tokenizer.add_tokens([token], special_tokens=True)
            if tokenizer.convert_tokens_to_ids(token) != token_id:
                raise ModelLoadError(
                    f"tokenizer conversion: {token!r} got id {tokenizer.convert_tokens_to_ids(token)}, "
                    f"expected {token_id} (added_tokens.json)"
                )
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=tokenizer.backend_tokenizer, extra_special_tokens=image_tokens, **special
        )
    else:
        raise ModelLoadError(f"checkpoint {str(src)!r}: no tokenizer.json or tokenizer.model")
    for token in image_tokens.values():
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ModelLoadError(f"checkpoint {str(src)!r}: {token} is not a single token of its vocabulary")
    tokenizer.padding_side = "left"
    return tokenizer


def _load_state(src: Path) -> dict[str, torch.Tensor]:
    files = sorted(src.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"checkpoint {str(src)!r}: no weights (*.safetensors) found")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


def convert_checkpoint(src: str | Path, dst: str | Path, dtype: str | torch.dtype | None = "bf16") -> Path:
    """Convert the internvl_chat checkpoint at ``src`` and save model + processor to ``dst``."""
    src, dst = Path(src), Path(dst)
    config_file = src / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"checkpoint {str(src)!r}: no config.json")
    chat_config = json.loads(config_file.read_text())
    if chat_config.get("model_type") != "internvl_chat":
        raise ModelLoadError(
            f"checkpoint {str(src)!r}: model_type {chat_config.get('model_type')!r}, expected 'internvl_chat'"
        )
    state = _load_state(src)
    tokenizer = load_source_tokenizer(src)
    config = convert_config(chat_config, image_token_id=tokenizer.convert_tokens_to_ids(IMG_CONTEXT_TOKEN))
    torch_dtype = resolve_dtype(dtype, torch.device("cpu")) if dtype is not None else torch.float32
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    converted = {k: v.to(torch_dtype) for k, v in convert_state_dict(state, chat_config).items()}
    missing, unexpected = model.load_state_dict(converted, strict=False, assign=True)
    if missing or unexpected:
        raise ModelLoadError(f"conversion of {str(src)!r}: missing weights {missing}, unexpected {unexpected}")
    model.generation_config.eos_token_id = sorted(
        {tokenizer.eos_token_id, *_as_list(chat_config["llm_config"].get("eos_token_id"))}
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    dst.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dst)
    size = config.vision_config.image_size[0]
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": size, "width": size},
        crop_to_patches=False,
        max_patches=1,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    VlacInternVLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_length=config.image_seq_length
    ).save_pretrained(dst)
    return dst


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("src", help="internvl_chat checkpoint directory (e.g. a local copy of InternRobotics/VLAC)")
    parser.add_argument("dst", help="output directory (transformers InternVL format)")
    parser.add_argument("--dtype", default="bf16", help="weight dtype to save: bf16 (release), fp16 or fp32")
    args = parser.parse_args(argv)
    try:
        out = convert_checkpoint(args.src, args.dst, args.dtype)
    except (ModelLoadError, ValueError) as error:
        print(f"convert_internvl_chat: error: {error}", file=sys.stderr)
        return 2
    print(f"converted {args.src} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
