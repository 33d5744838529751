"""Load a bench/ script as a module for its tests (the scripts are files, not an installed package)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


def load_bench(name: str) -> Iterator[ModuleType]:
    """Yield bench/<name>.py as module ``name``; for a pytest fixture (``yield from load_bench(...)``).

    The module is registered in ``sys.modules`` while it executes (dataclasses look their module up
    there) and removed afterwards.
    """
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
