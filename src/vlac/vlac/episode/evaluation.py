"""Evaluation mode: greedy trials through the episode loop, success from ground truth where the simulator has it.

``run_in_parallel``: a list of start states shared out to one or several arms' loops, one thread
per arm (or the arm's own executor), each start run once: ``vlac actor eval`` (``vlac.actor_eval``:
with a ``vlac_actor.lockstep.LockstepActor`` the arms' requests are decoded in one batch per step)
and the session's evaluation arms (``session.eval_parallel``: their concurrent requests share the
actor's and the critic's batches). Every episode is an ``EpisodeLoop`` episode: the robot
interface (on the arms the safety envelope), the loop's step limit and reward source, and
``Episode.succeeded`` as the success rule.

Trials are recorded like any episode (the sink sees ``summary.evaluation``) but they are not
training data: the caller does not route them to the buffers. No teleoperation during a trial.
An aborted trial (a software error, not a policy failure) is reported and left out of the rate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from vlac.episode.loop import EpisodeLoop, EpisodeResult
from vlac_core.types import StartState, Termination


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


def trial_result(result: EpisodeResult) -> TrialResult:
    """What an evaluation keeps of one greedy episode."""
    episode = result.episode
    return TrialResult(
        episode_id=episode.episode_id,
        succeeded=result.summary.succeeded,
        success_source="ground_truth" if episode.success is not None else "critic_done",
        termination=episode.termination,
        length=episode.length,
        policy_versions=tuple(sorted({t.action.policy_version for t in episode.transitions})),
    )


def evaluation_result(trials: Sequence[TrialResult]) -> EvaluationResult:
    """The trials of one evaluation, with the rate over those that did not abort."""
    return EvaluationResult(trials=tuple(trials), aborted=sum(t.termination is Termination.ABORTED for t in trials))


def run_in_parallel(
    loops: Sequence[EpisodeLoop],
    starts: Sequence[StartState],
    *,
    greedy: bool = True,
    on_result: Callable[[StartState, EpisodeResult], None] | None = None,
    on_arm_done: Callable[[EpisodeLoop], None] | None = None,
    executors: Sequence[Executor] | None = None,
    stop: threading.Event | None = None,
) -> list[EpisodeResult | None]:
    """One evaluation episode from each of ``starts``, shared out to ``loops`` (one thread per loop).

    Returns the results in the order of ``starts``. ``on_result`` hears of each episode as it ends
    (called with a lock held, so it need not be thread-safe); ``on_arm_done`` is called in an arm's
    thread once it has nothing left to run (a ``LockstepActor``'s ``leave``). An error outside the
    loop's ABORTED path (a reset, the sink) stops every arm at its next start and is raised here.

    ``executors[i]`` (one per loop, e.g. a one-thread ``ThreadPoolExecutor``) runs loop i's share
    instead of a fresh thread: a simulated arm that renders must stay on one thread for its whole
    life (its GL context is closed there). Once ``stop`` is set no arm starts another episode; the
    starts left unrun are None in the result.
    """
    if not loops:
        raise ValueError("loops: no arm to run on")
    if not starts:
        raise ValueError("starts: no evaluation episodes requested")
    if executors is not None and len(executors) != len(loops):
        raise ValueError(f"executors: {len(executors)} given for {len(loops)} loops, expected one per loop")
    pending = list(enumerate(starts))
    pending.reverse()  # popped from the end: starts run in the order given
    results: list[EpisodeResult | None] = [None] * len(starts)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def arm(loop: EpisodeLoop) -> None:
        try:
            while True:
                with lock:
                    if errors or not pending or (stop is not None and stop.is_set()):
                        return
                    index, start = pending.pop()
                result = loop.run_episode(start, greedy=greedy, evaluation=True, allow_takeover=False)
                with lock:
                    results[index] = result
                    if on_result is not None:
                        on_result(start, result)
        except BaseException as error:  # raised in the caller's thread below
            with lock:
                errors.append(error)
        finally:
            if on_arm_done is not None:
                on_arm_done(loop)

    try:
        if executors is not None:
            for future in [executor.submit(arm, loop) for executor, loop in zip(executors, loops, strict=True)]:
                future.result()
        else:
            threads = [
                threading.Thread(target=arm, args=(loop,), name=f"eval-{loop.robot.robot_id}", daemon=True)
                for loop in loops
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    except KeyboardInterrupt:  # each arm ends its episode at the next step as SHUTDOWN
        for loop in loops:
            loop.stop_event.set()
        raise
    if errors:
        raise errors[0]
    return results
