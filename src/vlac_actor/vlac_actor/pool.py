"""A pool of model replicas: requests go to an idle replica, FIFO when all are busy.

One worker thread per replica pulls from one shared FIFO queue, so a request is assigned the moment a
replica is free, and requests are served in arrival order (the paper: observations assigned to an
idle replica within 0.1 s). A worker takes up to ``max_batch`` queued requests at once and decodes
them as one batch. The time from a request's arrival to its assignment is measured per request
(ActorResult.queue_wait_s) and summarised in ``stats()``.

A new policy version is swapped in between requests: ``reload`` builds the new replicas in the
caller's thread (the old ones keep serving meanwhile), then each replica switches before its next
batch; in-flight requests finish on the weights they started with, and every PolicyAction carries
the version that produced it. Torch releases the GIL in its kernels, so replica threads overlap.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from .backend import ActorBackend
from .request import ActorRequest, ActorResult

_STOP = object()


class PoolClosed(RuntimeError):
    """The pool was closed before the request could be served."""


class PoolFull(RuntimeError):
    """More requests are waiting than the pool accepts (``max_queue``)."""


@dataclass(frozen=True)
class PoolStats:
    """A snapshot for diagnostics; waits/latencies summarise the last ``window`` served requests (seconds)."""

    replicas: int
    busy_replicas: int
    queue_depth: int
    replica_versions: tuple[int, ...]
    served: int
    failed: int
    queue_wait_p50_s: float
    queue_wait_max_s: float
    latency_p50_s: float
    latency_max_s: float


@dataclass
class _Pending:
    request: ActorRequest
    future: Future


def _p50(values) -> float:
    return float(statistics.median(values)) if values else 0.0


class ReplicaPool:
    """Thread-based pool over ``backends`` (one per replica/device)."""

    def __init__(
        self, backends: Sequence[ActorBackend], max_batch: int = 1, max_queue: int = 0, window: int = 256
    ) -> None:
        if not backends:
            raise ValueError("a replica pool needs at least one backend")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._queue: queue.Queue = queue.Queue()
        self._backends = list(backends)
        self._staged: list[ActorBackend | None] = [None] * len(backends)
        self._busy = [False] * len(backends)
        self._lock = threading.Condition()
        self._take_lock = threading.Lock()
        self._served = 0
        self._failed = 0
        self._waits: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"actor-replica-{i}", daemon=True)
            for i in range(len(backends))
        ]
        for thread in self._threads:
            thread.start()

    # -- clients --------------------------------------------------------------------------------

    def submit(self, request: ActorRequest) -> Future:
        """Queue ``request``; the future resolves to an ActorResult or raises the request's error."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                future.set_exception(PoolClosed("the actor pool is closed"))
                return future
            if self.max_queue and self._queue.qsize() >= self.max_queue:
                future.set_exception(PoolFull(f"{self._queue.qsize()} requests already wait (max_queue)"))
                return future
            self._queue.put(_Pending(request, future))
        return future

    def act(self, request: ActorRequest, timeout_s: float | None = None) -> ActorResult:
        """Submit and wait: the ActorResult, or the request's error."""
        return self.submit(request).result(timeout=timeout_s)

    # -- policy versions ------------------------------------------------------------------------

    @property
    def versions(self) -> tuple[int, ...]:
        """The policy version each replica serves now."""
        with self._lock:
            return tuple(b.policy_version for b in self._backends)

    def reload(self, version: int, build: Callable[[int], ActorBackend]) -> None:
        """Build replica ``i``'s new backend with ``build(i)`` and swap each in between requests.

        Versions only move forward: announcing an older or equal version is a ValueError (a stale
        or repeated announcement must not roll replicas back).
        """
        with self._lock:
            newest = max(
                [b.policy_version for b in self._backends] + [s.policy_version for s in self._staged if s is not None]
            )
        if version <= newest:
            raise ValueError(f"policy version {version} is not newer than the pool's version {newest}")
        fresh = [build(i) for i in range(len(self._backends))]  # slow part, outside the lock
        for backend in fresh:
            if backend.policy_version != version:
                raise ValueError(f"built backend says version {backend.policy_version}, expected {version}")
        with self._lock:
            for i, backend in enumerate(fresh):
                if self._busy[i]:
                    self._staged[i] = backend  # taken at the start of its next batch
                else:
                    self._backends[i], self._staged[i] = backend, None
            self._lock.notify_all()

    def wait_settled(self, timeout_s: float | None = None) -> bool:
        """Block until no replica has a staged backend left to swap in; False on time-out.

        A staged backend waits only for its replica's batch in flight, so this returns within one batch.
        """
        with self._lock:
            return self._lock.wait_for(lambda: all(s is None for s in self._staged), timeout=timeout_s)

    def wait_for_version(self, version: int, timeout_s: float | None = None) -> bool:
        """Block until every replica serves ``version`` or newer; False on time-out."""
        with self._lock:
            return self._lock.wait_for(
                lambda: all(b.policy_version >= version for b in self._backends), timeout=timeout_s
            )

    # -- diagnostics ----------------------------------------------------------------------------

    def stats(self) -> PoolStats:
        with self._lock:
            waits, latencies = list(self._waits), list(self._latencies)
            return PoolStats(
                replicas=len(self._backends),
                busy_replicas=sum(self._busy),
                queue_depth=self._queue.qsize(),
                replica_versions=tuple(b.policy_version for b in self._backends),
                served=self._served,
                failed=self._failed,
                queue_wait_p50_s=_p50(waits),
                queue_wait_max_s=max(waits, default=0.0),
                latency_p50_s=_p50(latencies),
                latency_max_s=max(latencies, default=0.0),
            )

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the batches in flight, fail what still waits with PoolClosed, stop the workers."""
        with self._lock:
            self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP and not item.future.done():
                item.future.set_exception(PoolClosed("the actor pool closed before this request was served"))

    def __enter__(self) -> ReplicaPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- workers --------------------------------------------------------------------------------

    def _take_batch(self) -> tuple[list[_Pending], float] | None:
        """The next FIFO batch and its assignment time, or None to stop.

        One idle worker at a time waits on the queue (the others wait for ``_take_lock``), so
        assignment order and assignment times follow arrival order exactly.
        """
        with self._take_lock:
            first = self._queue.get()
            if first is _STOP:
                return None
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)  # another worker's, or ours after this batch
                    break
                batch.append(item)
            return batch, time.monotonic()

    def _work(self, replica: int) -> None:
        while True:
            taken = self._take_batch()
            if taken is None:
                return
            batch, assigned_s = taken
            with self._lock:
                self._busy[replica] = True
                if self._staged[replica] is not None:
                    self._backends[replica], self._staged[replica] = self._staged[replica], None
                    self._lock.notify_all()
                backend = self._backends[replica]
            live = [p for p in batch if p.future.set_running_or_notify_cancel()]
            try:
                outcomes = backend.act([p.request for p in live]) if live else []
            except Exception as error:  # a backend that raises instead of returning errors
                outcomes = [error] * len(live)
            done_s = time.monotonic()
            with self._lock:
                self._busy[replica] = False
                if self._staged[replica] is not None:  # swap as soon as the batch is done, not at the next one
                    self._backends[replica], self._staged[replica] = self._staged[replica], None
                self._lock.notify_all()
                for pending, outcome in zip(live, outcomes, strict=True):
                    wait_s = assigned_s - pending.request.received_s
                    if isinstance(outcome, Exception):
                        self._failed += 1
                    else:
                        self._served += 1
                        self._waits.append(wait_s)
                        self._latencies.append(done_s - pending.request.received_s)
            for pending, outcome in zip(live, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(
                        ActorResult(
                            action=outcome,
                            queue_wait_s=assigned_s - pending.request.received_s,
                            replica=replica,
                            assigned_s=assigned_s,
                        )
                    )
