"""The settings a policy was trained with, stored once in its checkpoint folder (``policy_settings.json``).

Why in the checkpoint: the action grammar (the limits) and the prompt (camera views, past actions) shape
every token's log-probability. The actor that samples and the trainer that recomputes must both use
the ones the policy learned with, so both read them here instead of each declaring a copy that can
drift. ``Policy.save`` writes the file, so ``vlac train actor`` and every version the trainer publishes
carry it; a session file that still sets one of these keys is refused, naming where the value comes
from now (``ActorConfig.MOVED_KEYS``).

A checkpoint without the file is a foreign one (the released VLAC checkpoints, a plain InternVL model):
it gets the release's settings, ``PolicySettings()`` (actions within 100 mm and 180 deg, one camera
view, no action history: the release's prompt exactly). That is the one documented default; the
project's own checkpoints always carry the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from vlac_core.config import ConfigError, from_mapping, param, validate
from vlac_core.types import ACTION_FIELDS

from .grammar import ActionLimits
from .inputs import InputLimits

FILE_NAME = "policy_settings.json"
#: Where a setting that used to be declared in a session file comes from now (for the refusal's message).
SOURCE = f"it comes from the policy checkpoint's {FILE_NAME} (vlac_actor.policy_settings)"
#: The logit temperatures a policy may have, inclusive (one for all fields, or each field's own).
TEMPERATURE_RANGE = (0.05, 10.0)


@dataclass(frozen=True)
class PolicySettings:
    """The grammar and prompt a policy was trained with."""

    max_translation_mm: int = param(
        ActionLimits.max_translation_mm, "largest |dx|, |dy|, |dz| an action may hold, mm", low=1, high=10000
    )
    max_rotation_deg: int = param(
        ActionLimits.max_rotation_deg, "largest |droll|, |dpitch|, |dyaw| an action may hold, degrees", low=1, high=180
    )
    num_views: int = param(1, "camera views in the prompt (images[0] = front camera)", low=1, high=3)
    history_len: int = param(0, "past actions in the prompt (0 = the release prompt, exactly)", low=0, high=16)
    image_size_px: int = param(0, "square frame size the policy was trained on, px (0: not recorded)", low=0)
    logit_temperature: float = param(
        1.0,
        "the policy is softmax(logits / this) over the grammar's allowed tokens, for sampling and scoring alike: "
        "below 1 it samples nearer its greedy action (unchanged) and PPO optimises that sharper policy",
        low=TEMPERATURE_RANGE[0],
        high=TEMPERATURE_RANGE[1],
    )
    field_logit_temperatures: tuple[float, ...] = param(
        (),
        "the logit_temperature of each field's decisions, in template order (x, y, z, roll, pitch, yaw, open); "
        "empty: logit_temperature for every field. Lets a policy sample its translation digits nearer the greedy "
        "action than its gripper (a sampled action's randomness is mostly translation digits)",
    )

    def __post_init__(self) -> None:
        validate(self)
        temperatures = self.field_logit_temperatures
        if temperatures and len(temperatures) != len(ACTION_FIELDS):
            raise ConfigError(
                f"field_logit_temperatures: expected {len(ACTION_FIELDS)} numbers ({', '.join(ACTION_FIELDS)}) "
                f"or none, got {len(temperatures)}"
            )
        lowest, highest = TEMPERATURE_RANGE
        for name, value in zip(ACTION_FIELDS, temperatures, strict=False):
            if not (isinstance(value, (int, float)) and lowest <= value <= highest):  # also refuses NaN
                raise ConfigError(f"field_logit_temperatures: {name}'s {value!r} is outside {lowest:g}..{highest:g}")

    def field_temperature(self, field: int) -> float:
        """The logit temperature of field ``field``'s decisions (index into ``ACTION_FIELDS``)."""
        return float(self.field_logit_temperatures[field]) if self.field_logit_temperatures else self.logit_temperature

    @property
    def one_temperature(self) -> float | None:
        """The logit temperature every field shares, or None where the fields' differ."""
        temperatures = {self.field_temperature(k) for k in range(len(ACTION_FIELDS))}
        return temperatures.pop() if len(temperatures) == 1 else None

    @property
    def action_limits(self) -> ActionLimits:
        return ActionLimits(max_translation_mm=self.max_translation_mm, max_rotation_deg=self.max_rotation_deg)

    def input_limits(self, max_task_chars: int, max_abs_position_mm: float) -> InputLimits:
        """The actor's input checks: this policy's prompt settings with the deployment's bounds."""
        return InputLimits(
            num_views=self.num_views,
            max_task_chars=max_task_chars,
            max_abs_position_mm=max_abs_position_mm,
            history_len=self.history_len,
        )


def read_policy_settings(checkpoint: str | Path) -> PolicySettings:
    """The settings in ``checkpoint``'s ``policy_settings.json``; the release's when it has none (see the
    module docstring). A malformed file is a ConfigError naming the file and the key."""
    path = Path(checkpoint) / FILE_NAME
    if not path.is_file():
        return PolicySettings()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a JSON object of policy settings ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object of policy settings, got {type(values).__name__}")
    try:
        return from_mapping(PolicySettings, values, where=str(path))
    except ConfigError as error:  # the dataclass's own check does not name the file
        message = str(error)
        raise ConfigError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def write_policy_settings(checkpoint: str | Path, settings: PolicySettings) -> Path:
    """Write ``settings`` into the checkpoint folder ``checkpoint``; returns the file."""
    path = Path(checkpoint) / FILE_NAME
    path.write_text(json.dumps(asdict(settings), indent=1) + "\n", encoding="utf-8")
    return path
