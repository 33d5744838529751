"""Success rate of a policy in the simulator: greedy (or sampled) episodes on held-out scene seeds.

Why here, in ``vlac``: an evaluation episode is an ``EpisodeLoop`` episode like every other (the one
loop, ``vlac.episode``), and the loop and the session's simulated arm (``piper_driver.sim.arm.SimArm``:
a ``SimBackend`` behind ``SafeArm``, so every action passes the safety envelope) live in this package,
which depends on ``vlac_actor``, never the reverse. What is the actor's own lives in ``vlac_actor``:
``lockstep.LockstepActor`` batches the arms' requests into one ``TorchBackend`` decode per step.

Several simulated arms run side by side (``vlac.episode.evaluation.run_in_parallel``: one loop and
thread per arm, seeds shared out), so the policy decodes one batch per step for all of them. Each
episode starts from its seed's scene and ends at ground-truth success (the loop's ``sim_sparse``
reward source: done = the simulator's success) or after ``max_steps`` actions (STEP_LIMIT). Success
is ``Episode.succeeded`` (ground truth) — evaluation only, never a reward; no critic is asked. A
motion the envelope refuses aborts the episode: a failure, with the reason, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from vlac_core.types import StartState


@dataclass(frozen=True)
class EpisodeOutcome:
    task: str
    seed: int
    success: bool
    steps: int  # actions executed
    error: str = ""  # why the episode aborted (a motion the safety envelope refused): a failure, with the reason


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


class _NoCritic:
    """Nothing to ask: an actor evaluation ends and scores episodes by ground truth only."""

    def progress_pct(self, earlier_image, later_image, task, first_image) -> None:
        return None

    def done_prob(self, image, task) -> None:
        return None


class _NoRecording:
    """Evaluation episodes are counted, not kept."""

    def begin_episode(self, episode) -> None:
        pass

    def append_step(self, episode, transition) -> None:
        pass

    def finish_episode(self, episode, summary) -> None:
        pass


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
    """Run one episode per entry of ``seeds`` (a seed listed twice runs twice: with ``greedy`` False, two draws)
    of ``task`` with ``policy``; ``parallel`` arms share each decoding batch."""
    from piper_driver.sim.arm import SimArm, SnapshotStore, seed_start_state
    from piper_driver.sim.node_config import SimNodeConfig
    from vlac.episode.evaluation import run_in_parallel
    from vlac.episode.loop import EpisodeLoop
    from vlac.param_file import EpisodeManagerConfig
    from vlac_actor.backend import TorchBackend
    from vlac_actor.lockstep import LockstepActor

    if not seeds:
        raise ValueError("seeds: no evaluation episodes requested")
    if max_steps < 1 or parallel < 1:
        raise ValueError(f"max_steps and parallel must be >= 1, got {max_steps}, {parallel}")
    arm = SimNodeConfig(task=task, image_size_px=image_size_px)  # the session's simulated arm, its safety envelope
    snapshots = SnapshotStore()
    robots = [
        SimArm(f"eval_{k}", task, arm.sim_config(), arm.safety_config(), first_seed=seeds[0], snapshots=snapshots)
        for k in range(min(parallel, len(seeds)))
    ]
    actor = LockstepActor(TorchBackend(policy, seed=sample_seed), arms=len(robots))
    manager = EpisodeManagerConfig(max_steps=max_steps, reward_source="sim_sparse", overlap_inference=False)
    config = manager.loop_config()  # the episode manager's loop, done rule included (sim_sparse: ground truth decides)
    loops = [
        EpisodeLoop(robot, actor, _NoCritic(), _NoRecording(), config, clock=robot.clock, ground_truth=robot)
        for robot in robots
    ]
    text = robots[0].task_text
    starts = [seed_start_state(task, seed) for seed in seeds]
    outcomes: list[EpisodeOutcome] = []

    def on_result(start: StartState, result) -> None:
        summary = result.summary
        error = f"step {summary.length}: {summary.abort_reason}" if summary.abort_reason else ""
        outcome = EpisodeOutcome(task, int(start.params["seed"]), summary.succeeded, summary.length, error)
        outcomes.append(outcome)
        if on_episode is not None:
            on_episode(outcome)

    def on_arm_done(loop: EpisodeLoop) -> None:
        try:
            actor.leave()  # the other arms no longer wait for this one's requests
        finally:
            loop.robot.close()  # in the arm's own thread: its GL context is current there (EGL)

    try:
        run_in_parallel(loops, starts, greedy=greedy, on_result=on_result, on_arm_done=on_arm_done)
    finally:
        for loop in loops:
            loop.close()
    outcomes.sort(key=lambda o: o.seed)
    return TaskEvaluation(task=task, text=text, outcomes=tuple(outcomes))
