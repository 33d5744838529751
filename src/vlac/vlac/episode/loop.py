"""The episode loop: observe, act, execute asynchronously, score with the critic, record, repeat.

One step t, with a_t already chosen from o_t::

    execute(a_t)                 returns at once; the arm moves while the loop goes on
    o_{t+1} = observe()          taken while a_t is still being executed (after ``observe_delay_s``)
    critic: progress(o_t -> o_{t+1}) and done(o_{t+1})   |  actor: a_{t+1} = act(o_{t+1})
                                 (run concurrently when ``overlap_inference``; a_{t+1} is dropped
                                 unexecuted if the episode ends at t)
    record transition t: critic: reward_t = progress_pct * reward_scale, done_t = done_prob > threshold
                         on this step and the ``done_confirm_steps`` - 1 steps before it; with a
                         ground-truth ``reward_source`` (simulation) reward_t and done_t come from the
                         simulator instead (``reward_source.step_reward``). Both are recorded either way.

Termination: the reward source's done (DONE: terminal, no bootstrap), the step limit (STEP_LIMIT:
truncated, GAE bootstraps from V(final observation)), the operator (OPERATOR), a stop request or
Ctrl-C (SHUTDOWN), or an actor/critic/robot exception (ABORTED: every step recorded so far stays in
the sink, the loop is ready for the next episode).

Staleness: ``PolicyAction.obs_stamp_s`` is when the observation the action was computed from was
captured. When the action is sent, ``action_age_s = clock() - obs_stamp_s`` (capture + inference
latency, and the arm's previous move has gone on meanwhile) is recorded per step in the summary;
ages above ``max_action_age_s`` are counted as stale (rejecting them is the safety envelope's job).
``clock`` must be the clock the robot stamps observations with (monotonic by default).

An unparsable critic answer gives reward 0 and is counted; no reward is invented. The first frame
is kept for in-context critics. Teleoperated steps (operator takeover) are flagged ``human``.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlac.episode.interfaces import Actor, Critic, EpisodeSink, FrontierRobot, Operator, Robot
from vlac.episode.return_explore import frontier_state_id
from vlac.episode.reward_source import REWARD_SOURCES, GroundTruth, check_reward_source, step_reward
from vlac_core.action_text import format_action
from vlac_core.config import param, validate
from vlac_core.types import (
    DeltaAction,
    Episode,
    Observation,
    PolicyAction,
    StartState,
    TaskTruth,
    Termination,
    Transition,
)
from vlac_critic.done_rule import confirmed_done  # the loop's done rule, shared with the audits


@dataclass(frozen=True)
class LoopConfig:
    """Settings of one arm's episode loop, declared once (``vlac_core.config``: validated at construction,
    a wrong value named with its key and what is allowed).

    The episode manager's section (``vlac.param_file.EpisodeManagerConfig``) extends this class, so the
    session file, the episode manager node's ROS parameters and the loop read the same declarations;
    ``EpisodeManagerConfig.loop_config()`` picks these fields out of the section.
    """

    max_steps: int = param(40, "step limit of an episode", low=1, high=100000)
    # The stack's one done rule (the critic reports probabilities only); 0.9 is the release's example.
    done_threshold: float = param(0.9, "done when the critic's done probability exceeds this", low=0.01, high=1.0)
    # Why more than 1 step: one-frame spikes end episodes before the goal (sim critic, held out: 31 of 66
    # with 1 step over 0.9, 12 with 3 steps over 0.8; bench/critic_quality.py --done-rules).
    done_confirm_steps: int = param(
        1, "consecutive steps over done_threshold before an episode is done (1: the release's rule)", low=1, high=100
    )
    reward_scale: float = param(0.01, "reward = progress_pct * reward_scale", low=1e-6, high=100.0)
    reward_source: str = param(
        "critic",
        "what trains and ends episodes: critic; sim_dense (ground-truth potential change) or sim_sparse "
        "(ground-truth success), simulation only (a real arm refuses them at start-up)",
        choices=REWARD_SOURCES,
    )
    observe_delay_s: float = param(0.0, "wait after sending an action before the next observation, s", low=0.0)
    max_action_age_s: float = param(2.0, "actions older than this when sent are counted stale, s", low=1e-3)
    overlap_inference: bool = param(True, "run the actor for the next step while the critic scores this one")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class EpisodeSummary:
    """What happened in one episode, beyond the Episode itself: diagnostics for topics, logs and the sink."""

    episode_id: str
    robot_id: str
    termination: Termination
    succeeded: bool  # Episode.succeeded: ground truth where known, else critic done
    length: int
    episode_return: float
    human_steps: int
    progress_pct: tuple[float | None, ...]  # per step, for value curves (vlac_critic) and plots
    unparsable_progress: int  # steps whose progress answer could not be parsed (reward 0)
    unparsable_done: int  # steps whose done answer could not be parsed (not done, done_prob NaN)
    action_ages_s: tuple[float, ...]  # per executed action: send time - observation capture time
    stale_actions: int  # actions older than max_action_age_s when sent
    greedy: bool
    evaluation: bool
    start_state_id: str | None
    abort_reason: str | None = None  # "<stage>: <exception>" for ABORTED episodes


@dataclass(frozen=True)
class EpisodeResult:
    """The finished episode (already acknowledged by the sink), its summary and where it started;
    ``frontier``: the kept state where a failed episode's return peaked (``run_episode(keep_frontier=True)``)."""

    episode: Episode
    summary: EpisodeSummary
    start_state: StartState
    frontier: StartState | None = None


class _StageError(Exception):
    """An actor, critic or robot call failed mid-episode; ``stage`` names which."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage


def _call(stage: str, fn: Callable, *args):
    try:
        return fn(*args)
    except Exception as error:
        raise _StageError(stage, error) from error


@dataclass(frozen=True)
class CriticVerdict:
    """The critic's scoring of one step: its two answers, the reward they give and its done rule."""

    progress_pct: float | None  # None: the answer was unparsable
    done_prob: float  # NaN: the answer was unparsable
    reward: float  # progress_pct * reward_scale; 0 when unparsable (never invented)
    done: bool  # ``confirmed_done`` over the episode's done probabilities up to this step


class CriticScorer:
    """The critic's verdicts on one episode's steps, scored in order (o_0 -> o_1, o_1 -> o_2, ...).

    The one place the critic's answers become reward and done: the loop scores live steps with it
    and ``vlac.session.demos.score_demo`` a recorded demonstration, so both follow the same rule
    (``reward_scale``, ``done_threshold`` and ``done_confirm_steps`` of the ``LoopConfig``).
    ``first_image`` is the episode's first frame, for in-context critics. The front camera
    (``images[0]``) is the one scored.
    """

    def __init__(self, critic: Critic, config: LoopConfig, task: str, first_image: np.ndarray) -> None:
        self.critic = critic
        self.config = config
        self.task = task
        self.first_image = first_image
        self.done_probs: list[float] = []  # per step so far; NaN where unparsable

    def score(self, earlier: np.ndarray, later: np.ndarray) -> CriticVerdict:
        """The next step's verdict: progress from ``earlier`` to ``later``, done in ``later``."""
        cfg = self.config
        pct = self.critic.progress_pct(earlier, later, self.task, self.first_image)
        done_prob = self.critic.done_prob(later, self.task)
        self.done_probs.append(math.nan if done_prob is None else float(done_prob))
        return CriticVerdict(
            progress_pct=None if pct is None else float(pct),
            done_prob=self.done_probs[-1],
            reward=0.0 if pct is None else float(pct) * cfg.reward_scale,
            done=confirmed_done(self.done_probs, cfg.done_threshold, cfg.done_confirm_steps)[-1],
        )


def human_action(delta: DeltaAction, observation: Observation, robot_id: str, policy_version: int) -> PolicyAction:
    """Wrap a teleoperated move as a PolicyAction: no sampled tokens and no value estimate (NaN).

    It carries the policy version in force when the person acted (a valid wire value, and what
    the policy-lag filter needs); ``Transition.human`` is what marks the step as a person's.
    """
    return PolicyAction(
        delta=delta,
        text=format_action(delta),
        token_logprobs=(),
        value=math.nan,
        policy_version=policy_version,
        obs_stamp_s=observation.stamp_s,
        inference_latency_s=0.0,
        robot_id=robot_id,
        obs_seq=observation.seq,
    )


class EpisodeLoop:
    """Runs episodes of one arm. Not re-entrant: one episode at a time per loop (one loop per arm)."""

    def __init__(
        self,
        robot: Robot,
        actor: Actor,
        critic: Critic,
        sink: EpisodeSink,
        config: LoopConfig,
        operator: Operator | None = None,
        *,
        stop_event: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        episode_id_factory: Callable[[str], str] | None = None,
        ground_truth: GroundTruth | None = None,
    ) -> None:
        """``ground_truth``: the simulator's truth of the robot's scene (None on a real arm); recorded on every
        step, and required by a ``sim_*`` reward source (refused here otherwise, naming the key)."""
        check_reward_source(config.reward_source, ground_truth)
        self.ground_truth = ground_truth
        self.robot = robot
        self.actor = actor
        self.critic = critic
        self.sink = sink
        self.config = config
        self.operator = operator
        self.stop_event = stop_event or threading.Event()
        self._clock = clock
        self._sleep = sleep
        self._new_id = episode_id_factory or (lambda robot_id: f"{robot_id}-{uuid.uuid4().hex[:12]}")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"actor-{robot.robot_id}")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def run_episode(
        self,
        start_state: StartState | None = None,
        *,
        greedy: bool = False,
        evaluation: bool = False,
        allow_takeover: bool = True,
        keep_frontier: bool = False,
    ) -> EpisodeResult:
        """Reset to ``start_state`` (None: fresh), run one episode, record it, return it once recorded.

        ``keep_frontier`` (a ``FrontierRobot`` only): snapshot the state after each step that raises the
        episode's return to a new high above its start (0), and if the episode fails, keep the last such
        snapshot as ``EpisodeResult.frontier`` (return-and-explore to where it got furthest).
        Errors from ``reset`` and from the sink propagate (no episode / nothing can be acknowledged);
        actor, critic and robot errors during the episode end it as ABORTED instead.
        """
        if keep_frontier and not isinstance(self.robot, FrontierRobot):
            raise TypeError(f"robot {self.robot.robot_id!r} cannot snapshot mid-episode states (keep_frontier)")
        start = self.robot.reset(start_state)
        obs = self.robot.observe()
        run = _Run(
            Episode(
                episode_id=self._new_id(self.robot.robot_id),
                robot_id=self.robot.robot_id,
                task=obs.task,
                policy_version=self.actor.policy_version,
                start_state_id=start.state_id,
            ),
            scorer=CriticScorer(self.critic, self.config, obs.task, obs.images[0]),
            truth=self._truth(),
            greedy=greedy,
            allow_takeover=allow_takeover,
            frontier=_Frontier() if keep_frontier else None,
        )
        self.sink.begin_episode(run.episode)
        interrupted: KeyboardInterrupt | None = None
        try:
            run.termination = self._steps(run, obs)
        except _StageError as error:
            if self.stop_event.is_set():  # a call cut short because the runtime is stopping (a ROS node's Ctrl-C)
                run.termination = Termination.SHUTDOWN
            else:
                run.termination, run.abort_reason = Termination.ABORTED, str(error)
        except KeyboardInterrupt as error:  # Ctrl-C: record what we have, then let it propagate
            run.termination, interrupted = Termination.SHUTDOWN, error
        finally:
            if run.pending is not None and interrupted is None:
                run.pending.exception()  # never leave an actor call running into the next episode
        episode = run.episode
        if episode.final_observation is None:
            episode.final_observation = obs
        episode.termination = run.termination
        if run.termination is not Termination.ABORTED and interrupted is None:
            try:
                episode.success = _call("robot", self.robot.ground_truth_success)
            except _StageError as error:
                episode.termination, run.abort_reason = Termination.ABORTED, str(error)
        summary = run.summary(evaluation=evaluation)
        self.sink.finish_episode(episode, summary)
        if interrupted is not None:
            raise interrupted
        frontier = None
        if run.frontier is not None and run.frontier.snapshot is not None and _failed(episode):
            state_id = frontier_state_id(start.state_id, episode.episode_id, run.frontier.step)
            frontier = self.robot.keep_snapshot(run.frontier.snapshot, state_id, run.frontier.image)
        return EpisodeResult(episode=episode, summary=summary, start_state=start, frontier=frontier)

    def _choose(self, run: _Run, obs: Observation) -> tuple[PolicyAction | None, Termination | None]:
        """A teleoperated action, or a reason to stop before acting, or (None, None): the policy acts."""
        robot_id = self.robot.robot_id
        if self.stop_event.is_set():
            return None, Termination.SHUTDOWN
        if self.operator is None:
            return None, None
        if self.operator.end_requested(robot_id):
            return None, Termination.OPERATOR
        if run.allow_takeover:
            delta = self.operator.teleop_action(robot_id, obs)
            if delta is not None:
                return human_action(delta, obs, robot_id, self.actor.policy_version), None
        return None, None

    def _steps(self, run: _Run, obs: Observation) -> Termination:
        """Step until the episode ends; returns why. Stage errors propagate as _StageError."""
        cfg = self.config
        action, stop = self._choose(run, obs)
        if stop is not None:
            return stop
        human = action is not None
        action = action or _call("actor", self.actor.act, obs, run.greedy)
        while True:
            run.note_action_age(self._clock() - action.obs_stamp_s, cfg.max_action_age_s)
            _call("robot", self.robot.execute, action.delta)
            if cfg.observe_delay_s > 0:
                self._sleep(cfg.observe_delay_s)
            next_obs = _call("robot", self.robot.observe)
            next_truth = _call("robot", self._truth)
            last_step = run.episode.length + 1 >= cfg.max_steps
            next_action, stop = (None, None) if last_step else self._choose(run, next_obs)
            if not last_step and stop is None and next_action is None and cfg.overlap_inference:
                run.pending = self._pool.submit(self.actor.act, next_obs, run.greedy)
            transition = self._score(run, obs, action, next_obs, next_truth, human)
            if run.frontier is not None and run.frontier.rises(transition.reward):
                run.frontier.keep(_call("robot", self.robot.snapshot), run.episode.length, next_obs.images[0])
            self.sink.append_step(run.episode, transition)
            obs = next_obs
            if transition.done:
                return Termination.DONE
            if last_step:
                return Termination.STEP_LIMIT
            if stop is not None:
                return stop
            human = next_action is not None
            if human:
                action = next_action
            elif run.pending is not None:
                future, run.pending = run.pending, None
                action = _call("actor", future.result)
            else:
                action = _call("actor", self.actor.act, obs, run.greedy)

    def _truth(self) -> TaskTruth | None:
        return None if self.ground_truth is None else self.ground_truth.truth()

    def _score(
        self,
        run: _Run,
        obs: Observation,
        action: PolicyAction,
        next_obs: Observation,
        next_truth: TaskTruth | None,
        human: bool,
    ) -> Transition:
        """One step appended to the episode: the critic's verdict, the ground truth, and the source's reward/done."""
        verdict = _call("critic", run.scorer.score, obs.images[0], next_obs.images[0])
        reward, done = step_reward(self.config.reward_source, verdict.reward, verdict.done, run.truth, next_truth)
        before, run.truth = run.truth, next_truth
        transition = Transition(
            observation=obs,
            action=action,
            progress_pct=verdict.progress_pct,
            reward=reward,
            done_prob=verdict.done_prob,
            done=done,
            human=human,
            critic_done=verdict.done,
            gt_progress=None if next_truth is None else next_truth.potential - before.potential,
            gt_done=None if next_truth is None else next_truth.success,
            gt_phase="" if before is None else before.phase,
        )
        run.unparsable_progress += int(verdict.progress_pct is None)
        run.unparsable_done += int(math.isnan(verdict.done_prob))
        run.episode.transitions.append(transition)
        run.episode.final_observation = next_obs
        return transition


def _failed(episode: Episode) -> bool:
    """An episode that ran and failed: what return-and-explore keeps a state of."""
    return episode.termination not in (Termination.ABORTED, Termination.SHUTDOWN) and not episode.succeeded


@dataclass
class _Frontier:
    """The running return of an episode and the state after the step where it last reached a new high."""

    episode_return: float = 0.0
    best_return: float = 0.0  # the start's: a frontier must lie past it
    snapshot: Any = None
    step: int = 0
    image: np.ndarray | None = None

    def rises(self, reward: float) -> bool:
        self.episode_return += reward
        return self.episode_return > self.best_return

    def keep(self, snapshot: Any, step: int, image: np.ndarray) -> None:
        # A copy: the frame also lives in the episode's observation, and a checkpoint that holds both
        # (trainer rollouts and the return-and-explore store) refuses arrays sharing memory.
        self.best_return, self.snapshot, self.step, self.image = self.episode_return, snapshot, step, image.copy()


@dataclass
class _Run:
    """The state of one running episode (what the summary is built from)."""

    episode: Episode
    scorer: CriticScorer  # the critic's verdicts on this episode's steps (keeps the first frame and done run)
    truth: TaskTruth | None  # ground truth of the latest observation (None without a simulator)
    greedy: bool
    allow_takeover: bool
    termination: Termination | None = None
    abort_reason: str | None = None
    pending: Future | None = None  # the actor's call for the next step, when overlapped with the critic
    frontier: _Frontier | None = None  # tracked only for return-and-explore to the frontier
    action_ages_s: list[float] = field(default_factory=list)
    stale_actions: int = 0
    unparsable_progress: int = 0
    unparsable_done: int = 0

    def note_action_age(self, age_s: float, max_age_s: float) -> None:
        self.action_ages_s.append(age_s)
        self.stale_actions += int(age_s > max_age_s)

    def summary(self, evaluation: bool) -> EpisodeSummary:
        episode = self.episode
        aborted = episode.termination is Termination.ABORTED
        return EpisodeSummary(
            episode_id=episode.episode_id,
            robot_id=episode.robot_id,
            termination=episode.termination,
            succeeded=False if aborted else episode.succeeded,
            length=episode.length,
            episode_return=episode.episode_return,
            human_steps=episode.human_steps,
            progress_pct=tuple(t.progress_pct for t in episode.transitions),
            unparsable_progress=self.unparsable_progress,
            unparsable_done=self.unparsable_done,
            action_ages_s=tuple(self.action_ages_s),
            stale_actions=self.stale_actions,
            greedy=self.greedy,
            evaluation=evaluation,
            start_state_id=episode.start_state_id,
            abort_reason=self.abort_reason,
        )
