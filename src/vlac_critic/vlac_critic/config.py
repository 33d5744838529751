"""The critic node's parameters, declared once (``vlac_core.config`` style) and validated at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from vlac_core.config import ConfigError, param, validate

from .backends import BACKENDS
from .trajectory import VALUE_RULES

DTYPES = ("auto", "bf16", "bfloat16", "fp16", "float16", "fp32", "float32")


@dataclass
class CriticConfig:
    """Parameters of the critic node (and of the embedded runtime's critic)."""

    checkpoint: str = param("", "local InternVL checkpoint directory (transformers format)")
    backend: str = param("torch", "inference backend", choices=BACKENDS)
    device: str = param("auto", "torch device: auto (cuda if available), cpu, cuda, cuda:1, ...")
    dtype: str = param("auto", "auto (bf16 on cuda, fp32 on cpu), bf16, fp16 or fp32", choices=DTYPES)
    own_process: bool = param(
        False,
        "torch backend only: run the model in a child process, beside the caller's threads rather than under "
        "their GIL (embedded sessions on CPU, where the tiny models are bound by Python; vlac_critic.process_backend)",
    )
    batch_size: int = param(16, "frame pairs per forward pass", low=1, high=512)
    max_new_tokens: int = param(8, "longest progress answer decoded, tokens", low=1, high=64)
    skip: int = param(5, "streaming: score the latest frame against the one this many frames back", low=1, high=1000)
    value_rule: str = param("release", "streaming: value-curve update rule", choices=VALUE_RULES)
    stream_image_topic: str = param("", "streaming: sensor_msgs/Image topic to score; empty disables streaming")
    stream_task: str = param("", "streaming: task text the frames are scored against")
    stream_robot_id: str = param("arm_0", "streaming: robot_id written into the Progress messages")
    stream_rate_hz: float = param(1.0, "streaming: most Progress messages per second", low=0.01, high=100.0)
    diagnostics_period_s: float = param(1.0, "period of the /diagnostics status, s", low=0.1, high=60.0)

    def __post_init__(self) -> None:
        validate(self)

    def check(self) -> None:
        """Cross-field rules, run after loading (see vlac_core.config.from_mapping)."""
        if not self.checkpoint.strip():
            raise ConfigError("checkpoint: a local checkpoint directory is required, got ''")
        if self.own_process and self.backend != "torch":
            raise ConfigError(f"own_process: only for backend torch (backend {self.backend!r} runs its own engine)")
        if self.stream_image_topic and not self.stream_task.strip():
            raise ConfigError(f"stream_task: required when stream_image_topic is set ({self.stream_image_topic!r})")
