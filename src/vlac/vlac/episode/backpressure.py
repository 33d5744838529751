"""An arm's view of the trainer's backlog, and the wait before its next training episode (ROS-free).

The trainer reports how many rollout episodes wait for an update at every change
(``AsyncTrainer.on_backlog``); :meth:`BacklogGate.heard` takes each report and
:meth:`BacklogGate.wait_open` holds the next training episode while ``max_waiting_batches`` batches
wait. One rule for both runtimes: under ROS the reports come over /trainer_backlog
(vlac_msgs/TrainerBacklog) to the episode manager node, which holds only autorun episodes; in the
embedded session (vlac.session.runtime) the trainer calls the gate directly and every arm waits on it.

The limit is counted in the trainer's batches (``episodes_per_update``, which the message carries):
a limit below one batch would wait for an update that never becomes due. Until the trainer has been
heard from, nothing waits: a graph without a trainer (evaluation only, ``send_to_trainer`` off)
must not stall its arms, and a trainer that starts late publishes its backlog at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Backlog:
    """What the trainer last said: episodes waiting for an update, and how many an update takes."""

    waiting_episodes: int
    episodes_per_update: int


class BacklogGate:
    """Holds training episodes while ``max_waiting_batches`` batches wait for the trainer (0: never)."""

    def __init__(self, max_waiting_batches: int) -> None:
        if max_waiting_batches < 0:
            raise ValueError(f"max_waiting_batches: {max_waiting_batches} is negative")
        self.max_waiting_batches = max_waiting_batches
        self._last: Backlog | None = None
        self._cond = threading.Condition()

    @property
    def last(self) -> Backlog | None:
        """The trainer's latest backlog (None: not heard from yet)."""
        with self._cond:
            return self._last

    def heard(self, waiting_episodes: int, episodes_per_update: int) -> None:
        """The trainer's latest backlog; wakes an arm waiting in :meth:`wait_open`."""
        if waiting_episodes < 0 or episodes_per_update < 1:
            raise ValueError(
                f"trainer backlog: {waiting_episodes} waiting, {episodes_per_update} per update (expected >= 0, >= 1)"
            )
        with self._cond:
            self._last = Backlog(waiting_episodes, episodes_per_update)
            self._cond.notify_all()

    def closed(self) -> bool:
        """True while the next training episode must wait (limit on, trainer heard, limit reached)."""
        with self._cond:
            return self._closed()

    def _closed(self) -> bool:
        last = self._last
        if not self.max_waiting_batches or last is None:
            return False
        return last.waiting_episodes >= self.max_waiting_batches * last.episodes_per_update

    def wait_open(self, stop: threading.Event, poll_s: float = 0.5) -> bool:
        """Block while :meth:`closed` (until ``stop`` is set); True when it had to wait.

        ``poll_s`` only bounds how late ``stop`` is seen: a new backlog wakes the wait at once.
        """
        waited = False
        with self._cond:
            while self._closed() and not stop.is_set():
                waited = True
                self._cond.wait(poll_s)
        return waited
