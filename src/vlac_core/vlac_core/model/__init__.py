"""The model layer: InternVL checkpoints (incl. the released VLAC ones), the release's prompt layout,
tiny offline models, batched encoding and greedy decoding. Shared by the critic and the actor.

Typical use::

    loaded = load_model("/models/vlac-2b-hf")            # cuda+bf16 if available, else cpu+fp32
    batch = encode(loaded, [pair_progress_prompt(task)], [[earlier, later]])
    answer = greedy_generate(loaded, batch, max_new_tokens=8).texts[0]

The released ``internvl_chat`` checkpoints are converted once with
``python -m vlac_core.model.convert_internvl_chat SRC DST`` (see that module).
"""

from __future__ import annotations

import importlib

from .checkpoint_files import DamagedCheckpointError, ModelLoadError, check_checkpoint_dir, check_safetensors_file

# Imported on first use (PEP 562): ``from vlac_core.model import ModelLoadError, check_checkpoint_dir``
# must not pull in torch and transformers, so a command checks its checkpoint before paying for them.
_LAZY = {
    "build_prompt": "chat",
    "chat_prompt": "chat",
    "expand_image_placeholders": "chat",
    "insert_missing_placeholders": "chat",
    "resolve_device": "device",
    "resolve_dtype": "device",
    "GenerationResult": "generation",
    "encode": "generation",
    "greedy_generate": "generation",
    "last_prompt_hidden": "generation",
    "LoadedModel": "loading",
    "load_model": "loading",
    "load_processor": "loading",
    "VlacInternVLProcessor": "processor",
    "pixel_values": "processor",
    "squash_resize": "processor",
    "TinyModelSpec": "tiny",
    "build_tiny_model": "tiny",
    "build_tiny_processor": "tiny",
    "build_tiny_tokenizer": "tokenizer",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DamagedCheckpointError",
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
    "check_safetensors_file",
    "encode",
    "expand_image_placeholders",
    "greedy_generate",
    "insert_missing_placeholders",
    "last_prompt_hidden",
    "load_model",
    "load_processor",
    "pixel_values",
    "resolve_device",
    "resolve_dtype",
    "squash_resize",
]
