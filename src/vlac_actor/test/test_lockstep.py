"""LockstepActor: every running arm's request in one batch per round, answers routed back, leaving arms."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from actor_testing import make_observation

from vlac_actor.lockstep import LockstepActor
from vlac_core.action_text import format_action
from vlac_core.types import DeltaAction, PolicyAction


class EchoBackend:
    """Answers each request with an action whose dx is the observation's seq; seq 99 is refused."""

    policy_version = 7

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, bool]]] = []

    def act(self, requests):
        self.batches.append([(r.observation.seq, r.sampling.greedy) for r in requests])
        answers = []
        for r in requests:
            if r.observation.seq == 99:
                answers.append(ValueError(f"bad observation {r.observation.seq}"))
                continue
            delta = DeltaAction(r.observation.seq, 0, 0, 0, 0, 0, 1)
            answers.append(PolicyAction(delta, format_action(delta), (), 0.0, self.policy_version, 0.0, 0.0, "arm", 0))
        return answers


def _run_arms(actor: LockstepActor, plans: dict[str, list[int]]) -> dict[str, list]:
    """Each arm asks for its seqs in turn (in its own thread), then leaves; what each got back."""
    got: dict[str, list] = {name: [] for name in plans}

    def arm(name: str) -> None:
        try:
            for seq in plans[name]:
                try:
                    got[name].append(actor.act(replace(make_observation(), seq=seq), greedy=True).delta.as_tuple()[0])
                except ValueError as error:
                    got[name].append(str(error))
        finally:
            actor.leave()

    threads = [threading.Thread(target=arm, args=(name,)) for name in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    return got


def test_every_running_arm_is_decoded_in_one_batch_and_leaving_arms_are_not_waited_for():
    backend = EchoBackend()
    actor = LockstepActor(backend, arms=3)
    got = _run_arms(actor, {"a": [10, 11, 12], "b": [20, 21], "c": [30]})
    assert got == {"a": [10, 11, 12], "b": [20, 21], "c": [30]}  # each arm gets its own answer
    assert actor.batches == [3, 2, 1]  # never a lone request while others are about to ask
    assert sorted(backend.batches[0]) == [(10, True), (20, True), (30, True)]
    assert actor.policy_version == 7


def test_a_refused_request_fails_only_its_own_arm():
    actor = LockstepActor(EchoBackend(), arms=2)
    got = _run_arms(actor, {"a": [99, 11], "b": [20, 21]})
    assert got == {"a": ["bad observation 99", 11], "b": [20, 21]}
    assert actor.batches == [2, 2]


def test_arms_must_be_counted():
    with pytest.raises(ValueError, match="arms=0"):
        LockstepActor(EchoBackend(), arms=0)
    actor = LockstepActor(EchoBackend(), arms=1)
    actor.leave()
    with pytest.raises(RuntimeError, match="every arm has left"):
        actor.act(make_observation(), greedy=True)
