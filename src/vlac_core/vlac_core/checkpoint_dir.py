"""The one check that a configured checkpoint folder exists, run before any model is loaded.

Why: a missing folder otherwise surfaces deep inside transformers (or on a background loader
thread) as an error that does not say which setting was wrong. Nodes run it when they start
(``configure``), the embedded session before it builds anything; the message names the key and
the path, resolved, so a relative path shows where it was looked for.
"""

from __future__ import annotations

from pathlib import Path

from vlac_core.config import ConfigError


def require_checkpoint_dir(path: str | Path, key: str) -> Path:
    """``path`` as a Path when it is a folder, else ConfigError naming ``key`` and the path."""
    folder = Path(path)
    if not str(path).strip():
        raise ConfigError(f"{key}: empty; set the checkpoint folder")
    if not folder.is_dir():
        where = "does not exist" if not folder.exists() else "is not a folder"
        raise ConfigError(f"{key}: checkpoint {str(path)!r} {where} (looked for {folder.resolve()})")
    return folder
