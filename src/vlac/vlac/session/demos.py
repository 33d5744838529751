"""Demonstrations for offline demonstration replay, and a scripted stand-in for the operator in simulation.

``load_demos`` reads a folder of ``vlac collect-demos`` output: ``.npz`` episodes (the fast format)
or, when there are none, episode bags. Every step becomes a human step (``human=True``, policy
version -1): a demonstration was not sampled from the policy, so it goes to the demo buffer (NLL),
never into a PPO ratio. Optionally the critic scores each demo (``score_demo``: progress between
consecutive frames -> reward, done probability and the done rule) with the loop's own
``CriticScorer``, so a demo gets exactly the rewards and the end a live episode would, and the
value head can warm up on demonstrations too.

``ScriptedOperator`` is human-guided explore without a person, in two ways. In the episodes it is
told to take, it lets the policy act for ``takeover_after_steps`` steps, then the task's scripted
expert takes over (steps flagged human) and ends the episode when its plan is done. With
``stall_steps``, it watches every training episode as an operator watches the robot, and takes over
one whose ground-truth progress (the task's potential) has not risen for that many steps: the
policy stalled (holding the bowl over the plate and not letting go, or hovering mid-way). With
``stall_phases`` only steps in those task phases count (``("release",)``: only a bowl held low over
the plate, where letting go places it, and not let go), so the operator teaches one move instead of
finishing every slow episode. From the state the policy reached, the task's state labeler
(``vlac_trainer.offline.dagger``) keeps the expert's plan in step with the scene, and the operator ends
the episode once the task is done.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from vlac.episode.loop import CriticScorer, LoopConfig
from vlac_core.types import DeltaAction, Episode, Observation, Termination


class DemoLoadError(ValueError):
    """A demonstration folder or file cannot be used; the message names it."""


def as_demo(episode: Episode) -> Episode:
    """Every step of ``episode`` flagged human, without log-probs (no policy sampled them)."""
    transitions = [replace(t, human=True, action=replace(t.action, token_logprobs=())) for t in episode.transitions]
    return replace(episode, transitions=transitions)


def load_demos(folder: str | Path, *, max_episodes: int, robot_id: str = "demo") -> list[Episode]:
    """Successful demonstrations under ``folder`` (npz first, else bags), at most ``max_episodes``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DemoLoadError(f"demo_dir: {folder} is not a folder")
    episodes: list[Episode] = []
    npz_files = sorted(folder.rglob("*.npz"))
    if npz_files:
        from piper_driver.sim.convert import record_to_episode
        from piper_driver.sim.demo_format import DemoFormatError, load_episode_npz

        for path in npz_files:
            if len(episodes) >= max_episodes:
                break
            try:
                record = load_episode_npz(path)
            except DemoFormatError as error:
                raise DemoLoadError(str(error)) from error
            if record.success and record.length > 0:
                episodes.append(as_demo(record_to_episode(record, robot_id=robot_id, episode_id=path.stem)))
    else:
        from vlac_core.bag import BagError, read_episode

        for meta in sorted(folder.rglob("metadata.yaml")):
            if len(episodes) >= max_episodes:
                break
            try:
                episode = read_episode(meta.parent)
            except BagError as error:
                raise DemoLoadError(str(error)) from error
            if episode.length > 0 and episode.success is not False:
                episodes.append(as_demo(episode))
    if not episodes:
        raise DemoLoadError(f"demo_dir: no successful demonstration (.npz or episode bag) under {folder}")
    return episodes


def score_demo(episode: Episode, critic, config: LoopConfig) -> Episode:
    """The critic's rewards for a demonstration, exactly as the loop gives them online.

    Scored by the loop's own ``CriticScorer`` with ``config`` (reward scale, done threshold and
    ``done_confirm_steps``), and ended where the loop would end a live episode: at the first step
    whose done is confirmed (``Termination.DONE``; the demonstration's later steps are dropped),
    else after its last step (``STEP_LIMIT``). A demonstration carries no ground truth, so the
    reward is the critic's whatever ``config.reward_source`` says.
    """
    if not episode.transitions:
        return episode
    frames = [t.observation.images[0] for t in episode.transitions]
    frames.append(episode.final_observation.images[0] if episode.final_observation else frames[-1])
    scorer = CriticScorer(critic, config, episode.task, frames[0])
    transitions = []
    for t, transition in enumerate(episode.transitions):
        verdict = scorer.score(frames[t], frames[t + 1])
        transitions.append(
            replace(
                transition,
                progress_pct=verdict.progress_pct,
                reward=verdict.reward,
                done_prob=verdict.done_prob,
                done=verdict.done,
                critic_done=verdict.done,
            )
        )
        if verdict.done:
            break
    cut = len(transitions) < len(episode.transitions)
    final = episode.transitions[len(transitions)].observation if cut else episode.final_observation
    termination = Termination.DONE if transitions[-1].done else Termination.STEP_LIMIT
    return replace(episode, transitions=transitions, final_observation=final, termination=termination)


#: The session keys of the stall takeover, named in refusals.
STALL_KEY = "session.guided_explore_stall_steps"
STALL_PHASES_KEY = "session.guided_explore_stall_phases"
#: A rise of the ground-truth potential smaller than this is no progress (a hovering arm jitters).
STALL_MIN_GAIN = 0.01


class ScriptedOperator:
    """The loop's Operator for simulated arms: the scripted expert takes over chosen episodes, and
    (``stall_steps`` > 0) any training episode that stalls."""

    def __init__(
        self,
        robots: dict,
        task: str,
        takeover_after_steps: int,
        stall_steps: int = 0,
        stall_phases: tuple[str, ...] = (),
    ) -> None:
        from piper_driver.sim.tasks import make_task
        from vlac_trainer.offline.dagger import make_labeler

        if stall_steps:
            try:
                make_labeler(task, np.random.default_rng(0))
            except ValueError as error:
                raise ValueError(f"{STALL_KEY}={stall_steps}: {error}") from None
        unknown = sorted(set(stall_phases) - set(make_task(task).phases))
        if unknown:
            raise ValueError(
                f"{STALL_PHASES_KEY}: {', '.join(unknown)} not phases of {task!r} "
                f"(its phases: {', '.join(make_task(task).phases)})"
            )
        self.robots = robots  # robot_id -> SimArm
        self.task = task
        self.takeover_after_steps = takeover_after_steps
        self.stall_steps = stall_steps
        self.stall_phases = frozenset(stall_phases)
        self._episodes: dict[str, dict] = {}
        self._lock = threading.Lock()

    def begin_episode(self, robot_id: str, take_over: bool, seed: int, watch: bool = True) -> None:
        """A new episode on ``robot_id``: the expert takes it over after ``takeover_after_steps`` when
        ``take_over``; otherwise, when ``watch`` and ``stall_steps`` are set, the operator takes over once it stalls."""
        from piper_driver.sim.tasks import make_expert

        with self._lock:
            expert = make_expert(self.task, "expert", np.random.default_rng([seed, 11])) if take_over else None
            self._episodes[robot_id] = {
                "expert": expert,
                "steps": 0,
                "end": False,
                "watch": watch and self.stall_steps > 0 and not take_over,
                "best": -np.inf,  # highest potential so far
                "since": 0,  # steps since it last rose by STALL_MIN_GAIN
                "labeler": None,  # set at the takeover
                "rng": np.random.default_rng([seed, 12]),
            }

    def end_requested(self, robot_id: str) -> bool:
        with self._lock:
            state = self._episodes.get(robot_id)
            return bool(state and state["end"])

    def teleop_action(self, robot_id: str, observation: Observation) -> DeltaAction | None:
        with self._lock:
            state = self._episodes.get(robot_id)
            if state is None:
                return None
            if state["watch"]:
                return self._after_stall(robot_id, state, observation)
            if state["expert"] is None:
                return None
            state["steps"] += 1
            if state["steps"] <= self.takeover_after_steps:
                return None
            backend = self.robots[robot_id].backend
            action = state["expert"].act(backend.observe(), backend.describe())
            if action is None:
                state["end"] = True
                return DeltaAction(0, 0, 0, 0, 0, 0, int(observation.gripper_open))
            return action

    def _after_stall(self, robot_id: str, state: dict, observation: Observation) -> DeltaAction | None:
        """None while the policy makes progress; once it has stalled, the labeler's action (ending at success)."""
        from vlac_trainer.offline.dagger import make_labeler

        arm = self.robots[robot_id]
        if state["labeler"] is None:
            truth = arm.truth()
            if truth.potential >= state["best"] + STALL_MIN_GAIN:
                state["best"], state["since"] = truth.potential, 0
                return None
            if self.stall_phases and truth.phase not in self.stall_phases:
                return None  # slow progress outside the watched phases is not a stall
            state["since"] += 1
            if state["since"] < self.stall_steps:
                return None
            state["labeler"] = make_labeler(self.task, state["rng"])
        backend = arm.backend
        if backend.success():
            state["end"] = True
            return DeltaAction(0, 0, 0, 0, 0, 0, int(observation.gripper_open))
        return state["labeler"].label(backend.observe(), backend.describe(), False)
