"""The embedded session's schedule: may another training episode start, and is an evaluation due.

Pure counting, no threads and no clock: the runtime (``runtime.EmbeddedSession``) holds its lock
around every call, and the rules are tested here on their own:
- ``episodes`` is the session's total over every arm: a resumed session starts from the training
  episodes already recorded and runs only what is missing. An episode stopped by Ctrl-C is not
  counted (``finish(counted=False)``), so a resume runs it again;
- a periodic evaluation is due after every ``eval_every`` counted training episodes; marks passed
  together (arms finishing at once while an evaluation ran) give one evaluation, not a burst;
- on resume, an evaluation lost to Ctrl-C (its mark passed, none on record after it) is due at once;
- the final evaluation runs unless the last one on record already scored the final policy after
  the last episode.
"""

from __future__ import annotations

from collections.abc import Iterable


class EpisodeSchedule:
    """Counts of one session; ``eval_every`` 0 schedules no periodic evaluation."""

    def __init__(self, episodes: int, eval_every: int, *, finished: int = 0, evaluated_after: Iterable[int] = ()):
        if episodes < 0 or eval_every < 0 or finished < 0:
            raise ValueError(
                f"schedule: episodes={episodes}, eval_every={eval_every}, finished={finished}: none may be negative"
            )
        self.episodes = episodes
        self.eval_every = eval_every
        self.finished = finished  # counted training episodes (all arms)
        self.claimed = finished  # started or finished: what the arms may not start again
        self.next_eval_at = self._first_eval_due(max(evaluated_after, default=-1))

    def _first_eval_due(self, last_evaluated: int) -> int:
        if not self.eval_every:
            return 0
        last_mark = self.finished // self.eval_every * self.eval_every
        return last_mark if last_mark > 0 and last_evaluated < last_mark else last_mark + self.eval_every

    def claim(self) -> bool:
        """May one more training episode start? (It is then counted as claimed.)"""
        if self.claimed >= self.episodes:
            return False
        self.claimed += 1
        return True

    def finish(self, counted: bool) -> int:
        """A claimed episode ended; ``counted`` False for one stopped by Ctrl-C. Returns the count so far."""
        if counted:
            self.finished += 1
        return self.finished

    def eval_due(self) -> bool:
        """Is a periodic evaluation due now? True once per mark reached (passed marks fold into one)."""
        if not self.eval_every or self.finished < self.next_eval_at:
            return False
        while self.next_eval_at <= self.finished:
            self.next_eval_at += self.eval_every
        return True

    def final_eval_due(self, last_evaluation: dict | None, policy_version: int) -> bool:
        """Does the end need its own evaluation, or did the last one on record score this very point?"""
        last = last_evaluation or {}
        return (last.get("after_episodes"), last.get("policy_version")) != (self.finished, policy_version)
