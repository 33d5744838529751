"""Everything the trainer must get back after a crash: buffers, counters, model and optimizer tensors.

Saved through ``checkpoint_store`` (atomic generations, safetensors + JSON). Array names are
namespaced so the parts cannot collide: ``rollout/...``, ``demo/...`` and ``success/...`` hold episode images,
``t/...`` the caller's tensors (model weights, optimizer state from ``optimizer_state_to_tensors``,
images of stored start states, ...).

Paths in the counters (``policy_path``) that lie inside the folder holding the checkpoint root (a
session's output folder) are stored relative to the root and read back resolved against it, so
the folder can be moved or copied and resumed; a path outside it (the starting checkpoint) is
stored absolute. Older checkpoints, which stored the path as given, read as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlac_trainer.checkpoint_store import CheckpointError, load_checkpoint, save_checkpoint
from vlac_trainer.online.buffers import DemoBuffer, RolloutBuffer, SuccessBuffer

TRAINING_STATE_FORMAT = "vlac_trainer.training_state/1"
#: Counters holding a filesystem path (see the module docstring).
PATH_COUNTERS = ("policy_path",)
#: Marks counters whose paths are relative to the checkpoint root.
_RELATIVE_KEY = "paths_relative_to_root"


def _store_paths(root: Path, counters: dict[str, Any]) -> dict[str, Any]:
    out, home = dict(counters), root.absolute().parent
    relative = []
    for key in PATH_COUNTERS:
        if isinstance(out.get(key), str) and out[key]:
            path = Path(os.path.abspath(out[key]))
            if path.is_relative_to(home):
                out[key] = os.path.relpath(path, root.absolute())
                relative.append(key)
            else:
                out[key] = str(path)
    out[_RELATIVE_KEY] = relative
    return out


def _load_paths(root: Path, counters: dict[str, Any]) -> dict[str, Any]:
    out = dict(counters)
    for key in out.pop(_RELATIVE_KEY, []):
        out[key] = os.path.normpath(root.absolute() / out[key])
    return out


@dataclass
class TrainingState:
    """What a trainer checkpoint holds. ``counters`` and ``extra`` must be JSON-able."""

    rollouts: RolloutBuffer
    demos: DemoBuffer
    counters: dict[str, Any] = field(default_factory=dict)  # policy_version, updates, episodes_seen, ...
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the return-and-explore store's metadata
    successes: SuccessBuffer | None = None  # self-imitation's replay (None: off; older checkpoints lack it)


def save_training_state(root: str | Path, state: TrainingState, keep: int = 2) -> Path:
    """Write ``state`` as a new checkpoint generation under ``root``; returns the generation folder."""
    arrays: dict[str, np.ndarray | torch.Tensor] = {}
    meta = {
        "format": TRAINING_STATE_FORMAT,
        "rollouts": state.rollouts.state("rollout", arrays),
        "demos": state.demos.state("demo", arrays),
        "successes": None if state.successes is None else state.successes.state("success", arrays),
        "counters": _store_paths(Path(root), state.counters),
        "extra": state.extra,
        "tensor_names": sorted(state.tensors),
    }
    for name, tensor in state.tensors.items():
        arrays[f"t/{name}"] = tensor
    return save_checkpoint(root, arrays, meta, keep=keep)


def load_training_state(root: str | Path) -> TrainingState | None:
    """The latest saved TrainingState under ``root``, or None when nothing was saved yet."""
    loaded = load_checkpoint(root)
    if loaded is None:
        return None
    tensors, meta = loaded
    if meta.get("format") != TRAINING_STATE_FORMAT:
        raise CheckpointError(f"{root}: format {meta.get('format')!r}, expected {TRAINING_STATE_FORMAT!r}")
    arrays = {name: t.numpy() for name, t in tensors.items() if not name.startswith("t/")}
    return TrainingState(
        rollouts=RolloutBuffer.from_state(meta["rollouts"], arrays),
        demos=DemoBuffer.from_state(meta["demos"], arrays),
        counters=_load_paths(Path(root), meta["counters"]),
        tensors={name: tensors[f"t/{name}"] for name in meta["tensor_names"]},
        extra=meta["extra"],
        successes=SuccessBuffer.from_state(meta["successes"], arrays) if meta.get("successes") else None,
    )


def optimizer_state_to_tensors(state_dict: dict[str, Any], prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (named ``prefix/...``) and JSON metadata (no pickle)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}/{param_id}/{name}"] = value.detach().clone()  # a snapshot: training mutates
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    meta = {
        "param_ids": [int(p) for p in state_dict["state"]],
        "tensor_names": {name: name.split("/")[-2:] for name in tensors},
        "scalars": scalars,
        "param_groups": state_dict["param_groups"],
    }
    return tensors, meta


def optimizer_state_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``optimizer_state_to_tensors``: a dict ``optimizer.load_state_dict`` accepts."""
    state: dict[int, dict[str, Any]] = {int(p): {} for p in meta["param_ids"]}
    for full_name, (param_id, name) in meta["tensor_names"].items():
        if full_name not in tensors:
            raise CheckpointError(f"optimizer tensor {full_name!r} is named in the metadata but not stored")
        state[int(param_id)][name] = tensors[full_name]
    for param_id, values in meta["scalars"].items():
        state[int(param_id)].update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}
