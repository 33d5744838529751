"""The model layer: InternVL checkpoints (incl. the released VLAC ones), the release's prompt layout,
tiny offline models, batched encoding and greedy decoding. Shared by the critic and the actor.

Typical use::

    loaded = load_model("/models/vlac-2b-hf")            # cuda+bf16 if available, else cpu+fp32
    batch = encode(loaded, [pair_progress_prompt(task)], [[earlier, later]])
    answer = greedy_generate(loaded, batch, max_new_tokens=8).texts[0]

The released ``internvl_chat`` checkpoints are converted once with
``python -m vlac_core.model.convert_internvl_chat SRC DST`` (see that module).
"""

from .chat import build_prompt, chat_prompt, expand_image_placeholders, insert_missing_placeholders
from .device import resolve_device, resolve_dtype
from .generation import GenerationResult, encode, greedy_generate
from .loading import LoadedModel, ModelLoadError, check_checkpoint_dir, load_model, load_processor
from .processor import VlacInternVLProcessor, pixel_values, squash_resize
from .tiny import TinyModelSpec, build_tiny_model, build_tiny_processor
from .tokenizer import build_tiny_tokenizer

__all__ = [
    "GenerationResult",
    "LoadedModel",
    "ModelLoadError",
    "TinyModelSpec",
    "VlacInternVLProcessor",
    "build_prompt",
    "build_tiny_model",
    "build_tiny_processor",
    "build_tiny_tokenizer",
    "chat_prompt",
    "check_checkpoint_dir",
    "encode",
    "expand_image_placeholders",
    "greedy_generate",
    "insert_missing_placeholders",
    "load_model",
    "load_processor",
    "pixel_values",
    "resolve_device",
    "resolve_dtype",
    "squash_resize",
]
