"""Image preprocessing and the InternVL processor the stack uses (no torchvision anywhere).

Why a subclass: transformers' ``InternVLProcessor`` refuses to construct without torchvision (its
video-processor check), and its placeholder expansion differs from the release's (no newline after
``</img>``, no front insertion). ``VlacInternVLProcessor`` takes no video processor, reproduces the
release's token layout (see ``chat.py``) and is registered with ``AutoProcessor`` for
``InternVLConfig`` so checkpoints saved with it load back as it.

Images follow the release: RGB, squash-resized (LANCZOS, no crop) to the model's image size, one
tile, no thumbnail, ImageNet mean/std. Doing the resize and normalisation here, in numpy, pins that
exactly instead of depending on an image processor's tiling options.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from transformers import AutoProcessor, BatchFeature, InternVLConfig, InternVLProcessor
from transformers.processing_utils import ProcessorMixin

from vlac_core.prompts import SYSTEM_PROMPT
from vlac_core.types import check_image

from .chat import build_prompt

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_size_px(image_processor) -> int:
    """Square side (pixels) the image processor is configured for."""
    size = image_processor.size
    height = size["height"] if isinstance(size, dict) else size.height
    width = size["width"] if isinstance(size, dict) else size.width
    if height != width:
        raise ValueError(f"expected a square image size, got {height}x{width}")
    return int(height)


def image_seq_length_for(image_size_px: int, patch_size_px: int, downsample_ratio: float) -> int:
    """Image tokens per frame at ``image_size_px``: the patch grid, pixel-shuffled by ``downsample_ratio``; the grid
    must divide into whole patches and shuffle into whole tokens (the tiny models and ``resize`` count them here)."""
    grid, rem = divmod(int(image_size_px), int(patch_size_px))
    side = grid * downsample_ratio
    if rem or grid < 1 or side != int(side):
        raise ValueError(
            f"image_size_px: {image_size_px} px is not a whole grid of {patch_size_px} px patches that a "
            f"{downsample_ratio} pixel shuffle divides (try a multiple of {int(patch_size_px / downsample_ratio)})"
        )
    return int(side) ** 2


def squash_resize(image: np.ndarray, size_px: int, name: str = "image") -> np.ndarray:
    """HxWx3 uint8 RGB -> size x size x 3 uint8, LANCZOS, aspect ratio not kept (the release's resize)."""
    check_image(image, name)
    if image.shape[0] == size_px and image.shape[1] == size_px:
        return image
    return np.asarray(Image.fromarray(image).resize((size_px, size_px), Image.Resampling.LANCZOS))


def pixel_values(
    images: Sequence[np.ndarray], size_px: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, name: str = "images"
) -> torch.Tensor:
    """Stack images into the model's (N, 3, size, size) float32 input, one tile per image.

    The same array object passed several times is resized once: a trajectory's frames appear in two
    pairs each, and in-context prompts repeat the reference frames in every sample of a batch.
    """
    if len(images) == 0:
        return torch.zeros((0, 3, size_px, size_px), dtype=torch.float32)
    resized: dict[int, np.ndarray] = {}
    for i, im in enumerate(images):
        if id(im) not in resized:
            resized[id(im)] = squash_resize(im, size_px, f"{name}[{i}]")
    batch = np.stack([resized[id(im)] for im in images])
    batch = (batch.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


class VlacInternVLProcessor(InternVLProcessor):
    """InternVL processor with the release's prompt layout; needs no torchvision.

    Call it with user CONTENT strings (``<image>`` placeholders allowed, missing ones are put at the
    front) and, per string, the list of its images (HxWx3 uint8 RGB numpy arrays). It adds the chat
    layout (BOS, system prompt, turn markers), expands each image to ``image_seq_length`` context
    tokens and left-pads the batch, so the last column is where every answer starts.
    """

    def __init__(self, image_processor=None, tokenizer=None, image_seq_length: int = 256, chat_template=None, **kwargs):
        # Skip InternVLProcessor.__init__ (it demands a video processor, i.e. torchvision).
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)
        self.image_seq_length = image_seq_length
        self.start_image_token = tokenizer.start_image_token
        self.end_image_token = tokenizer.end_image_token
        self.start_image_token_id = tokenizer.start_image_token_id
        self.end_image_token_id = tokenizer.end_image_token_id
        self.image_token = tokenizer.context_image_token
        self.video_token = getattr(tokenizer, "video_token", None)  # converted InternLM2 vocabularies have none
        self.image_token_id = tokenizer.context_image_token_id

    @property
    def image_size_px(self) -> int:
        return image_size_px(self.image_processor)

    def build_text(self, content: str, n_images: int, system: str = SYSTEM_PROMPT) -> str:
        """The exact text (chat layout, expanded images) the tokenizer sees for one sample."""
        return build_prompt(content, n_images, self.image_seq_length, system=system, bos_token=self.tokenizer.bos_token)

    def __call__(
        self,
        images: Sequence[Sequence[np.ndarray]] | None = None,
        text: str | Sequence[str] | None = None,
        system: str = SYSTEM_PROMPT,
        **_unused,
    ) -> BatchFeature:
        """Encode a batch: ``text[i]`` is a user CONTENT, ``images[i]`` its images in placeholder order.

        Returns ``input_ids`` and ``attention_mask`` (left-padded, int64) and ``pixel_values``
        (float32, images of all samples in order) when there are images.
        """
        if text is None:
            raise ValueError("text: expected one user CONTENT string per sample, got None")
        contents = [text] if isinstance(text, str) else list(text)
        if not contents:
            raise ValueError("text: empty batch")
        per_sample = [[] for _ in contents] if images is None else [list(ims) for ims in images]
        if len(per_sample) != len(contents):
            raise ValueError(f"images: got image lists for {len(per_sample)} samples but {len(contents)} texts")
        texts = [self.build_text(c, len(ims), system) for c, ims in zip(contents, per_sample, strict=True)]
        encoded = self.tokenizer(
            texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
        )
        data = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        flat = [im for ims in per_sample for im in ims]
        if flat:
            processor = self.image_processor
            data["pixel_values"] = pixel_values(flat, self.image_size_px, processor.image_mean, processor.image_std)
        return BatchFeature(data=data)


AutoProcessor.register(InternVLConfig, VlacInternVLProcessor, exist_ok=True)
