"""From an observation to the actor's prompt: checks, camera views, state text and optional history.

The prompt is the release's actor prompt (vlac_core.prompts.actor_prompt) character for character.
An optional history of the last ``history_len`` actions (off by default, so the release prompt stays
exact) is inserted right before the closing ``<action>`` tag:

    ... <task> {task} </task> <history> {x: 3mm, ..., open: 1} {x: -2mm, ..., open: 1} </history> <action>

oldest first, each action in the template form (vlac_core.action_text.format_action), separated by a
space. Fewer past actions than ``history_len`` (the start of an episode) write only those; none at
all writes ``<history> </history>`` so the model always sees the same layout when history is on.

Bad input is rejected here, before any model work, with a message naming what is wrong; it costs the
pool nothing and other requests in the same batch are unaffected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlac_core.action_text import format_action, format_state
from vlac_core.prompts import actor_prompt
from vlac_core.types import DeltaAction, Observation

_ACTION_TAG = " <action>"


class ActorInputError(ValueError):
    """A request cannot be answered as given; the message names the field and what is allowed."""


@dataclass(frozen=True)
class InputLimits:
    """What the actor accepts: view count, task length, workspace bound of the state, history length."""

    num_views: int = 1
    max_task_chars: int = 300
    max_abs_position_mm: float = 1000.0
    history_len: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.num_views <= 3:
            raise ValueError(f"num_views must be 1..3, got {self.num_views}")
        if self.history_len < 0:
            raise ValueError(f"history_len must be >= 0, got {self.history_len}")


def history_text(history: Sequence[DeltaAction]) -> str:
    """`` <history> {..} {..} </history>``: the history block inserted before the action tag."""
    return " <history> " + "".join(format_action(a) + " " for a in history) + "</history>"


def actor_content(
    observation: Observation, limits: InputLimits, history: Sequence[DeltaAction] = ()
) -> tuple[str, list[np.ndarray]]:
    """The user CONTENT string and its images for one observation, or ActorInputError."""
    if len(observation.images) < limits.num_views:
        raise ActorInputError(
            f"observation from {observation.robot_id!r} has {len(observation.images)} camera view(s), "
            f"the actor expects {limits.num_views} (num_views)"
        )
    task = observation.task.strip()
    if len(task) > limits.max_task_chars:
        raise ActorInputError(f"task text has {len(task)} characters, at most {limits.max_task_chars} allowed")
    pose = observation.end_pose
    for name in ("x_mm", "y_mm", "z_mm"):
        value = getattr(pose, name)
        if abs(value) > limits.max_abs_position_mm:
            raise ActorInputError(
                f"state {name} = {value:.1f} is outside the arm's range ±{limits.max_abs_position_mm:g} mm"
            )
    if limits.history_len == 0 and history:
        raise ActorInputError(f"got {len(history)} past actions but history is off (history_len 0)")
    prompt = actor_prompt(task, format_state(pose, observation.gripper_open), limits.num_views)
    if limits.history_len > 0:
        recent = list(history)[-limits.history_len :]
        prompt = prompt[: -len(_ACTION_TAG)] + history_text(recent) + _ACTION_TAG
    # Views beyond num_views (e.g. a wrist camera the policy was not trained with) are not shown to it.
    return prompt, list(observation.images[: limits.num_views])
