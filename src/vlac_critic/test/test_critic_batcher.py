"""The shared critic (session arms, critic node callbacks): concurrent calls batched, answers routed, errors apart."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from vlac_critic.batching import BatchingCritic, CriticClosed


@dataclass
class Score:
    progress_pct: float | None = None
    done_prob: float | None = None


def frame(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, dtype=np.uint8)


class FakeCritic:
    """vlac_critic.Critic's batch API: progress = later - earlier (pixel value), done = value / 100.

    The first call blocks until ``release`` is set, so the test can line requests up behind it. A frame
    of value 255 is a bad input (the real critic's CriticInputError) and fails the whole call.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()  # the first call is in the critic
        self.release = threading.Event()
        self.calls: list[tuple[str, str, int]] = []

    def _check(self, frames):
        if not self.calls:
            self.entered.set()
            self.release.wait(10)
        if any(int(f[0, 0, 0]) == 255 for f in frames):
            raise ValueError("bad frame (test)")

    def progress(self, task, earlier, later, reference=None, first_frame=None):
        self._check([*earlier, *later])
        self.calls.append(("progress", task, len(earlier)))
        return [Score(progress_pct=float(b[0, 0, 0]) - float(a[0, 0, 0])) for a, b in zip(earlier, later, strict=True)]

    def done(self, task, images):
        self._check(images)
        self.calls.append(("done", task, len(images)))
        return [Score(done_prob=float(im[0, 0, 0]) / 100) for im in images]


def run_concurrently(batcher: BatchingCritic, fake: FakeCritic, calls: list) -> list:
    """Start every call on its own thread; release the critic once all but the first are queued."""
    results: list = [None] * len(calls)

    def worker(i, fn, args):
        try:
            results[i] = fn(*args)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=worker, args=(i, fn, args)) for i, (fn, args) in enumerate(calls)]
    threads[0].start()
    assert fake.entered.wait(10)  # the first request is being scored, alone
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 10
    while batcher._queue.qsize() < len(calls) - 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    fake.release.set()
    for t in threads:
        t.join(10)
    return results


@pytest.fixture
def rig():
    fake = FakeCritic()
    batcher = BatchingCritic(fake)
    yield batcher, fake
    fake.release.set()
    batcher.close()


def test_requests_waiting_together_are_scored_in_one_call_and_each_gets_its_own_answer(rig):
    batcher, fake = rig
    calls = [(batcher.progress_pct, (frame(k), frame(k + 10 * k), "pick", frame(0))) for k in range(1, 5)]
    assert run_concurrently(batcher, fake, calls) == [10.0, 20.0, 30.0, 40.0]
    assert batcher.batches == [1, 3] and fake.calls[1] == ("progress", "pick", 3)


def test_kinds_and_tasks_are_batched_apart(rig):
    batcher, fake = rig
    calls = [
        (batcher.done_prob, (frame(50), "pick")),
        (batcher.done_prob, (frame(90), "pick")),
        (batcher.progress_pct, (frame(1), frame(3), "pick", frame(0))),
        (batcher.done_prob, (frame(20), "sweep")),
        (batcher.done_prob, (frame(30), "pick")),
    ]
    assert run_concurrently(batcher, fake, calls) == [0.5, 0.9, 2.0, 0.2, 0.3]
    assert sorted(fake.calls[1:]) == [("done", "pick", 2), ("done", "sweep", 1), ("progress", "pick", 1)]


def test_a_bad_request_fails_alone_and_the_rest_of_its_batch_is_scored(rig):
    batcher, fake = rig
    calls = [
        (batcher.done_prob, (frame(10), "pick")),
        (batcher.done_prob, (frame(40), "pick")),
        (batcher.done_prob, (frame(255), "pick")),
        (batcher.done_prob, (frame(60), "pick")),
    ]
    first, good, bad, other = run_concurrently(batcher, fake, calls)
    assert (first, good, other) == (0.1, 0.4, 0.6)
    assert isinstance(bad, ValueError) and "bad frame" in str(bad)


def test_calls_after_close_raise(rig):
    batcher, fake = rig
    fake.release.set()
    assert batcher.done_prob(frame(70), "pick") == 0.7
    batcher.close()
    with pytest.raises(CriticClosed):
        batcher.done_prob(frame(70), "pick")


def test_multi_pair_requests_of_the_critic_api_share_a_call_and_get_their_own_slices(rig):
    batcher, fake = rig
    pairs = lambda ks: ([frame(k) for k in ks], [frame(2 * k) for k in ks])  # noqa: E731
    calls = [
        (batcher.done, ("pick", [frame(10)])),
        (batcher.progress, ("pick", *pairs([1, 2]))),
        (batcher.progress, ("pick", *pairs([3]))),
        (batcher.progress, ("pick", *pairs([4, 5, 6]))),
    ]
    _first, two, one, three = run_concurrently(batcher, fake, calls)
    assert [s.progress_pct for s in two] == [1.0, 2.0] and [s.progress_pct for s in one] == [3.0]
    assert [s.progress_pct for s in three] == [4.0, 5.0, 6.0]
    assert fake.calls[1] == ("progress", "pick", 6) and batcher.batches == [1, 3]


def test_done_requests_of_other_tasks_are_not_mixed(rig):
    batcher, fake = rig
    calls = [
        (batcher.done, ("pick", [frame(10)])),
        (batcher.done, ("place", [frame(20)])),
        (batcher.done, ("pick", [frame(30)])),
        (batcher.done, ("place", [frame(40)])),
    ]
    answers = [[s.done_prob for s in r] for r in run_concurrently(batcher, fake, calls)]
    assert answers == [[0.1], [0.2], [0.3], [0.4]]
    assert sorted(fake.calls[1:]) == [("done", "pick", 1), ("done", "place", 2)]


def test_an_empty_or_mismatched_request_goes_alone_and_the_critic_names_its_fault(rig):
    batcher, fake = rig
    fake.release.set()

    class Strict(FakeCritic):
        def progress(self, task, earlier, later, reference=None, first_frame=None):
            if not earlier or len(earlier) != len(later):
                raise ValueError(f"earlier has {len(earlier)} frames but later has {len(later)}")
            return super().progress(task, earlier, later)

    strict = Strict()
    strict.release.set()
    batcher.critic = strict
    with pytest.raises(ValueError, match="earlier has 2 frames but later has 1"):
        batcher.progress("pick", [frame(1), frame(2)], [frame(3)])
    with pytest.raises(ValueError, match="earlier has 0 frames"):
        batcher.progress("pick", [], [])
    assert [s.progress_pct for s in batcher.progress("pick", [frame(1)], [frame(4)])] == [3.0]
