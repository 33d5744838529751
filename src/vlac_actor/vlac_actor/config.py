"""The actor's parameters, declared once: the actor node and the embedded session read the same keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from vlac_core.config import ConfigError, param, validate

from .inputs import InputLimits
from .policy_settings import SOURCE, PolicySettings

if TYPE_CHECKING:  # decoding imports torch: reading a parameter file must not (`vlac session` checks it first)
    from .decoding import SamplingSettings


@dataclass(frozen=True)
class ActorConfig:
    """Actor pool, decoding and input checks (section ``actor_node`` of a session's parameter file).

    The action grammar and the prompt (limits, camera views, action history) are not set here: they are
    the policy's, read from its checkpoint (``vlac_actor.policy_settings``).
    """

    MOVED_KEYS: ClassVar[dict[str, str]] = {
        key: SOURCE for key in ("max_translation_mm", "max_rotation_deg", "num_views", "history_len")
    }

    checkpoint_path: str = param("", "policy checkpoint directory (InternVL safetensors + value_head.safetensors)")
    policy_version: int = param(0, "version of the checkpoint at start-up, tagged on every action", low=0)
    backend: str = param(
        "torch", "inference backend; vllm needs a GPU and flags its log-probs", choices=("torch", "vllm")
    )
    devices: list[str] = param(["auto"], "one model replica per entry: 'auto', 'cpu', 'cuda:0', ...")
    dtype: str = param("auto", "model dtype", choices=("auto", "float32", "bfloat16", "float16"))
    allow_fresh_value_head: bool = param(False, "start a new value head when the checkpoint has none (pre-training)")
    max_abs_position_mm: float = param(1000.0, "state check: largest |x|, |y|, |z| of the end pose, mm", low=1.0)
    max_task_chars: int = param(300, "longest task text accepted, characters", low=1, high=10000)
    temperature: float = param(1.0, "sampling temperature when a request says 0 (1 = on-policy for PPO)", low=1e-3)
    top_p: float = param(1.0, "nucleus sampling mass (1 = on-policy for PPO)", low=1e-3, high=1.0)
    max_batch: int = param(4, "requests one replica decodes together", low=1, high=64)
    max_queue: int = param(64, "requests allowed to wait; more are refused (0 = no limit)", low=0)
    seed: int = param(-1, "sampling seed of replica 0 (replica i uses seed + i); -1 = random", low=-1)
    diagnostics_period_s: float = param(1.0, "period of the diagnostics message, s", low=0.05, high=60.0)

    def __post_init__(self) -> None:
        validate(self)

    def check(self) -> None:
        """Cross-field checks ``from_mapping`` runs after the per-field ones."""
        if not self.checkpoint_path:
            raise ConfigError("checkpoint_path: empty; set the policy checkpoint directory")
        if not self.devices:
            raise ConfigError("devices: empty list; give at least one device (e.g. ['auto'])")
        if self.backend == "vllm" and len(self.devices) != 1:
            raise ConfigError(f"devices: backend vllm serves one GPU per actor process, got {list(self.devices)}")

    def input_limits(self, policy: PolicySettings) -> InputLimits:
        """The input checks for ``policy``: its prompt settings with this deployment's bounds."""
        return policy.input_limits(self.max_task_chars, self.max_abs_position_mm)

    def sampling(self, greedy: bool, temperature: float = 0.0) -> SamplingSettings:
        """A request's settings: temperature 0 (the service default) means the configured one."""
        from .decoding import SamplingSettings

        return SamplingSettings(greedy=greedy, temperature=temperature or self.temperature, top_p=self.top_p)
