"""One arm's episode manager without ROS: what the episode_manager node's run-episode action calls.

Around an ``EpisodeLoop`` it keeps the human-in-the-loop state (return-and-explore store,
intervention tracker), the rolling success rate, and turns each recorded step into feedback
(step, progress, running value, reward, done probability) for the action's feedback and the
rqt_plot topics. The value is the release's value curve, v <- v + (100 - v) c / 100, over the
episode's progress answers so far.

A goal runs one episode: evaluation goals are greedy, without teleoperation, not sent to the
trainer and not counted for return-and-explore. With ``scene_repeats`` k > 1 every fresh training
scene is run k times in a row (a group: the trainer's ``advantage: group`` compares episodes from the
same start, so the scene's difficulty drops out of the advantage). ``cancel`` ends the running episode at its next
step (termination ``operator``); the episode is still recorded.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from vlac.episode.interfaces import EpisodeSink, FrontierRobot, Operator
from vlac.episode.intervention import InterventionTracker
from vlac.episode.loop import EpisodeLoop, EpisodeResult
from vlac.episode.return_explore import RETURN_TO, ReturnAndExploreStore, is_frontier_state_id, scene_repeats_refusal
from vlac_core.types import DeltaAction, Episode, Observation, StartState, StartStateGone, Termination, Transition
from vlac_critic.trajectory import update_value

log = logging.getLogger(__name__)
#: The parameter that selects what failed episodes keep (section ``episode_manager``), named in refusals.
RETURN_TO_KEY = "episode_manager.return_to"
SCENE_REPEATS_KEY = "episode_manager.scene_repeats"


@dataclass(frozen=True)
class StepFeedback:
    robot_id: str
    step: int  # 1-based index of the recorded step
    progress_pct: float  # NaN when the critic's answer was unparsable
    value_pct: float
    reward: float
    done_prob: float
    human: bool


@dataclass(frozen=True)
class EpisodeGoal:
    """What a run-episode request asks (the RunEpisode goal's fields)."""

    max_steps: int = 0  # 0: the configured step limit
    evaluation: bool = False
    start_state_id: str = ""  # a kept start state (return-and-explore); empty: the store decides


class FeedbackSink:
    """An EpisodeSink that forwards to ``inner`` and reports every recorded step."""

    def __init__(self, inner: EpisodeSink, on_step: Callable[[StepFeedback], None]) -> None:
        self.inner = inner
        self.on_step = on_step
        self._value_pct = 0.0

    def begin_episode(self, episode: Episode) -> None:
        self._value_pct = 0.0
        self.inner.begin_episode(episode)

    def append_step(self, episode: Episode, transition: Transition) -> None:
        self.inner.append_step(episode, transition)  # on disk first, then reported
        pct = transition.progress_pct
        if pct is not None:
            self._value_pct = update_value(self._value_pct, pct)
        self.on_step(
            StepFeedback(
                robot_id=episode.robot_id,
                step=episode.length,
                progress_pct=float("nan") if pct is None else pct,
                value_pct=self._value_pct,
                reward=transition.reward,
                done_prob=transition.done_prob,
                human=transition.human,
            )
        )

    def finish_episode(self, episode: Episode, summary) -> None:
        self.inner.finish_episode(episode, summary)


class CancellableOperator:
    """The loop's Operator: a cancel request ends the episode; otherwise ``inner`` (teleop) decides."""

    def __init__(self, inner: Operator | None = None) -> None:
        self.inner = inner
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def clear(self) -> None:
        self._cancel.clear()

    def end_requested(self, robot_id: str) -> bool:
        if self._cancel.is_set():
            return True
        return self.inner is not None and self.inner.end_requested(robot_id)

    def teleop_action(self, robot_id: str, observation: Observation) -> DeltaAction | None:
        return None if self.inner is None else self.inner.teleop_action(robot_id, observation)


class EpisodeManager:
    """Runs one goal at a time on one arm; thread-safe for the node's callbacks (one goal at a time)."""

    def __init__(
        self,
        loop: EpisodeLoop,
        operator: CancellableOperator,
        *,
        return_explore: ReturnAndExploreStore | None = None,
        intervention: InterventionTracker | None = None,
        success_window: int = 20,
        send: Callable[[Episode], None] | None = None,
        seed: int = 0,
        lock: threading.Lock | None = None,
        return_to: str = "start",
        scene_repeats: int = 1,
    ) -> None:
        """``lock`` guards the store and tracker; arms sharing them (the embedded session) share it too.
        ``return_to``: ``frontier`` keeps where failed episodes got furthest (a ``FrontierRobot`` only).
        ``scene_repeats``: training episodes per fresh scene (a group; return-and-explore must be off)."""
        if scene_repeats < 1:
            raise ValueError(f"{SCENE_REPEATS_KEY}={scene_repeats}: expected at least 1")
        refusal = scene_repeats_refusal(scene_repeats, return_explore is not None)
        if refusal:
            raise ValueError(f"episode_manager.{refusal}")
        if return_to not in RETURN_TO:
            raise ValueError(f"{RETURN_TO_KEY}={return_to!r}: expected one of {', '.join(RETURN_TO)}")
        if return_to == "frontier" and return_explore is not None and not isinstance(loop.robot, FrontierRobot):
            raise ValueError(
                f"{RETURN_TO_KEY}=frontier: robot {loop.robot.robot_id!r} cannot set up mid-episode states "
                "(only a simulated arm can); use return_to: start"
            )
        self.keep_frontier = return_to == "frontier" and return_explore is not None
        self.loop = loop
        self.operator = operator
        self.return_explore = return_explore
        self.intervention = intervention or InterventionTracker()
        self.send = send
        self.rng = np.random.default_rng(seed)
        self._recent: deque[bool] = deque(maxlen=success_window)
        self._lock = lock or threading.Lock()
        self._base_config = loop.config
        self.scene_repeats = scene_repeats
        self._group_start: StartState | None = None  # the fresh scene the running group repeats
        self._group_left = 0  # episodes of that group still to run

    def success_rate(self) -> float | None:
        """Share of successes over the last ``success_window`` counted training episodes."""
        with self._lock:
            return sum(self._recent) / len(self._recent) if self._recent else None

    def start_state(self, goal: EpisodeGoal) -> StartState | None:
        if goal.start_state_id:
            return StartState(goal.start_state_id)
        if goal.evaluation:
            return None
        if self._group_left:
            return self._group_start
        if self.return_explore is None:
            return None
        with self._lock:
            return self.return_explore.choose_start(self.rng)

    def _count_group(self, start: StartState | None, result: EpisodeResult) -> None:
        """After a counted training episode: open a group on a fresh scene, or count one of the running group."""
        if self.scene_repeats == 1:
            return
        if self._group_left:
            self._group_left -= 1
        elif start is None:
            self._group_start, self._group_left = result.start_state, self.scene_repeats - 1

    def run(self, goal: EpisodeGoal) -> EpisodeResult:
        """One episode for ``goal``, recorded before this returns; errors of reset/sink propagate."""
        if goal.max_steps < 0:
            raise ValueError(f"max_steps={goal.max_steps}: expected 0 (configured limit) or more")
        self.loop.config = replace(self._base_config, max_steps=goal.max_steps) if goal.max_steps else self._base_config
        self.operator.clear()
        start = self.start_state(goal)
        try:
            result = self._run_from(start, goal)
        except StartStateGone as gone:
            if start is None or goal.start_state_id:  # a state the caller named: theirs to handle
                raise
            with self._lock:
                self.return_explore.forget(start.state_id)
            log.warning("return-and-explore: %s; dropped from the kept states, starting fresh", gone)
            result = self._run_from(None, goal)
        episode = result.episode
        if not goal.evaluation and episode.termination is not Termination.SHUTDOWN:
            if not goal.start_state_id:
                self._count_group(start, result)
            with self._lock:
                if self.return_explore is not None:
                    self.return_explore.record(result.start_state, episode, result.frontier)
                self.intervention.record(episode)
                if episode.termination is not Termination.ABORTED and not is_frontier_state_id(episode.start_state_id):
                    # whole-task successes of the policy alone (not from a frontier, not with a person's help)
                    self._recent.append(episode.policy_succeeded)
            if self.send is not None:
                self.send(episode)
        return result

    def _run_from(self, start: StartState | None, goal: EpisodeGoal) -> EpisodeResult:
        return self.loop.run_episode(
            start,
            greedy=goal.evaluation,
            evaluation=goal.evaluation,
            allow_takeover=not goal.evaluation,
            keep_frontier=self.keep_frontier and not goal.evaluation,
        )

    def cancel(self) -> None:
        self.operator.cancel()
