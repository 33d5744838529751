"""The critic-free value estimate PPO needs: a linear layer on the policy's final hidden state.

``V(s)`` is read from the decoder's last hidden state (after the final norm, before the vocabulary
projection) at the prompt's last token, before any action token: read after the action it would be
Q(s, a), varying with the action sampled at a fixed state (the issue-11 diagnosis: its advantage
correlated -0.30 with it). A fresh head starts at exactly zero: a linear head still has a gradient
there, and a zero start injects no noise into the first advantages. It is kept in float32 whatever the
model's dtype, so bf16 serving does not quantise the value, and is
stored next to the Hugging Face checkpoint as ``value_head.safetensors`` (keys ``weight`` (1, H) and
``bias`` (1,)).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

VALUE_HEAD_FILE = "value_head.safetensors"


class ValueHeadError(ValueError):
    """A value head file is missing or does not fit the model; the message says which and what to do."""


class ValueHead(torch.nn.Module):
    """``value = w · h + b`` on the final hidden state ``h`` (float32)."""

    def __init__(self, hidden_size: int, seed: int | None = None) -> None:
        """``seed`` None: zero weights (V = 0 everywhere). A seed: small random weights, for tests that need
        values that differ between states."""
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1, dtype=torch.float32)
        self.zero_()
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                self.linear.weight.copy_(torch.randn(1, hidden_size, generator=generator) * (0.1 / hidden_size**0.5))

    def zero_(self) -> ValueHead:
        """V(s) = 0 everywhere: the start of a value head that has not seen a return yet."""
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()
        return self

    @property
    def hidden_size(self) -> int:
        return self.linear.in_features

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) hidden states of any dtype -> (...) float32 values."""
        return self.linear(hidden.float()).squeeze(-1)

    def save(self, checkpoint_dir: str | Path) -> Path:
        path = Path(checkpoint_dir) / VALUE_HEAD_FILE
        tensors = {"weight": self.linear.weight.detach().cpu().contiguous(), "bias": self.linear.bias.detach().cpu()}
        save_file(tensors, str(path), metadata={"format": "vlac_value_head", "hidden_size": str(self.hidden_size)})
        return path


def load_value_head(checkpoint_dir: str | Path, hidden_size: int, allow_fresh: bool = False) -> ValueHead:
    """The checkpoint's value head; without one, raise unless ``allow_fresh`` (e.g. to pre-train a policy)."""
    path = Path(checkpoint_dir) / VALUE_HEAD_FILE
    head = ValueHead(hidden_size)
    if not path.is_file():
        if allow_fresh:
            return head
        raise ValueHeadError(
            f"policy checkpoint {str(checkpoint_dir)!r} has no {VALUE_HEAD_FILE}: it is not a policy checkpoint "
            "(e.g. the released critic). Pass allow_fresh_value_head=true to start a new value head (pre-training)."
        )
    tensors = load_file(str(path))
    expected = {"weight": (1, hidden_size), "bias": (1,)}
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if shapes != expected:
        raise ValueHeadError(f"{path}: tensors {shapes} do not fit a model of hidden size {hidden_size} ({expected})")
    with torch.no_grad():
        head.linear.weight.copy_(tensors["weight"].float())
        head.linear.bias.copy_(tensors["bias"].float())
    return head
