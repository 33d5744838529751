"""What a client hands the actor pool and what it gets back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from vlac_core.types import DeltaAction, Observation, PolicyAction

from .decoding import SamplingSettings


@dataclass(frozen=True)
class ActorRequest:
    """One observation to act on.

    ``received_s`` (time.monotonic) is when the actor received it: queue wait and inference latency
    are measured from there. ``history`` holds the robot's last actions, oldest first (used only when
    the actor's ``history_len`` > 0).
    """

    observation: Observation
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    history: tuple[DeltaAction, ...] = ()
    received_s: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ActorResult:
    """The action, how long the request waited for an idle replica (received -> assigned, seconds),
    which replica served it and when it was assigned (time.monotonic)."""

    action: PolicyAction
    queue_wait_s: float
    replica: int
    assigned_s: float
