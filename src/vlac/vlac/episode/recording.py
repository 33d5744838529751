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

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlac.episode.loop import EpisodeSummary
from vlac_core.bag import EpisodeRecorder
from vlac_core.jsonio import append_jsonl, read_jsonl, repair_jsonl
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
    """``episodes.jsonl``: one line per finished episode, appended and fsynced; thread-safe.

    ``bag_path`` is stored relative to the index's folder (the session's output folder), so the
    folder can be moved or copied and still resumed. Opening the index sets aside a last line a
    crash cut short (into ``episodes.jsonl.damaged``), so no later record is glued onto it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        #: Lines set aside on opening (cut short by a crash): the session reports them.
        self.damaged_lines = repair_jsonl(self.path)

    def relative(self, bag_path: str | Path) -> str:
        """``bag_path`` relative to the index's folder ("" stays "": nothing was recorded)."""
        if not str(bag_path):
            return ""
        return os.path.relpath(Path(bag_path).absolute(), self.path.parent.absolute())

    def append(self, finished: FinishedEpisode, **extra: Any) -> dict[str, Any]:
        ep, s = finished.episode, finished.summary
        return self.append_row(
            {
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
                "bag_path": self.relative(finished.bag_path),
                **extra,
            }
        )

    def append_found(
        self, episode: Episode, phase: str, bag_path: str | Path, *, cut_short: bool, note: str | None
    ) -> dict[str, Any]:
        """A row for a bag found on disk but not indexed (its session crashed before or while finishing it).

        ``recovered`` marks an episode a crash cut short (rebuilt from its unfinished bag as
        ``aborted``): like a Ctrl-C'd one it is kept but not counted, so a resumed session runs it
        again. A finished bag that only missed its line keeps its termination and counts.
        """
        return self.append_row(
            {
                "episode_id": episode.episode_id,
                "robot_id": episode.robot_id,
                "phase": phase,
                "termination": episode.termination.value if episode.termination else None,
                "success": episode.success,
                "succeeded": bool(episode.success),
                "episode_return": episode.episode_return,
                "length": episode.length,
                "human_steps": episode.human_steps,
                "policy_version": episode.policy_version,
                "start_state_id": episode.start_state_id,
                "unparsable_progress": 0,
                "unparsable_done": 0,
                "stale_actions": 0,
                "abort_reason": note,
                "bag_path": self.relative(bag_path),
                "recovered": cut_short,
            }
        )

    def append_row(self, row: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            append_jsonl(self.path, row)
        return row

    def rows(self) -> list[dict[str, Any]]:
        """Every complete line (a line cut short by a crash is skipped)."""
        return read_jsonl(self.path)
