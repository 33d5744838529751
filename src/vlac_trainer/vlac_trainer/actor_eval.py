"""Success rate of a policy in the simulator: greedy (or sampled) episodes on held-out scene seeds.

Several simulated arms run side by side so the policy decodes one batch per step for all of them
(the actor's own batched structured decoding, ``vlac_actor.decoding.decode_actions``); each arm
starts from its seed's scene and stops at ground-truth success or after ``max_steps`` actions.
Ground truth is the simulator's success check — evaluation only, never a reward. The observation and
the prompt are built as in the RL loop (``SimBackend.observation`` -> ``vlac_actor.inputs.actor_content``),
and an action moves the arm exactly as a collected demo step did (``SimBackend.execute``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class EpisodeOutcome:
    task: str
    seed: int
    success: bool
    steps: int  # actions executed
    error: str = ""  # a motion the simulator refused (counted as a failure, with the reason)


@dataclass(frozen=True)
class TaskEvaluation:
    task: str
    text: str
    outcomes: tuple[EpisodeOutcome, ...]

    @property
    def success_rate(self) -> float:
        return sum(o.success for o in self.outcomes) / len(self.outcomes)

    def summary(self) -> dict:
        wins = [o.steps for o in self.outcomes if o.success]
        return {
            "task": self.task,
            "text": self.text,
            "episodes": len(self.outcomes),
            "successes": sum(o.success for o in self.outcomes),
            "success_rate": round(self.success_rate, 4),
            "mean_steps_to_success": round(sum(wins) / len(wins), 2) if wins else None,
            "refused_motions": sum(bool(o.error) for o in self.outcomes),
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def evaluate_policy_on_task(
    policy,
    task: str,
    seeds: Sequence[int],
    *,
    max_steps: int = 80,
    parallel: int = 10,
    image_size_px: int = 64,
    greedy: bool = True,
    sample_seed: int = 0,
    on_episode: Callable[[EpisodeOutcome], None] | None = None,
) -> TaskEvaluation:
    """Run one episode per seed of ``task`` with ``policy``; ``parallel`` arms share each decoding batch."""
    from piper_driver.robot import MotionRefused
    from piper_driver.sim.backend import SimBackend, SimConfig
    from piper_driver.sim.tasks import make_task
    from vlac_actor.decoding import SamplingSettings, decode_actions
    from vlac_actor.inputs import InputLimits, actor_content

    if not seeds:
        raise ValueError("seeds: no evaluation episodes requested")
    if max_steps < 1 or parallel < 1:
        raise ValueError(f"max_steps and parallel must be >= 1, got {max_steps}, {parallel}")
    pending = list(seeds)
    arms = []
    for _ in range(min(parallel, len(pending))):
        backend = SimBackend(make_task(task), SimConfig(image_size_px=image_size_px))
        backend.connect()
        arms.append({"backend": backend, "seed": None, "steps": 0})
    text = arms[0]["backend"].task.text
    limits = InputLimits()
    generator = torch.Generator().manual_seed(sample_seed)
    settings = SamplingSettings(greedy=greedy)
    outcomes: list[EpisodeOutcome] = []

    def start(arm) -> bool:
        if not pending:
            arm["seed"] = None
            return False
        arm["seed"], arm["steps"] = pending.pop(0), 0
        arm["backend"].reset(arm["seed"])
        arm["backend"].enable()
        return True

    def finish(arm, success: bool, error: str = "") -> None:
        outcome = EpisodeOutcome(task, int(arm["seed"]), success, arm["steps"], error)
        outcomes.append(outcome)
        if on_episode is not None:
            on_episode(outcome)
        start(arm)

    for arm in arms:
        start(arm)
    while any(arm["seed"] is not None for arm in arms):
        active = [arm for arm in arms if arm["seed"] is not None]
        prompts = [actor_content(arm["backend"].observation(), limits) for arm in active]
        decoded = decode_actions(
            policy, [p for p, _ in prompts], [ims for _, ims in prompts], [settings] * len(active), generator
        )
        for arm, action in zip(active, decoded, strict=True):
            try:
                arm["backend"].execute(action.delta)
            except (MotionRefused, ValueError) as error:
                finish(arm, False, f"step {arm['steps']}: {error}")
                continue
            arm["steps"] += 1
            if arm["backend"].success():
                finish(arm, True)
            elif arm["steps"] >= max_steps:
                finish(arm, False)
    for arm in arms:
        arm["backend"].disconnect()
    outcomes.sort(key=lambda o: o.seed)
    return TaskEvaluation(task=task, text=text, outcomes=tuple(outcomes))
