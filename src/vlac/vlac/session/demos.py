"""Demonstrations for offline demonstration replay, and a scripted stand-in for the operator in simulation.

``load_demos`` reads a folder of ``vlac collect-demos`` output: ``.npz`` episodes (the fast format)
or, when there are none, episode bags. Every step becomes a human step (``human=True``, policy
version -1): a demonstration was not sampled from the policy, so it goes to the demo buffer (NLL),
never into a PPO ratio. Optionally the critic scores each demo (``score_demo``: progress between
consecutive frames -> reward, done probability and the done rule) with the loop's own
``CriticScorer``, so a demo gets exactly the rewards and the end a live episode would, and the
value head can warm up on demonstrations too.

``ScriptedOperator`` is human-guided explore without a person: in the episodes it is told to take,
it lets the policy act for ``takeover_after_steps`` steps, then the task's scripted expert takes
over (steps flagged human) and ends the episode when its plan is done.
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


class ScriptedOperator:
    """The loop's Operator for simulated arms: the scripted expert takes over chosen episodes."""

    def __init__(self, robots: dict, task: str, takeover_after_steps: int) -> None:
        self.robots = robots  # robot_id -> SimArm
        self.task = task
        self.takeover_after_steps = takeover_after_steps
        self._episodes: dict[str, dict] = {}
        self._lock = threading.Lock()

    def begin_episode(self, robot_id: str, take_over: bool, seed: int) -> None:
        from piper_driver.sim.tasks import make_expert

        with self._lock:
            expert = make_expert(self.task, "expert", np.random.default_rng([seed, 11])) if take_over else None
            self._episodes[robot_id] = {"expert": expert, "steps": 0, "end": False}

    def end_requested(self, robot_id: str) -> bool:
        with self._lock:
            state = self._episodes.get(robot_id)
            return bool(state and state["end"])

    def teleop_action(self, robot_id: str, observation: Observation) -> DeltaAction | None:
        with self._lock:
            state = self._episodes.get(robot_id)
            if state is None or state["expert"] is None:
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
