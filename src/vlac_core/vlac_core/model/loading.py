"""Loading an InternVL checkpoint (transformers' own format) with the stack's processor.

One path for every model the stack runs: tiny offline models, InternVL checkpoints saved by
transformers, and the released VLAC checkpoints after ``convert_internvl_chat`` turned them into that
format (see its docstring for why conversion rather than ``trust_remote_code``). Only local paths
are read (``local_files_only``): nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, GotOcr2ImageProcessorPil
from transformers.utils import logging as hf_logging

from .checkpoint_files import ModelLoadError, check_checkpoint_dir
from .device import resolve_device, resolve_dtype
from .processor import IMAGENET_MEAN, IMAGENET_STD, VlacInternVLProcessor


@dataclass
class LoadedModel:
    """A model ready for inference with the processor that matches it."""

    model: torch.nn.Module
    processor: VlacInternVLProcessor
    device: torch.device
    dtype: torch.dtype
    path: Path | None  # None for a model built in memory (benchmarks)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def image_seq_length(self) -> int:
        return self.processor.image_seq_length

    @property
    def image_size_px(self) -> int:
        return self.processor.image_size_px


def load_processor(path: str | Path) -> VlacInternVLProcessor:
    """The stack's processor for a checkpoint dir; forces the release's one-tile image settings."""
    processor = VlacInternVLProcessor.from_pretrained(str(path), local_files_only=True)
    image_processor = processor.image_processor
    if not isinstance(image_processor, GotOcr2ImageProcessorPil):
        # e.g. saved with the torchvision image processor class: keep its size/mean/std only
        image_processor = GotOcr2ImageProcessorPil(
            size=dict(image_processor.size) if image_processor.size else None,
            image_mean=list(getattr(image_processor, "image_mean", IMAGENET_MEAN)),
            image_std=list(getattr(image_processor, "image_std", IMAGENET_STD)),
        )
        processor.image_processor = image_processor
    image_processor.crop_to_patches = False
    image_processor.max_patches = 1
    return processor


def load_model(
    path: str | Path, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None
) -> LoadedModel:
    """Load model and processor from a local checkpoint dir, in eval mode on ``device``.

    ``device``/``dtype`` default to cuda + bfloat16 when a GPU is present, else cpu + float32.
    The processor's image-token count is checked against the model config so a mismatched pair
    fails here rather than inside the forward pass.
    """
    path = check_checkpoint_dir(path)
    resolved_device = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, resolved_device)
    processor = load_processor(path)
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=resolved_dtype, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:  # e.g. a sharded file the header check did not see
        reason = " ".join(str(error).split())
        raise ModelLoadError(f"checkpoint {str(path)!r}: transformers cannot load it ({reason})") from error
    model.to(resolved_device).eval()
    config = model.config
    if processor.image_seq_length != config.image_seq_length:
        raise ModelLoadError(
            f"checkpoint {str(path)!r}: processor image_seq_length {processor.image_seq_length} != "
            f"model config image_seq_length {config.image_seq_length}"
        )
    if processor.image_token_id != config.image_token_id:
        raise ModelLoadError(
            f"checkpoint {str(path)!r}: tokenizer <IMG_CONTEXT> id {processor.image_token_id} != "
            f"model config image_token_id {config.image_token_id}"
        )
    return LoadedModel(model=model, processor=processor, device=resolved_device, dtype=resolved_dtype, path=path)
