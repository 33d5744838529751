"""One critic shared by several callers, with their concurrent requests scored together in batched passes.

Why: on one device a batch of B pairs costs far less than B single calls (bench/critic_latency.py, tiny
model on CPU: 24 ms per pair alone, 13 ms at batch 4), and K arms stepping at once put up to K
requests in front of the critic. A worker thread takes every request waiting when it is free and
scores those that can share a prompt (same kind and task; in-context, the same reference and first
frame) in one ``Critic.progress`` / ``Critic.done`` call. No waiting is
added to form a batch: a lone request goes at once; batches form while the critic is busy.

Both runtimes use it: the embedded session's arms call ``progress_pct`` / ``done_prob`` (the episode
loop's Critic protocol), the critic node's service callbacks call ``progress`` / ``done`` (the
``Critic`` API, so ``vlac_critic.requests`` answers requests through it unchanged).

Errors stay with the request that caused them: when a batch fails, its requests are scored one by one,
so a bad frame from one arm aborts that arm's episode only (the loop's ABORTED path) and a malformed
service request gets its own error answer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np

_STOP = object()
#: How often a waiting caller checks that the worker is still alive, s (not a time-out).
_ALIVE_POLL_S = 0.5


class CriticClosed(RuntimeError):
    """The shared critic was closed before the request was scored."""


@dataclass
class _Request:
    kind: str  # "progress" or "done"
    task: str
    frames: tuple[Sequence[np.ndarray], ...]  # progress: (earlier, later); done: (images,)
    reference: Sequence[np.ndarray] | None  # progress, in-context mode
    first_frame: np.ndarray | None  # progress, in-context mode
    future: Future

    def __len__(self) -> int:
        return len(self.frames[0])

    def key(self) -> tuple:
        """Requests with equal keys share one prompt and go in one batch.

        An empty request, or one whose earlier/later lengths differ, goes alone: the critic names the fault.
        """
        if not len(self) or any(len(f) != len(self) for f in self.frames):
            return "alone", id(self)
        if self.kind == "done":
            return self.kind, self.task
        if self.reference is not None and len(self.reference) > 0:
            return self.kind, self.task, id(self.reference), id(self.first_frame)
        return self.kind, self.task, None, None


class BatchingCritic:
    """A ``vlac_critic.Critic`` shared by threads (arms, service callbacks); thread-safe.

    ``reference`` is the session's in-context reference trajectory, used by ``progress_pct``.
    """

    def __init__(self, critic, reference: list[np.ndarray] | None = None) -> None:
        self.critic = critic
        self.reference = reference
        self.batches: list[int] = []  # requests per successful batched call, in order (diagnostics, tests)
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="critic-batcher", daemon=True)
        self._worker.start()

    @property
    def stats(self):
        """The wrapped critic's counters (pairs scored, parse failures, timings)."""
        return self.critic.stats

    # -- the Critic API (critic node) -----------------------------------------------------------

    def progress(
        self,
        task: str,
        earlier: Sequence[np.ndarray],
        later: Sequence[np.ndarray],
        reference: Sequence[np.ndarray] | None = None,
        first_frame: np.ndarray | None = None,
    ) -> list:
        """``Critic.progress``, batched with the other callers' waiting requests."""
        return self._submit("progress", task, (list(earlier), list(later)), reference=reference, first=first_frame)

    def done(self, task: str, images: Sequence[np.ndarray]) -> list:
        """``Critic.done``, batched with the other callers' waiting requests of the same task."""
        return self._submit("done", task, (list(images),))

    # -- the episode loop's Critic protocol (embedded session) ------------------------------------

    def progress_pct(
        self, earlier_image: np.ndarray, later_image: np.ndarray, task: str, first_image: np.ndarray
    ) -> float | None:
        reference = self.reference or None
        first = first_image if reference else None
        return self.progress(task, [earlier_image], [later_image], reference, first)[0].progress_pct

    def done_prob(self, image: np.ndarray, task: str) -> float | None:
        return self.done(task, [image])[0].done_prob

    def batch_stats(self) -> dict[str, float | int]:
        """Batched calls so far and requests per call (how much the callers' requests overlapped)."""
        batches = list(self.batches)
        return {
            "batched_calls": len(batches),
            "requests": sum(batches),
            "mean_batch": round(sum(batches) / len(batches), 3) if batches else 0.0,
            "max_batch": max(batches, default=0),
        }

    def close(self) -> None:
        """Score what is queued, then stop and close the critic (its backend's process, if any).

        Later calls raise CriticClosed.
        """
        self._closed = True
        self._queue.put(_STOP)
        self._worker.join()
        close = getattr(self.critic, "close", None)
        if close is not None:
            close()

    # -- worker ---------------------------------------------------------------------------------

    def _submit(self, kind, task, frames, *, reference=None, first=None) -> Any:
        if self._closed:
            raise CriticClosed("the shared critic is closed")
        request = _Request(kind, task, frames, reference, first, Future())
        self._queue.put(request)
        while True:
            try:
                return request.future.result(timeout=_ALIVE_POLL_S)
            except FutureTimeout:
                if not self._worker.is_alive() and not request.future.done():  # queued after the stop
                    raise CriticClosed("the shared critic closed before scoring this request") from None

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            waiting = [first]
            while True:  # everything queued meanwhile joins this round
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(r is _STOP for r in waiting)
            groups: dict[tuple, list[_Request]] = {}
            for request in (r for r in waiting if r is not _STOP):
                groups.setdefault(request.key(), []).append(request)
            for group in groups.values():
                self._score(group)
            if stop:
                self._fail_rest()
                return

    def _score(self, group: list[_Request]) -> None:
        try:
            answers = self._call(group)
        except Exception as error:
            if len(group) == 1:
                group[0].future.set_exception(error)
                return
            for request in group:  # find the request that broke the batch; the others are scored
                self._score([request])
            return
        self.batches.append(len(group))
        start = 0
        for request in group:
            request.future.set_result(answers[start : start + len(request)])
            start += len(request)

    def _call(self, group: list[_Request]) -> list:
        head = group[0]
        if head.kind == "done":
            images = [im for r in group for im in r.frames[0]]
            return self.critic.done(head.task, images)
        earlier = [im for r in group for im in r.frames[0]]
        later = [im for r in group for im in r.frames[1]]
        return self.critic.progress(head.task, earlier, later, reference=head.reference, first_frame=head.first_frame)

    def _fail_rest(self) -> None:
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                return
            if request is not _STOP:
                request.future.set_exception(CriticClosed("the shared critic closed before scoring this request"))
