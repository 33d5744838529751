"""Evaluation mode: N greedy trials, success from ground truth where the simulator has it.

Trials are recorded like any episode (the sink sees ``summary.evaluation``) but they are not
training data: the caller does not route them to the buffers. No teleoperation during a trial.
An aborted trial (a software error, not a policy failure) is reported and left out of the rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vlac.episode.interfaces import StartState
from vlac.episode.loop import EpisodeLoop
from vlac_core.types import Termination


@dataclass(frozen=True)
class TrialResult:
    episode_id: str
    succeeded: bool
    success_source: str  # "ground_truth" (simulator) or "critic_done" (no ground truth: the critic's done)
    termination: Termination
    length: int
    policy_versions: tuple[int, ...] = ()  # the versions that chose this trial's actions, ascending


@dataclass(frozen=True)
class EvaluationResult:
    trials: tuple[TrialResult, ...]
    aborted: int  # trials that ended in an error; not counted in the rate

    @property
    def counted(self) -> int:
        return len(self.trials) - self.aborted

    @property
    def successes(self) -> int:
        return sum(t.succeeded for t in self.trials if t.termination is not Termination.ABORTED)

    @property
    def success_rate(self) -> float | None:
        """Successes over non-aborted trials; None when every trial aborted."""
        return self.successes / self.counted if self.counted else None


def evaluate(
    loop: EpisodeLoop, num_trials: int, start_states: Sequence[StartState | None] | None = None
) -> EvaluationResult:
    """Run ``num_trials`` greedy episodes (from ``start_states[i]`` when given, else fresh starts)."""
    if num_trials < 1:
        raise ValueError(f"num_trials={num_trials}: expected at least 1")
    if start_states is not None and len(start_states) != num_trials:
        raise ValueError(f"start_states: {len(start_states)} given for num_trials={num_trials}")
    trials = []
    for i in range(num_trials):
        start = None if start_states is None else start_states[i]
        result = loop.run_episode(start, greedy=True, evaluation=True, allow_takeover=False)
        episode = result.episode
        trials.append(
            TrialResult(
                episode_id=episode.episode_id,
                succeeded=result.summary.succeeded,
                success_source="ground_truth" if episode.success is not None else "critic_done",
                termination=episode.termination,
                length=episode.length,
                policy_versions=tuple(sorted({t.action.policy_version for t in episode.transitions})),
            )
        )
    aborted = sum(t.termination is Termination.ABORTED for t in trials)
    return EvaluationResult(trials=tuple(trials), aborted=aborted)
