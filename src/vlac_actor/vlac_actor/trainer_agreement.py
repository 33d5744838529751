"""Which of the actor's settings the trainer must repeat, and the first one where they differ.

Why: the trainer recomputes every action's log-probability under its own action grammar and prompt,
from the actor's starting policy; if a setting that shapes them differs, the PPO ratios compare
different things and training goes wrong without any error. The embedded session checks its
parameter file with this (``vlac_trainer.online.wiring.check_actor_trainer_agree``); the actor node checks
the parameters of the trainer node that announces a policy version before loading it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: ActorConfig fields that TrainerConfig repeats under the same names (the start, the input checks). The
#: grammar and the prompt are not among them: both read them from the starting checkpoint (policy_settings).
SHARED_WITH_TRAINER = (
    "policy_version",
    "allow_fresh_value_head",
    "max_task_chars",
    "max_abs_position_mm",
)


def trainer_disagreement(
    actor, trainer_values: Mapping[str, Any], *, actor_name: str = "actor_node", trainer_name: str = "trainer_node"
) -> str | None:
    """The first shared setting where ``trainer_values`` differ from ``actor`` (an ActorConfig), or None.

    A key missing from ``trainer_values`` (or None: a trainer that does not declare it) is not compared.
    """
    for key in SHARED_WITH_TRAINER:
        theirs = trainer_values.get(key)
        ours = getattr(actor, key)
        if theirs is not None and theirs != ours:
            return (
                f"{trainer_name}.{key} = {theirs!r} but {actor_name}.{key} = {ours!r}; "
                "the trainer must score actions as the actor makes them"
            )
    return None
