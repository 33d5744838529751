"""The concrete classes behind the episode loop's Protocols that only the embedded runtime needs (no ROS).

- The robot is ``piper_driver.sim.arm.SimArm``, the one simulated arm (the arm node's sim backend
  and the scripted-expert rollouts drive it too); the critic shared by every arm is
  ``vlac_critic.batching.BatchingCritic`` (the critic node serves through it too).
- ``ServiceActor``: ``vlac_actor.ActorService`` (its ``ReplicaPool``): an answer with ok=false
  becomes an ``ActorError``, so the loop marks the episode aborted. Inside ``pinned()`` it asks the
  service's pinned copy instead (an evaluation's one version; the other arms' actors are unaffected).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from vlac_core.types import Observation, PolicyAction


class ActorError(RuntimeError):
    """The actor answered a request with an error (the reason is the message)."""


class ServiceActor:
    """``ActorService`` as the loop's Actor; one per loop that pins (the evaluation arm has its own)."""

    def __init__(self, service) -> None:
        self.service = service
        self._pinned = None  # the service's PinnedPolicy while inside pinned()

    @property
    def policy_version(self) -> int:
        pinned = self._pinned
        return pinned.version if pinned is not None else max(self.service.pool.versions)

    @contextlib.contextmanager
    def pinned(self, max_batch: int | None = None) -> Iterator[int]:
        """Every request in the block is answered by one version (yielded); other actors keep updating.

        ``max_batch``: requests the pinned copy decodes at once (``ActorService.pinned_policy``)."""
        with self.service.pinned_policy(max_batch) as policy:
            self._pinned = policy
            try:
                yield policy.version
            finally:
                self._pinned = None

    def act(self, observation: Observation, greedy: bool) -> PolicyAction:
        pinned = self._pinned
        reply = (pinned or self.service).act(observation, greedy=greedy)
        if not reply.ok:
            raise ActorError(reply.error)
        return reply.action
