"""The actor's parameters, declared once: the actor node and the embedded session read the same keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vlac_core.config import ConfigError, param, validate

from .grammar import ActionLimits
from .inputs import InputLimits

if TYPE_CHECKING:  # decoding imports torch: reading a parameter file must not (`vlac session` checks it first)
    from .decoding import SamplingSettings


@dataclass(frozen=True)
class ActorConfig:
    """Actor pool, decoding and input checks (section ``actor`` of a session's parameter file)."""

    checkpoint_path: str = param("", "policy checkpoint directory (InternVL safetensors + value_head.safetensors)")
    policy_version: int = param(0, "version of the checkpoint at start-up, tagged on every action", low=0)
    backend: str = param(
        "torch", "inference backend; vllm needs a GPU and flags its log-probs", choices=("torch", "vllm")
    )
    devices: list[str] = param(["auto"], "one model replica per entry: 'auto', 'cpu', 'cuda:0', ...")
    dtype: str = param("auto", "model dtype", choices=("auto", "float32", "bfloat16", "float16"))
    allow_fresh_value_head: bool = param(False, "start a new value head when the checkpoint has none (pre-training)")
    num_views: int = param(1, "camera views shown to the policy (images[0] = front camera)", low=1, high=3)
    history_len: int = param(0, "past actions in the prompt (0 = the release prompt, exactly)", low=0, high=16)
    max_translation_mm: int = param(100, "largest |dx|, |dy|, |dz| an action may hold, mm", low=1, high=10000)
    max_rotation_deg: int = param(180, "largest |droll|, |dpitch|, |dyaw| an action may hold, degrees", low=1, high=180)
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

    @property
    def action_limits(self) -> ActionLimits:
        return ActionLimits(max_translation_mm=self.max_translation_mm, max_rotation_deg=self.max_rotation_deg)

    @property
    def input_limits(self) -> InputLimits:
        return InputLimits(
            num_views=self.num_views,
            max_task_chars=self.max_task_chars,
            max_abs_position_mm=self.max_abs_position_mm,
            history_len=self.history_len,
        )

    def sampling(self, greedy: bool, temperature: float = 0.0) -> SamplingSettings:
        """A request's settings: temperature 0 (the service default) means the configured one."""
        from .decoding import SamplingSettings

        return SamplingSettings(greedy=greedy, temperature=temperature or self.temperature, top_p=self.top_p)
