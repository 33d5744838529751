"""A checkpoint made to see larger (or smaller) frames: its vision position embeddings interpolated.

Why: the simulated critic is trained at 64 px, where the plate (150 mm) is about 10 px across and 1 px about
15 mm; its done cannot tell a bowl 30 mm off the plate's centre from one 40 mm off
(docs/rl_experiments.md, "Where the critic's done goes wrong"). Trained from scratch at 96 px the recipe was
under-trained; starting a 96 px fine-tune from the trained 64 px weights is the standard way to raise a ViT's
resolution (ViT, DeiT: interpolate the position embeddings, fine-tune). Every weight but the position embeddings is
kept: the patch projection works on any number of patches, and the projector's pixel shuffle on any even grid.
Measured on the simulated critic (config/train_critic_off_centre_r96.yaml): a tiny ViT does not carry over to another
scale (resized, it answers no parsable done on 96 px frames), and 2000 fine-tuning steps regained its done but not its
per-step progress; a resized start is a start, not a shortcut.

The interpolation is transformers' own (``InternVLVisionEmbeddings.interpolate_pos_encoding``, bicubic), which it
applies on the fly to a frame of another size: the resized checkpoint computes exactly what the original computes
on the larger frame, but with the prompt's image-token count and the processor's frame size set to match, so the
rest of the stack (prompts, critic, actor, training) sees an ordinary checkpoint of the new size.
One-tile checkpoints only (the simulated ones): a tiled InternVL release has its own per-tile size.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoint_files import ModelLoadError
from .loading import load_model
from .processor import image_seq_length_for

#: Where a resized checkpoint records what it was made from (beside config.json).
RESIZED_FROM_FILE = "resized_from.json"


def resize_checkpoint(src: str | Path, dst: str | Path, image_size_px: int) -> Path:
    """Save to ``dst`` a copy of checkpoint ``src`` that takes ``image_size_px`` frames; returns ``dst``.

    Raises ValueError for a size the patch grid cannot take, and ModelLoadError for a checkpoint that is not a
    one-tile InternVL one."""
    loaded = load_model(src, device="cpu", dtype="fp32")
    model, processor, source_px = loaded.model, loaded.processor, loaded.image_size_px
    vision = model.config.vision_config
    if not getattr(vision, "use_absolute_position_embeddings", False):
        raise ModelLoadError(f"{src}: its vision tower has no absolute position embeddings to interpolate")
    patch_px = int(vision.patch_size[0] if isinstance(vision.patch_size, (list, tuple)) else vision.patch_size)
    seq_length = image_seq_length_for(image_size_px, patch_px, float(model.config.downsample_ratio))
    embeddings = model.model.vision_tower.embeddings
    with torch.no_grad():
        tokens = torch.zeros(1, (image_size_px // patch_px) ** 2 + 1, embeddings.position_embeddings.shape[-1])
        interpolated = embeddings.interpolate_pos_encoding(tokens, image_size_px, image_size_px).clone()
    config = model.config
    config.vision_config.image_size = [image_size_px, image_size_px]
    config.image_seq_length = seq_length
    resized = type(model)(config).eval()
    state = model.state_dict()
    key = next(k for k in state if k.endswith("vision_tower.embeddings.position_embeddings"))
    state[key] = interpolated
    resized.load_state_dict(state, strict=True)
    resized.generation_config = model.generation_config
    processor.image_processor.size = {"height": image_size_px, "width": image_size_px}
    processor.image_seq_length = seq_length
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    resized.save_pretrained(dst)
    processor.save_pretrained(dst)
    record = {"source": str(src), "source_image_size_px": source_px, "image_size_px": image_size_px}
    (dst / RESIZED_FROM_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return dst
