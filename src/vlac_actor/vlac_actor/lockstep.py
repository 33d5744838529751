"""One policy for K arms stepping together: their requests decoded as one batch per step.

``LockstepActor`` is the episode loop's Actor (``act(observation, greedy)``, ``policy_version``)
shared by the loops of K arms run side by side, each in its own thread (``vlac actor eval``). A call
waits until every arm still running has asked, then the last caller decodes all of them in one
``ActorBackend.act`` batch (``TorchBackend``: the actor's batched structured decoding) and each arm
gets its own action. An arm with nothing left to run calls ``leave()`` so the others no longer wait
for it. Unlike the replica pool (which decodes whatever is queued when a replica is free, so a lone
first request goes alone), the batch is always every running arm: K arms cost one decode per step.

Errors stay with their request: a request the backend refused raises in its own arm only.
An arm must either ask or leave: an arm stuck elsewhere holds the others (evaluation only; the
training runtimes use the replica pool).
"""

from __future__ import annotations

import threading

from vlac_core.types import Observation, PolicyAction

from .backend import ActorBackend
from .decoding import SamplingSettings
from .request import ActorRequest


class LockstepActor:
    """``arms`` callers, one batch per round; thread-safe."""

    def __init__(self, backend: ActorBackend, arms: int) -> None:
        if arms < 1:
            raise ValueError(f"arms={arms}: expected at least 1")
        self.backend = backend
        self.batches: list[int] = []  # requests per decoded batch, in order (diagnostics, tests)
        self._running = arms
        self._waiting: list[tuple[object, ActorRequest]] = []
        self._answers: dict[object, PolicyAction | Exception] = {}
        self._cond = threading.Condition()

    @property
    def policy_version(self) -> int:
        return self.backend.policy_version

    def act(self, observation: Observation, greedy: bool) -> PolicyAction:
        """This arm's action, decoded in one batch with every other running arm's request."""
        ticket = object()
        request = ActorRequest(observation=observation, sampling=SamplingSettings(greedy=greedy))
        with self._cond:
            if self._running < 1:
                raise RuntimeError("LockstepActor: every arm has left")
            self._waiting.append((ticket, request))
            self._decode_if_all_asked()
            self._cond.wait_for(lambda: ticket in self._answers)
            answer = self._answers.pop(ticket)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def leave(self) -> None:
        """This arm asks no more; the others stop waiting for it."""
        with self._cond:
            if self._running < 1:
                raise RuntimeError("LockstepActor: more arms left than joined")
            self._running -= 1
            self._decode_if_all_asked()

    def _decode_if_all_asked(self) -> None:
        """With the lock held: once every running arm waits, decode them all and wake them."""
        if not self._waiting or len(self._waiting) < self._running:
            return
        batch, self._waiting = self._waiting, []
        try:  # the others are all waiting for this batch, so decoding under the lock holds no one up
            outcomes = self.backend.act([request for _, request in batch])
        except Exception as error:  # a backend that raises instead of answering per request
            outcomes = [error] * len(batch)
        self.batches.append(len(batch))
        for (ticket, _), outcome in zip(batch, outcomes, strict=True):
            self._answers[ticket] = outcome
        self._cond.notify_all()
