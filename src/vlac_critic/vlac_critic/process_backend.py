"""The critic's torch backend in a child process, so the model's Python runs beside the caller's, not under its GIL.

Why: on CPU the tiny sim models are bound by Python (transformers' generate loop), not by matrix work,
and an embedded session runs its training arm, evaluation arm, actor and trainer as threads of one
interpreter: one GIL, about 1.2 of 2 cores busy (bench/session_step.py). The critic is the largest
part of a step and holds no state between calls, so it moves out whole: the child loads the
checkpoint in a :class:`~vlac_critic.backends.TorchBackend` and answers ``generate`` calls sent over a
pipe (``vlac_core.worker_process``). Prompts, parsing and batching stay with the caller's ``Critic``;
the child runs the same model on the same inputs, so the answers are the in-process backend's.

Frames cross the pipe once. A frame sent again (the later frame of one step is the earlier frame of
the next and the image of its done check) goes as a token naming the child's copy, which the child
keeps already resized to the model's input size (the processor leaves an image of that size as it
is, so the model sees the same pixels). The caller keeps the arrays it has sent, the newest
``cache_frames`` of them, so an id it looks up is still that array's, and tells the child which copies
to drop. A frame must not be changed in place after it was scored (the episode loop never does: each
observation is a new array).

A child that dies or fails to load raises :class:`CriticProcessError` in the caller, with what the
child said; an error inside one call is raised for that call and the child serves the next.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vlac_core.worker_process import WorkerProcess, WorkerProcessError, serve

from .backends import BackendOutput

#: Frames the caller keeps sent (and the child keeps resized): more than one in-context prompt holds
#: (11 reference frames, the episode's first frame and the pair).
DEFAULT_CACHE_FRAMES = 16


class CriticProcessError(WorkerProcessError):
    """The critic's child process failed to start, died, or failed a call; the message says which and why."""


class ProcessBackend:
    """A :class:`~vlac_critic.backends.CriticBackend` whose model runs in a spawned child process.

    Thread-safe (one call in flight at a time). ``close()`` stops the child; it is also a daemon, so
    it never outlives the caller.
    """

    name = "torch_process"

    def __init__(
        self,
        checkpoint: str | Path,
        device: str | None = None,
        dtype: str | None = None,
        torch_threads: int = 1,
        cache_frames: int = DEFAULT_CACHE_FRAMES,
    ) -> None:
        if cache_frames < 1:
            raise ValueError(f"cache_frames must be >= 1, got {cache_frames}")
        if torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {torch_threads}")
        self._cache_frames = cache_frames
        # token by id(frame), holding the frame so its id cannot be reused while the child keeps its copy
        self._sent: OrderedDict[int, tuple[int, np.ndarray]] = OrderedDict()
        self._next_token = 0
        self.frames_sent = 0  # frames that crossed the pipe (the rest went as tokens)
        self._lock = threading.Lock()  # a call's frame plan and its request stay in step
        self._worker = WorkerProcess(
            "critic process", _serve, (str(checkpoint), device, dtype, torch_threads), error=CriticProcessError
        )
        self.image_size_px = int(self._worker.ready)

    @property
    def pid(self) -> int | None:
        return self._worker.pid

    @property
    def cached_frames(self) -> int:
        """Frames the child holds (resized) for this caller to name by token."""
        return len(self._sent)

    def generate(
        self,
        contents: Sequence[str],
        images: Sequence[Sequence[np.ndarray]],
        max_new_tokens: int,
        digits: Sequence[int] | None = None,
    ) -> BackendOutput:
        with self._lock:
            refs, new, drop = self._plan_frames(images)
            digit_list = None if digits is None else list(digits)
            try:
                return self._worker.request(
                    ("generate", list(contents), refs, new, drop, max_new_tokens, digit_list), "scoring"
                )
            except CriticProcessError:
                # the child dropped this call's new frames: send them again next time
                for key in [k for k, (token, _) in self._sent.items() if token in new]:
                    del self._sent[key]
                raise

    def _plan_frames(self, images: Sequence[Sequence[np.ndarray]]):
        """Tokens per sample, the frames the child has not seen, and the tokens it may forget."""
        new: dict[int, np.ndarray] = {}
        used: set[int] = set()
        refs: list[list[int]] = []
        for sample in images:
            row = []
            for frame in sample:
                held = self._sent.get(id(frame))
                if held is not None and held[1] is frame:
                    token = held[0]
                    self._sent.move_to_end(id(frame))
                else:
                    token = self._next_token
                    self._next_token += 1
                    self._sent[id(frame)] = (token, frame)
                    new[token] = frame
                    self.frames_sent += 1
                used.add(token)
                row.append(token)
            refs.append(row)
        drop = []
        for key in list(self._sent):  # oldest first; this call's frames stay until it is answered
            if len(self._sent) <= self._cache_frames:
                break
            token = self._sent[key][0]
            if token not in used:
                del self._sent[key]
                drop.append(token)
        return refs, new, drop

    def close(self) -> None:
        """Stop the child (waits up to 10 s, then terminates it)."""
        self._worker.close()
        with self._lock:
            self._sent.clear()


def _serve(conn, checkpoint: str, device: str | None, dtype: str | None, torch_threads: int) -> None:
    from vlac_core.model.processor import squash_resize  # the child's own imports, once

    frames: dict[int, np.ndarray] = {}  # token -> frame resized to the model's size

    def build():
        import torch

        from .backends import make_backend

        torch.set_num_threads(torch_threads)
        backend = make_backend("torch", checkpoint, device=device, dtype=dtype)
        return backend, backend.image_size_px

    def handle(backend, message: tuple) -> BackendOutput:
        _, contents, refs, new, drop, max_new_tokens, digits = message
        try:
            for token, frame in new.items():
                frames[token] = squash_resize(frame, backend.image_size_px, f"frame {token}")
            images = [[frames[token] for token in row] for row in refs]
            return backend.generate(contents, images, max_new_tokens, digits)
        except Exception:
            for token in new:  # the caller forgets them too and sends them again
                frames.pop(token, None)
            raise
        finally:
            for token in drop:
                frames.pop(token, None)

    serve(conn, build, handle)
