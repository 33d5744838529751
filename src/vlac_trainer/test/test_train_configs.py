"""Every training config the repository ships parses into its command's schema (a typo fails here, not an hour in)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vlac_core.config import load_section
from vlac_trainer.offline.train_actor_cli import SECTION as ACTOR_SECTION
from vlac_trainer.offline.train_actor_cli import ActorTrainConfig
from vlac_trainer.offline.train_critic_cli import SECTION as CRITIC_SECTION
from vlac_trainer.offline.train_critic_cli import CriticTrainConfig

CONFIG = Path(__file__).resolve().parents[3] / "config"
COMMANDS = {"train_actor": (ACTOR_SECTION, ActorTrainConfig), "train_critic": (CRITIC_SECTION, CriticTrainConfig)}
FILES = sorted(CONFIG.glob("train_*.yaml"))


def test_the_repository_ships_training_configs_for_both_commands():
    assert {path.name for path in FILES} >= {"train_actor.yaml", "train_critic.yaml", "train_actor_l96.yaml"}


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_each_training_config_has_its_section_and_passes_its_checks(path):
    section, cls = next(v for prefix, v in COMMANDS.items() if path.name.startswith(prefix))
    assert section in yaml.safe_load(path.read_text()), f"{path.name}: no '{section}' section (defaults would run)"
    config = load_section(path, section, cls)
    assert config.out_dir and config.train_data
