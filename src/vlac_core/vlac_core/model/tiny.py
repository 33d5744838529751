"""Tiny InternVL-architecture models built offline, for tests, CI and CPU experiments.

Same classes as a real-size InternVL checkpoint in transformers' format (InternViT vision tower,
pixel-shuffle projector, Llama-style decoder — the decoder the InternLM2 converter produces), only
small: the default is ~0.7 M parameters, 64 px images, patch 8 (16 image tokens per image). Saved with
``save_pretrained`` it loads through the very same ``load_model`` path a real checkpoint takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GotOcr2ImageProcessorPil, InternVLConfig, InternVLForConditionalGeneration, LlamaConfig

from .processor import IMAGENET_MEAN, IMAGENET_STD, VlacInternVLProcessor, image_seq_length_for
from .tokenizer import build_tiny_tokenizer


@dataclass(frozen=True)
class TinyModelSpec:
    """Sizes of a tiny model; ``image_size_px`` / ``patch_size_px`` must be an even integer (pixel shuffle 0.5)."""

    image_size_px: int = 64
    patch_size_px: int = 8
    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        grid, rem = divmod(self.image_size_px, self.patch_size_px)
        if rem or grid % 2:
            raise ValueError(
                f"image_size_px/patch_size_px must be an even integer, got {self.image_size_px}/{self.patch_size_px}"
            )

    @property
    def image_seq_length(self) -> int:
        """Image-context tokens per image: (size/patch)^2 patches, pixel-shuffled by 0.5 in each direction."""
        return image_seq_length_for(self.image_size_px, self.patch_size_px, 0.5)


def tiny_config(spec: TinyModelSpec, vocab_size: int, image_token_id: int, **token_ids: int) -> InternVLConfig:
    """InternVL config for ``spec``; ``token_ids`` are bos/eos/pad ids of the tokenizer."""
    vision = {
        "hidden_size": spec.vision_hidden,
        "num_hidden_layers": spec.vision_layers,
        "num_attention_heads": spec.vision_heads,
        "intermediate_size": spec.vision_hidden * 4,
        "image_size": [spec.image_size_px, spec.image_size_px],
        "patch_size": [spec.patch_size_px, spec.patch_size_px],
        "attention_bias": True,  # InternViT-300M has a qkv bias
    }
    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.text_hidden,
        intermediate_size=spec.text_hidden * 3,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        **token_ids,
    )
    return InternVLConfig(
        vision_config=vision,
        text_config=text.to_dict(),
        image_token_id=image_token_id,
        image_seq_length=spec.image_seq_length,
        tie_word_embeddings=False,
    )


def build_tiny_processor(spec: TinyModelSpec) -> VlacInternVLProcessor:
    """Processor with an in-process tokenizer and a one-tile image processor at ``spec.image_size_px``."""
    tokenizer = build_tiny_tokenizer()
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": spec.image_size_px, "width": spec.image_size_px},
        crop_to_patches=False,
        max_patches=1,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    return VlacInternVLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_length=spec.image_seq_length
    )


def build_tiny_model(out_dir: str | Path, spec: TinyModelSpec | None = None) -> Path:
    """Build a random-weight tiny model + processor and save both to ``out_dir`` (safetensors).

    Seeded, so the same spec gives the same weights. Returns ``out_dir``.
    """
    spec = spec or TinyModelSpec()
    processor = build_tiny_processor(spec)
    tok = processor.tokenizer
    config = tiny_config(
        spec,
        vocab_size=len(tok),
        image_token_id=tok.context_image_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(spec.seed)
    model = InternVLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
