"""The episode sink of both runtimes: every episode to its own rosbag2 MCAP bag, then to the listeners.

``BagSink`` opens an ``EpisodeRecorder`` (vlac_core.bag) at ``begin_episode``, writes and flushes
every step as it happens, and closes the bag at ``finish_episode``. Only after the bag is closed
on disk are the listeners called (the trainer, return-and-explore, the episode index): an episode
is acknowledged once it cannot be lost. With ``record`` off (a ROS deployment that records with
``ros2 bag`` instead) the listeners are called at once and ``bag_path`` is empty.

Bags go to ``root/<phase>/<episode_id>/``; ``phase`` is ``train`` or ``eval`` (evaluation trials are
recorded too, but the trainer never sees them). ``EpisodeIndex`` appends one JSON line per
finished episode (fsynced), the record the session's plots and summary are built from.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlac.episode.loop import EpisodeSummary
from vlac_core.bag import EpisodeRecorder
from vlac_core.types import Episode, Transition

PHASES = ("train", "eval")


@dataclass(frozen=True)
class FinishedEpisode:
    """What a listener gets: the episode, the loop's summary, the bag it is in, and its phase."""

    episode: Episode
    summary: EpisodeSummary
    bag_path: str
    phase: str


class BagSink:
    """EpisodeSink for one arm (not shared between loops; set ``phase`` between episodes)."""

    def __init__(
        self,
        root: str | Path,
        *,
        record: bool = True,
        listeners: list[Callable[[FinishedEpisode], None]] | None = None,
        fsync: bool = True,
    ) -> None:
        self.root = Path(root)
        self.record = record
        self.listeners = list(listeners or [])
        self.fsync = fsync
        self.phase = "train"
        self.last: FinishedEpisode | None = None
        self._recorder: EpisodeRecorder | None = None

    def begin_episode(self, episode: Episode) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase: expected one of {PHASES}, got {self.phase!r}")
        if self._recorder is not None and not self._recorder.finished:  # a previous episode died before finish
            self._recorder.finish(termination="aborted")
        self._recorder = None
        if self.record:
            self._recorder = EpisodeRecorder(
                self.root / self.phase / episode.episode_id,
                episode_id=episode.episode_id,
                robot_id=episode.robot_id,
                task=episode.task,
                policy_version=episode.policy_version,
                start_state_id=episode.start_state_id,
                fsync=self.fsync,
            )

    def append_step(self, episode: Episode, transition: Transition) -> None:
        if self._recorder is not None:
            self._recorder.write_step(transition)

    def finish_episode(self, episode: Episode, summary: Any) -> None:
        bag_path = ""
        if self._recorder is not None:
            bag_path = str(
                self._recorder.finish(
                    termination=episode.termination,
                    success=episode.success,
                    final_observation=episode.final_observation,
                )
            )
            self._recorder = None
        finished = FinishedEpisode(episode, summary, bag_path, self.phase)
        self.last = finished
        for listener in self.listeners:
            listener(finished)


class EpisodeIndex:
    """``episodes.jsonl``: one line per finished episode, appended and fsynced; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, finished: FinishedEpisode, **extra: Any) -> dict[str, Any]:
        ep, s = finished.episode, finished.summary
        row = {
            "episode_id": ep.episode_id,
            "robot_id": ep.robot_id,
            "phase": finished.phase,
            "termination": ep.termination.value if ep.termination else None,
            "success": ep.success,
            "succeeded": s.succeeded,
            "episode_return": s.episode_return,
            "length": s.length,
            "human_steps": s.human_steps,
            "policy_version": ep.policy_version,
            "start_state_id": ep.start_state_id,
            "unparsable_progress": s.unparsable_progress,
            "unparsable_done": s.unparsable_done,
            "stale_actions": s.stale_actions,
            "abort_reason": s.abort_reason,
            "bag_path": finished.bag_path,
            **extra,
        }
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return row

    def rows(self) -> list[dict[str, Any]]:
        """Every complete line (a line cut short by a crash is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
