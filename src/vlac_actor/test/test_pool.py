"""Replica pool: FIFO assignment, nothing lost under concurrency, version tags that match the weights."""

from __future__ import annotations

import threading

import pytest
from actor_testing import make_observation

from vlac_actor.backend import TorchBackend
from vlac_actor.decoding import SamplingSettings, decode_actions
from vlac_actor.inputs import ActorInputError, InputLimits, actor_content
from vlac_actor.policy import load_policy
from vlac_actor.pool import PoolClosed, ReplicaPool
from vlac_actor.request import ActorRequest

GREEDY = SamplingSettings(greedy=True)


def _backend(path, version, seed=0, limits=None):
    policy = load_policy(path, version=version, device="cpu")
    return TorchBackend(policy, limits or InputLimits(), seed=seed)


@pytest.fixture(scope="module")
def v1_backends(policy_dir):
    return [_backend(policy_dir, 1, seed=i) for i in range(2)]


def _request(seed, sampling=GREEDY, **kwargs):
    return ActorRequest(make_observation(seed, **kwargs), sampling=sampling)


def test_requests_are_assigned_in_arrival_order(v1_backends):
    with ReplicaPool(v1_backends, max_batch=1) as pool:
        requests = [_request(i) for i in range(10)]
        futures = [pool.submit(r) for r in requests]
        results = [f.result(timeout=60) for f in futures]
    assigned = [r.assigned_s for r in results]
    assert assigned == sorted(assigned)
    assert {r.replica for r in results} == {0, 1}  # both replicas took work
    # waits are measured from arrival and later arrivals queued behind busy replicas
    assert all(r.queue_wait_s >= 0 for r in results)
    assert results[-1].queue_wait_s > results[0].queue_wait_s


def test_no_request_is_lost_or_mixed_up_under_concurrent_clients(v1_backends):
    clients, per_client = 6, 4
    answers: dict[tuple[int, int], object] = {}
    lock = threading.Lock()

    def client(c):
        for k in range(per_client):
            request = _request(c * 10 + k, sampling=SamplingSettings(temperature=1.0))
            result = pool.act(request, timeout_s=120)
            with lock:
                answers[(c, k)] = (request, result)

    with ReplicaPool(v1_backends, max_batch=3) as pool:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = pool.stats()
    assert len(answers) == clients * per_client
    for request, result in answers.values():
        action = result.action
        assert (action.robot_id, action.obs_seq) == (request.observation.robot_id, request.observation.seq)
        assert action.obs_stamp_s == request.observation.stamp_s
        assert action.inference_latency_s >= result.queue_wait_s >= 0
        assert action.policy_version == 1
    assert stats.served == clients * per_client and stats.failed == 0 and stats.queue_depth == 0


def test_reload_tags_every_action_with_the_weights_that_made_it(policy_dir, policy_dir_v2):
    obs_seed = 5
    content, images = actor_content(make_observation(obs_seed), InputLimits())
    v1_text = decode_actions(load_policy(policy_dir), [content], [images], [GREEDY])[0].text
    v2_text = decode_actions(load_policy(policy_dir_v2), [content], [images], [GREEDY])[0].text
    assert v1_text != v2_text  # otherwise the test could not tell the versions apart

    pool = ReplicaPool([_backend(policy_dir, 1, seed=i) for i in range(2)], max_batch=2)
    futures = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            futures.append(pool.submit(_request(obs_seed)))
            futures[-1].result(timeout=60)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    while len(futures) < 6:
        threading.Event().wait(0.01)
    pool.reload(2, lambda i: _backend(policy_dir_v2, 2, seed=i))
    assert pool.wait_for_version(2, timeout_s=60)
    after = [pool.submit(_request(obs_seed)) for _ in range(4)]
    stop.set()
    for t in threads:
        t.join()
    results = [f.result(timeout=60) for f in futures + after]
    pool.close()

    assert {r.action.policy_version for r in results} == {1, 2}
    for r in results:
        assert r.action.text == {1: v1_text, 2: v2_text}[r.action.policy_version]
    assert all(r.action.policy_version == 2 for r in (f.result() for f in after))
    for replica in (0, 1):  # a replica never goes back to the old weights
        versions = [
            r.action.policy_version for r in sorted(results, key=lambda r: r.assigned_s) if r.replica == replica
        ]
        assert versions == sorted(versions)
    with pytest.raises(ValueError, match="version 2 is not newer than the pool's version 2"):
        pool.reload(2, lambda i: _backend(policy_dir_v2, 2))


def test_a_bad_request_fails_alone_and_the_pool_keeps_serving(policy_dir):
    backend = _backend(policy_dir, 1, limits=InputLimits(num_views=2))
    with ReplicaPool([backend], max_batch=4) as pool:
        futures = [pool.submit(_request(i, n_views=1 if i == 1 else 2)) for i in range(4)]
        with pytest.raises(ActorInputError, match="has 1 camera view"):
            futures[1].result(timeout=60)
        assert all(futures[i].result(timeout=60).action.policy_version == 1 for i in (0, 2, 3))
        assert pool.act(_request(7, n_views=2), timeout_s=60).action.text
        assert pool.stats().failed == 1


def test_closing_fails_waiting_requests_instead_of_dropping_them(policy_dir):
    pool = ReplicaPool([_backend(policy_dir, 1)], max_batch=1)
    futures = [pool.submit(_request(i)) for i in range(6)]
    pool.close()
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result(timeout=60).action.policy_version)
        except PoolClosed:
            outcomes.append("closed")
    assert len(outcomes) == 6 and outcomes[0] == 1
    with pytest.raises(PoolClosed):
        pool.act(_request(0))
