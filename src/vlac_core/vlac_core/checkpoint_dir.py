"""The one check of a configured checkpoint folder, run before any model is loaded.

Why: a missing folder otherwise surfaces deep inside transformers (or on a background loader
thread) as an error that does not say which setting was wrong. Nodes run it when they start
(``configure``), the embedded session before it builds anything. A missing or empty setting is a
ConfigError; a folder whose files cannot be loaded is ``vlac_core.model.check_checkpoint_dir``'s
ModelLoadError. Either message names the key and the path (resolved, so a relative path shows
where it was looked for).
"""

from __future__ import annotations

from pathlib import Path

from vlac_core.config import ConfigError


def require_checkpoint_dir(path: str | Path, key: str) -> Path:
    """``path`` as a Path when it holds a loadable checkpoint, else an error naming ``key`` and the path."""
    from vlac_core.model import ModelLoadError, check_checkpoint_dir  # light: no torch, no transformers

    folder = Path(path)
    if not str(path).strip():
        raise ConfigError(f"{key}: empty; set the checkpoint folder")
    if not folder.is_dir():
        where = "does not exist" if not folder.exists() else "is not a folder"
        raise ConfigError(f"{key}: checkpoint {str(path)!r} {where} (looked for {folder.resolve()})")
    try:
        return check_checkpoint_dir(folder)
    except ModelLoadError as error:
        raise type(error)(f"{key}: {error}") from None  # keeps DamagedCheckpointError apart from a bad path
