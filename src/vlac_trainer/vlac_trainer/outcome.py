"""How the trainer and the episode manager judge an episode: success, and whether PPO may train on it.

One definition, used by per-robot sampling, return-and-explore and evaluation, so "success rate"
means the same everywhere.
"""

from __future__ import annotations

from vlac_core.types import Episode, Termination


def episode_succeeded(episode: Episode) -> bool:
    """Ground truth where a simulator gave it (``Episode.success``), else the critic's verdict.

    Without ground truth (a real arm) the only success signal is the critic's done probability
    crossing its threshold, i.e. ``termination == DONE``.
    """
    if episode.success is not None:
        return bool(episode.success)
    return episode.termination is Termination.DONE


def is_autonomous(episode: Episode) -> bool:
    """True when no step was teleoperated: every action came from the policy."""
    return episode.human_steps == 0


def is_trainable_rollout(episode: Episode) -> str | None:
    """None if PPO may train on ``episode``; otherwise the reason it may not."""
    if episode.termination is None:
        return "it has no termination reason (not finished)"
    if episode.termination is Termination.ABORTED:
        return "it was aborted (kept on disk, not trained on)"
    if episode.length == 0:
        return "it has no steps"
    if not is_autonomous(episode):
        return f"{episode.human_steps} of its steps were teleoperated (it belongs in the demo buffer)"
    if episode.termination is not Termination.DONE and episode.final_observation is None:
        return "it was truncated but has no final observation to bootstrap from"
    return None
