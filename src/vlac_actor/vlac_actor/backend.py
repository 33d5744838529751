"""Model backends behind the replica pool: one object = one replica of one policy version.

A backend answers a batch of requests in one go and returns, per request, a PolicyAction or the
exception that request caused (bad input fails only its own request, never the batch).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import torch

from vlac_core.types import PolicyAction

from .decoding import decode_actions
from .inputs import ActorInputError, InputLimits, actor_content
from .policy import Policy
from .request import ActorRequest


class ActorBackend(Protocol):
    """What the pool needs from a replica."""

    policy_version: int

    def act(self, requests: Sequence[ActorRequest]) -> list[PolicyAction | Exception]: ...


class TorchBackend:
    """Structured decoding with torch: exact log-probs (no recompute needed) and the value head."""

    def __init__(self, policy: Policy, input_limits: InputLimits | None = None, seed: int | None = None) -> None:
        self.policy = policy
        self.input_limits = input_limits or InputLimits()
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    @property
    def policy_version(self) -> int:
        return self.policy.version

    def act(self, requests: Sequence[ActorRequest]) -> list[PolicyAction | Exception]:
        results: list[PolicyAction | Exception] = [ActorInputError("not decoded")] * len(requests)
        ready = []
        for i, request in enumerate(requests):
            try:
                ready.append((i, *actor_content(request.observation, self.input_limits, request.history)))
            except (ActorInputError, ValueError) as error:
                results[i] = error
        if not ready:
            return results
        try:
            decoded = decode_actions(
                self.policy,
                [content for _, content, _ in ready],
                [images for _, _, images in ready],
                [requests[i].sampling for i, _, _ in ready],
                self.generator,
            )
        except Exception as error:  # a model failure fails this batch's requests, not the replica
            for i, _, _ in ready:
                results[i] = error
            return results
        done_s = time.monotonic()
        for (i, _, _), action in zip(ready, decoded, strict=True):
            obs = requests[i].observation
            results[i] = PolicyAction(
                delta=action.delta,
                text=action.text,
                token_logprobs=action.token_logprobs,
                value=action.value,
                policy_version=self.policy.version,
                obs_stamp_s=obs.stamp_s,
                inference_latency_s=done_s - requests[i].received_s,
                robot_id=obs.robot_id,
                obs_seq=obs.seq,
                logprob_needs_recompute=False,
            )
        return results
