"""One critic shared by several arms, with their concurrent calls scored together in batched passes.

Why: on one device a batch of B pairs costs far less than B single calls (bench/critic_latency.py, tiny
model on CPU: 24 ms per pair alone, 13 ms at batch 4), and K arms stepping at once put up to K
requests in front of the critic. A worker thread takes every request waiting when it is free and
scores those that can share a prompt (same kind, task and, in-context, the same reference and first
frame) in one ``Critic.progress`` / ``Critic.done`` call. No waiting is added to form a batch: a
lone arm's request goes at once; batches form while the critic is busy.

Errors stay with the request that caused them: when a batch fails, its requests are scored one by one,
so a bad frame from one arm aborts that arm's episode only (the loop's ABORTED path).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np

_STOP = object()


class CriticClosed(RuntimeError):
    """The shared critic was closed before the request was scored."""


@dataclass
class _Request:
    kind: str  # "progress" or "done"
    task: str
    images: tuple[np.ndarray, ...]  # progress: (earlier, later, first); done: (image,)
    future: Future

    def key(self, in_context: bool) -> tuple:
        """Requests with equal keys share one prompt and go in one batch."""
        first = id(self.images[2]) if self.kind == "progress" and in_context else None
        return self.kind, self.task, first


class BatchingCritic:
    """``vlac_critic.Critic`` as the episode loop's Critic for every arm of a session (thread-safe)."""

    def __init__(self, critic, reference: list[np.ndarray] | None = None) -> None:
        self.critic = critic
        self.reference = reference
        self.batches: list[int] = []  # requests per successful batched call, in order (diagnostics, tests)
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="critic-batcher", daemon=True)
        self._worker.start()

    # -- the loop's Critic protocol -------------------------------------------------------------

    def progress_pct(
        self, earlier_image: np.ndarray, later_image: np.ndarray, task: str, first_image: np.ndarray
    ) -> float | None:
        return self._submit("progress", task, (earlier_image, later_image, first_image))

    def done_prob(self, image: np.ndarray, task: str) -> float | None:
        return self._submit("done", task, (image,))

    def batch_stats(self) -> dict[str, float | int]:
        """Batched calls so far and requests per call (how much the arms' calls overlapped)."""
        batches = list(self.batches)
        return {
            "batched_calls": len(batches),
            "requests": sum(batches),
            "mean_batch": round(sum(batches) / len(batches), 3) if batches else 0.0,
            "max_batch": max(batches, default=0),
        }

    def close(self) -> None:
        """Score what is queued, then stop; later calls raise CriticClosed."""
        self._closed = True
        self._queue.put(_STOP)
        self._worker.join()

    # -- worker ---------------------------------------------------------------------------------

    def _submit(self, kind: str, task: str, images: tuple[np.ndarray, ...]) -> Any:
        if self._closed:
            raise CriticClosed("the shared critic is closed")
        request = _Request(kind, task, images, Future())
        self._queue.put(request)
        while True:
            try:
                return request.future.result(timeout=0.5)
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
                groups.setdefault(request.key(bool(self.reference)), []).append(request)
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
        for request, answer in zip(group, answers, strict=True):
            request.future.set_result(answer)

    def _call(self, group: list[_Request]) -> list[float | None]:
        head = group[0]
        if head.kind == "done":
            return [s.done_prob for s in self.critic.done(head.task, [r.images[0] for r in group])]
        scores = self.critic.progress(
            head.task,
            [r.images[0] for r in group],
            [r.images[1] for r in group],
            reference=self.reference,
            first_frame=head.images[2] if self.reference else None,
        )
        return [s.progress_pct for s in scores]

    def _fail_rest(self) -> None:
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                return
            if request is not _STOP:
                request.future.set_exception(CriticClosed("the shared critic closed before scoring this request"))
