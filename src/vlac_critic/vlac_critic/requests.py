"""Service requests of the critic, answered without ROS: message in, plain reply out.

Works on any message objects with the vlac_msgs fields (rclpy's generated classes at run time,
rosbags' in tests). Bad input — an undecodable image, an empty task, more than 11 reference
frames — and errors of the model itself become ``ok=False`` with the reason; the caller keeps
serving. Unparsed answers are reported per pair (``parsed=False``, progress NaN), never filled in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from vlac_core.images import ImageConversionError, image_from_msg

from .critic import Critic, CriticInputError

LOG = logging.getLogger("vlac_critic")


@dataclass
class ProgressReply:
    """Fields of vlac_msgs/srv/ScoreProgress's response."""

    ok: bool
    error: str = ""
    parsed: list[bool] = field(default_factory=list)
    progress_pct: list[float] = field(default_factory=list)
    raw_answers: list[str] = field(default_factory=list)


@dataclass
class DoneReply:
    """Fields of vlac_msgs/srv/ScoreDone's response."""

    ok: bool
    error: str = ""
    done_prob: list[float] = field(default_factory=list)
    done: list[bool] = field(default_factory=list)


def _images(msgs: Any, name: str) -> list:
    images = []
    for i, msg in enumerate(msgs):
        try:
            images.append(image_from_msg(msg))
        except ImageConversionError as error:
            raise CriticInputError(f"{name}[{i}]: {error}") from None
    return images


def _has_image(msg: Any) -> bool:
    return msg is not None and int(msg.height) > 0 and int(msg.width) > 0


def score_progress(critic: Critic, request: Any) -> ProgressReply:
    """Answer a ScoreProgress request (see vlac_msgs/srv/ScoreProgress.srv)."""
    try:
        earlier = _images(request.earlier, "earlier")
        later = _images(request.later, "later")
        reference = _images(request.reference, "reference") or None
        first_frame = _images([request.first_frame], "first_frame")[0] if _has_image(request.first_frame) else None
        scores = critic.progress(request.task, earlier, later, reference=reference, first_frame=first_frame)
    except CriticInputError as error:
        return ProgressReply(ok=False, error=str(error))
    except Exception as error:  # the model failed (e.g. out of memory): report it, keep serving
        LOG.exception("critic: progress request failed")
        return ProgressReply(ok=False, error=f"critic failed: {type(error).__name__}: {error}")
    return ProgressReply(
        ok=True,
        parsed=[s.parsed for s in scores],
        progress_pct=[s.progress_pct if s.parsed else math.nan for s in scores],
        raw_answers=[s.raw_answer for s in scores],
    )


def score_done(critic: Critic, request: Any) -> DoneReply:
    """Answer a ScoreDone request: the done probabilities, and ``done_prob > threshold`` per image when the
    caller sends a threshold in (0, 1]. With 0, ``done`` stays empty: the critic has no threshold of its own
    (the episode manager's done rule decides, from the probabilities)."""
    try:
        threshold = float(request.threshold)
        if not 0.0 <= threshold <= 1.0:
            raise CriticInputError(f"threshold: expected 0 (probabilities only) or a value in (0, 1], got {threshold}")
        images = _images(request.images, "images")
        scores = critic.done(request.task, images)
    except CriticInputError as error:
        return DoneReply(ok=False, error=str(error))
    except Exception as error:
        LOG.exception("critic: done request failed")
        return DoneReply(ok=False, error=f"critic failed: {type(error).__name__}: {error}")
    return DoneReply(
        ok=True,
        done_prob=[math.nan if s.done_prob is None else s.done_prob for s in scores],
        done=[s.done_prob is not None and s.done_prob > threshold for s in scores] if threshold > 0 else [],
    )


def fill(response: Any, reply: ProgressReply | DoneReply) -> Any:
    """Copy a reply's fields onto a service response object; returns it."""
    for name, value in vars(reply).items():
        setattr(response, name, value)
    return response
