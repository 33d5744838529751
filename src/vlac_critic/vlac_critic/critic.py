"""The VLAC critic: batched pair-wise progress, in-context reference mode and done probability.

Backend-agnostic (see ``backends.py``): this module builds the release's prompts, validates
input, batches, parses and counts. An unparsable answer is logged with its raw text, counted in
:class:`CriticStats` and returned as ``None`` — the caller gives no reward for it.

The critic reports probabilities; it decides nothing. Whether an episode is done is the episode
manager's rule (``episode_manager.done_threshold`` and ``done_confirm_steps``, applied by
``vlac_critic.done_rule.confirmed_done``, or the rule stored beside the checkpoint with
``episode_manager.done_rule: critic``), so the critic has no threshold of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vlac_core import prompts
from vlac_core.types import ValidationError, check_image

from .backends import CriticBackend
from .done_prob import expected_digit
from .parsing import AnswerParseError, parse_done, parse_progress_pct

LOG = logging.getLogger("vlac_critic")

#: Enough tokens for "-100.0" even when every character is a token.
DEFAULT_MAX_NEW_TOKENS = 8
DONE_DIGITS = (0, 1)


class CriticInputError(ValueError):
    """A request to the critic is malformed; the message names the argument at fault."""


@dataclass(frozen=True)
class ProgressScore:
    """Signed progress (percent) from an earlier to a later frame; None when the answer was unparsable."""

    progress_pct: float | None
    raw_answer: str
    error: str = ""

    @property
    def parsed(self) -> bool:
        return self.progress_pct is not None


@dataclass(frozen=True)
class DoneScore:
    """Done probability (0..1) of one frame; None when unparsable. Thresholding it is the caller's rule."""

    done_prob: float | None
    raw_answer: str
    error: str = ""


@dataclass
class CriticStats:
    """Running counters for diagnostics (node) and benchmarks."""

    pairs_scored: int = 0
    progress_parse_failures: int = 0
    images_done_checked: int = 0
    done_parse_failures: int = 0
    last_latency_s: float = 0.0
    timings_s: dict[str, float] = field(
        default_factory=lambda: {"preprocess_s": 0.0, "generate_s": 0.0, "parse_s": 0.0}
    )

    def add_timings(self, timings: dict[str, float]) -> None:
        for key, value in timings.items():
            self.timings_s[key] = self.timings_s.get(key, 0.0) + value


def _check_images(images: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim == 3:
        raise CriticInputError(f"{name}: expected a sequence of images, got a single {images.shape} array")
    try:
        return [check_image(im, f"{name}[{i}]") for i, im in enumerate(images)]
    except ValidationError as error:
        raise CriticInputError(str(error)) from None


def _check_task(task: str) -> str:
    if not isinstance(task, str) or not task.strip():
        raise CriticInputError(f"task: expected a non-empty task text, got {task!r}")
    return task


def reference_from_trajectory(
    frames: Sequence[np.ndarray], n_reference: int = prompts.DEFAULT_REFERENCE_FRAMES
) -> list[np.ndarray]:
    """Pick the release's reference frames (first, then evenly spaced to the last) from a trajectory."""
    if not 2 <= n_reference <= prompts.MAX_REFERENCE_FRAMES:
        raise CriticInputError(f"n_reference: expected 2 to {prompts.MAX_REFERENCE_FRAMES} frames, got {n_reference}")
    if len(frames) < 2:
        raise CriticInputError(f"reference trajectory: need at least 2 frames, got {len(frames)}")
    n = min(n_reference, len(frames))
    return [frames[i] for i in prompts.select_reference_frames(len(frames), n)]


class Critic:
    """Scores progress and done with a backend; thread-compatible but not re-entrant (one call at a time)."""

    def __init__(
        self,
        backend: CriticBackend,
        batch_size: int = 16,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        logger: logging.Logger | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.backend = backend
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.log = logger or LOG
        self.stats = CriticStats()

    def close(self) -> None:
        """Release the backend's resources (the child process of ``ProcessBackend``); a no-op for in-process ones."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def progress(
        self,
        task: str,
        earlier: Sequence[np.ndarray],
        later: Sequence[np.ndarray],
        reference: Sequence[np.ndarray] | None = None,
        first_frame: np.ndarray | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[ProgressScore]:
        """Pair-wise progress of ``later[i]`` over ``earlier[i]`` for one task, in percent.

        With ``reference`` (2..11 frames of a reference trajectory, already selected; see
        :func:`reference_from_trajectory`) the in-context prompt is used and ``first_frame`` (the
        current episode's first frame) is required. ``on_batch(n)`` is called after each batch of n pairs.
        """
        _check_task(task)
        earlier = _check_images(earlier, "earlier")
        later = _check_images(later, "later")
        if not earlier:
            raise CriticInputError("earlier/later: no frame pairs given")
        if len(earlier) != len(later):
            raise CriticInputError(f"earlier has {len(earlier)} frames but later has {len(later)}")
        context: list[np.ndarray] = []
        if reference is not None and len(reference) > 0:
            reference = _check_images(reference, "reference")
            if not 2 <= len(reference) <= prompts.MAX_REFERENCE_FRAMES:
                raise CriticInputError(
                    f"reference: expected 2 to {prompts.MAX_REFERENCE_FRAMES} frames, got {len(reference)}"
                )
            if first_frame is None:
                raise CriticInputError("first_frame: required with a reference trajectory")
            context = [*reference, *_check_images([first_frame], "first_frame")]
            content = prompts.in_context_progress_prompt(task, len(reference))
        else:
            content = prompts.pair_progress_prompt(task)
        scores: list[ProgressScore] = []
        start = time.perf_counter()
        for lo in range(0, len(earlier), self.batch_size):
            pairs = list(zip(earlier[lo : lo + self.batch_size], later[lo : lo + self.batch_size], strict=True))
            output = self.backend.generate(
                [content] * len(pairs), [[*context, a, b] for a, b in pairs], self.max_new_tokens
            )
            parse_start = time.perf_counter()
            for k, raw in enumerate(output.texts):
                scores.append(self._parse_progress(raw, lo + k))
            self.stats.add_timings({**output.timings_s, "parse_s": time.perf_counter() - parse_start})
            if on_batch is not None:
                on_batch(len(pairs))
        self.stats.pairs_scored += len(scores)
        self.stats.last_latency_s = time.perf_counter() - start
        return scores

    def _parse_progress(self, raw: str, index: int) -> ProgressScore:
        try:
            return ProgressScore(progress_pct=parse_progress_pct(raw), raw_answer=raw)
        except AnswerParseError as error:
            self.stats.progress_parse_failures += 1
            self.log.warning("critic: unparsable progress answer for pair %d, no reward: %s", index, error)
            return ProgressScore(progress_pct=None, raw_answer=raw, error=str(error))

    def done(self, task: str, images: Sequence[np.ndarray]) -> list[DoneScore]:
        """Done probability of each image for ``task``."""
        _check_task(task)
        images = _check_images(images, "images")
        if not images:
            raise CriticInputError("images: no frames given")
        content = prompts.done_prompt(task)
        scores: list[DoneScore] = []
        start = time.perf_counter()
        for lo in range(0, len(images), self.batch_size):
            chunk = images[lo : lo + self.batch_size]
            output = self.backend.generate(
                [content] * len(chunk), [[im] for im in chunk], max_new_tokens=2, digits=DONE_DIGITS
            )
            parse_start = time.perf_counter()
            for k, raw in enumerate(output.texts):
                scores.append(self._parse_done(raw, output.first_digit_probs[k], lo + k))
            self.stats.add_timings({**output.timings_s, "parse_s": time.perf_counter() - parse_start})
        self.stats.images_done_checked += len(scores)
        self.stats.last_latency_s = time.perf_counter() - start
        return scores

    def _parse_done(self, raw: str, digit_probs: np.ndarray, index: int) -> DoneScore:
        try:
            parse_done(raw)
            prob = expected_digit(digit_probs, DONE_DIGITS)
        except (AnswerParseError, ValueError) as error:
            self.stats.done_parse_failures += 1
            self.log.warning("critic: unparsable done answer for image %d: %s", index, error)
            return DoneScore(done_prob=None, raw_answer=raw, error=str(error))
        return DoneScore(done_prob=prob, raw_answer=raw)
