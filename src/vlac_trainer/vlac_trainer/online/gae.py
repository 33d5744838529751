"""Generalised advantage estimation (GAE) for one episode, with the truncation/termination split.

An episode that ended because the critic said "done" reached an absorbing state: nothing follows,
so the last step's target is its reward alone. An episode cut off by the step limit, an operator
or a shutdown did not: the world would have gone on, so the last step bootstraps from the value of
the observation it stopped at (``Episode.final_observation``). Getting this wrong teaches the value
head that every step limit is a cliff. Aborted episodes are not trained on at all.

Symbols follow the paper/cleanrl: delta_t = r_t + gamma * V(s_{t+1}) * nonterminal - V(s_t),
A_t = delta_t + gamma * lambda * nonterminal * A_{t+1}, returns R_t = A_t + V(s_t).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vlac_core.types import Episode, Termination


def bootstraps(termination: Termination | None) -> bool:
    """True when an episode that ended this way bootstraps its last step from the final value.

    DONE is a true termination (no bootstrap). STEP_LIMIT, OPERATOR and SHUTDOWN are truncations:
    the episode stopped, the task did not end. An operator ending an episode is treated as a
    truncation because the operator's reason is not recorded; success is the critic's call.
    """
    if termination is Termination.DONE:
        return False
    if termination in (Termination.STEP_LIMIT, Termination.OPERATOR, Termination.SHUTDOWN):
        return True
    if termination is Termination.ABORTED:
        raise ValueError("termination=ABORTED: aborted episodes are kept on disk but not trained on (no GAE)")
    raise ValueError(f"termination={termination!r}: the episode has no termination reason; bootstrapping is undefined")


def _as_1d(name: str, values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    tensor = values if isinstance(values, torch.Tensor) else torch.as_tensor(values, dtype=torch.float64)
    if tensor.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence (one entry per step), got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name}: non-finite entry in {tensor.tolist()}")
    return tensor


def compute_gae(
    rewards: Sequence[float] | torch.Tensor,
    values: Sequence[float] | torch.Tensor,
    *,
    terminated: bool,
    bootstrap_value: float | None,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns of one episode of T steps.

    ``values[t]`` is V(s_t) for the observation step t acted on. ``terminated`` says the last step
    reached an absorbing state (no bootstrap); otherwise ``bootstrap_value`` = V(final observation)
    is required. Returns ``(advantages, returns)``, each of shape (T,), in ``values``' dtype.
    """
    rewards = _as_1d("rewards", rewards)
    values = _as_1d("values", values)
    if rewards.shape != values.shape:
        raise ValueError(f"rewards and values: one per step expected, got {rewards.numel()} and {values.numel()}")
    if rewards.numel() == 0:
        raise ValueError("rewards: empty episode (0 steps) has no advantages")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma={gamma}: expected a discount in [0, 1]")
    if not 0.0 <= gae_lambda <= 1.0:
        raise ValueError(f"gae_lambda={gae_lambda}: expected a value in [0, 1]")
    if terminated:
        next_value = 0.0  # unused: nextnonterminal is 0 at the last step
    else:
        if bootstrap_value is None or not math.isfinite(float(bootstrap_value)):
            raise ValueError(
                f"bootstrap_value={bootstrap_value!r}: a truncated episode needs the finite V(final observation)"
            )
        next_value = float(bootstrap_value)

    rewards = rewards.to(values.dtype)
    num_steps = values.numel()
    advantages = torch.zeros_like(values)
    lastgaelam = 0.0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = 0.0 if terminated else 1.0
            nextvalues = next_value
        else:
            nextnonterminal = 1.0  # no step inside an episode is terminal
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    returns = advantages + values
    return advantages, returns


def episode_advantages(
    episode: Episode,
    values: Sequence[float] | torch.Tensor,
    bootstrap_value: float | None,
    *,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over a recorded episode: its rewards, the (recomputed) values V(o_t), and how it ended.

    ``bootstrap_value`` = V(episode.final_observation) is used only when the termination bootstraps;
    pass None for a DONE episode.
    """
    terminated = not bootstraps(episode.termination)
    rewards = [t.reward for t in episode.transitions]
    return compute_gae(
        rewards,
        values,
        terminated=terminated,
        bootstrap_value=None if terminated else bootstrap_value,
        gamma=gamma,
        gae_lambda=gae_lambda,
    )
