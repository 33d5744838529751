"""A policy = an InternVL checkpoint + its value head + the action grammar of its tokenizer, with a version.

Saved as a plain Hugging Face checkpoint directory (safetensors) with ``value_head.safetensors`` and
the grammar and prompt settings it was trained with (``policy_settings.json``) beside it, so the
critic tooling, ``load_model`` and vLLM can read the same directory. The version
is not stored in the directory: it is what the trainer announces (PolicyVersion) together with the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vlac_core.model import LoadedModel, load_model

from .grammar import ActionGrammar
from .policy_settings import PolicySettings, read_policy_settings, write_policy_settings
from .value_head import ValueHead, load_value_head


@dataclass
class Policy:
    """Everything one replica needs to decode and score actions."""

    loaded: LoadedModel
    value_head: ValueHead
    grammar: ActionGrammar
    settings: PolicySettings  # the grammar's limits and the prompt's settings, saved with the policy
    version: int = 0

    def __post_init__(self) -> None:
        if self.grammar.limits != self.settings.action_limits:
            raise ValueError(f"grammar limits {self.grammar.limits} differ from the settings' {self.settings}")

    def decision_temperature(self, nodes: Sequence[int]) -> float | torch.Tensor:
        """The logit temperature of each decision node's field: the settings' one number where every field
        shares it (so a uniform policy computes exactly as before), else an (N, 1) float32 tensor on the device."""
        shared = self.settings.one_temperature
        if shared is not None:
            return shared
        temperatures = [self.settings.field_temperature(self.grammar.field_of(node)) for node in nodes]
        return torch.tensor(temperatures, dtype=torch.float32, device=self.device)[:, None]

    @property
    def decoder(self) -> torch.nn.Module:
        """The multimodal trunk (vision tower + projector + decoder) without the vocabulary projection."""
        return self.loaded.model.model

    @property
    def lm_head(self) -> torch.nn.Module:
        return self.loaded.model.lm_head

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    def save(self, out_dir: str | Path) -> Path:
        """Write model, processor, value head (safetensors only) and settings to ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.loaded.model.save_pretrained(out_dir)
        self.loaded.processor.save_pretrained(out_dir)
        self.value_head.save(out_dir)
        write_policy_settings(out_dir, self.settings)
        return out_dir


def hidden_size_of(loaded: LoadedModel) -> int:
    config = loaded.model.config
    return int(getattr(config, "text_config", config).hidden_size)


def load_policy(
    path: str | Path,
    *,
    version: int = 0,
    settings: PolicySettings | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    allow_fresh_value_head: bool = False,
    grammar: ActionGrammar | None = None,
) -> Policy:
    """Load a policy checkpoint directory.

    A directory without ``value_head.safetensors`` (the released critic, a plain InternVL model) is an
    error unless ``allow_fresh_value_head``: silently starting from a random value head would make
    the first PPO updates chase noise. ``settings`` are the checkpoint's own (``policy_settings.json``)
    unless given: training a new policy from a base model sets them. ``grammar`` may be shared between
    replicas of one tokenizer.
    """
    settings = settings or read_policy_settings(path)
    loaded = load_model(path, device=device, dtype=dtype)
    head = load_value_head(path, hidden_size_of(loaded), allow_fresh=allow_fresh_value_head).to(loaded.device)
    if grammar is None or grammar.limits != settings.action_limits:
        grammar = ActionGrammar(loaded.tokenizer, settings.action_limits)
    return Policy(loaded=loaded, value_head=head, grammar=grammar, settings=settings, version=version)
