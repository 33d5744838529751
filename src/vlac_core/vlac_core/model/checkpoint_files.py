"""Is this folder a loadable checkpoint? Answered from its files alone, without torch or transformers.

Why a module of its own: a wrong path, an empty folder or a truncated ``model.safetensors`` must be
reported in one line naming the file before anything heavy is imported (importing torch and
transformers takes seconds on a busy machine; a damaged weights file otherwise surfaces as a Rust
``SafetensorError`` that names no file). Reading a safetensors header costs one small read.
"""

from __future__ import annotations

import json
from pathlib import Path


class ModelLoadError(ValueError):
    """A checkpoint path cannot be loaded; the message says what is missing and what to do."""


class DamagedCheckpointError(ModelLoadError):
    """A checkpoint file is there but its content is broken (bad data, where ModelLoadError is a bad path).

    Commands tell the two apart by exit status: 1 for damaged data, 2 for a path that names no checkpoint.
    """


def check_checkpoint_dir(path: str | Path) -> Path:
    """Return ``path`` if it holds an InternVL checkpoint in transformers' format, else raise saying why."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"checkpoint {str(path)!r}: not a directory (only local paths are loaded)")
    config_file = path / "config.json"
    if not config_file.is_file():
        present = sorted(p.name for p in path.iterdir())[:5]
        what = "the folder is empty" if not present else f"it holds {present}"
        raise ModelLoadError(f"checkpoint {str(path)!r}: no config.json ({what})")
    weights = sorted(path.glob("*.safetensors"))
    if not (weights or (path / "model.safetensors.index.json").is_file()):
        raise ModelLoadError(f"checkpoint {str(path)!r}: no weights (*.safetensors) found")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedCheckpointError(f"{config_file}: not valid JSON ({error})") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type == "internvl_chat":
        raise ModelLoadError(
            f"checkpoint {str(path)!r} is in the release's internvl_chat layout; convert it once with "
            f"`python -m vlac_core.model.convert_internvl_chat {path} <out_dir>` and load <out_dir>"
        )
    if model_type != "internvl":
        raise ModelLoadError(f"checkpoint {str(path)!r}: model_type {model_type!r}, expected 'internvl'")
    for file in weights:
        check_safetensors_file(file)
    return path


def check_safetensors_file(path: str | Path) -> Path:
    """Return ``path`` if its safetensors header parses and covers the file, else raise naming the file.

    Catches a truncated, empty or foreign file; flipped bits inside the tensors themselves cannot be
    seen without a checksum.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except (SafetensorError, OSError) as error:
        reason = " ".join(str(error).split())
        raise DamagedCheckpointError(
            f"{path}: not a complete safetensors file ({reason}); the file is damaged or truncated, "
            "copy or save the checkpoint again"
        ) from None
    return path
