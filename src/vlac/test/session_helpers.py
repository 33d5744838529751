"""Tiny random actor and critic checkpoints and a session parameter file for the session tests.

Random weights: the critic's answers are mostly unparsable (reward 0, no reward invented) and the
policy wanders, which is all the plumbing tests need; learning is not asserted here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from vlac_actor.policy_settings import PolicySettings, write_policy_settings
from vlac_actor.value_head import ValueHead
from vlac_core.model import TinyModelSpec, build_tiny_model


def build_models(root: Path) -> tuple[Path, Path]:
    actor = build_tiny_model(root / "actor", TinyModelSpec(seed=0))
    ValueHead(TinyModelSpec().text_hidden, seed=0).save(actor)
    write_policy_settings(actor, PolicySettings(max_translation_mm=40, image_size_px=64))  # as `vlac train actor`
    critic = build_tiny_model(root / "critic", TinyModelSpec(seed=1))
    return actor, critic


def write_config(
    path: Path,
    actor: Path,
    critic: Path,
    out: Path,
    max_steps: int = 3,
    manager: dict | None = None,
    trainer: dict | None = None,
    **session,
) -> Path:
    sections = {
        "sim_node": {"task": "pick_bowl", "image_size_px": 64},
        "actor_node": {"checkpoint_path": str(actor), "devices": ["cpu"], "seed": 0},
        "critic_node": {"checkpoint": str(critic), "device": "cpu", "max_new_tokens": 4},
        "trainer_node": {
            "checkpoint_path": str(actor),
            "learning_rate": 1e-4,
            "episodes_per_update": 2,
            "minibatch_size": 4,
            "update_epochs": 1,
            "value_warmup_updates": 0,
            **(trainer or {}),
        },
        "episode_manager": {"max_steps": max_steps, "revisit_prob": 0.5, **(manager or {})},
        "session": {
            "episodes": 2,
            "arms": 1,
            "out_dir": str(out),
            "eval_every_episodes": 0,
            "eval_trials": 1,
            "torch_threads": 1,
            **session,
        },
    }
    path.write_text(yaml.safe_dump({name: {"ros__parameters": params} for name, params in sections.items()}))
    return path
