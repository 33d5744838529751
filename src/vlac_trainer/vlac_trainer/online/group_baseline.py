"""Advantages from a group of episodes with the same start: the leave-one-out baseline (RLOO; Kool et al. 2019,
"Buy 4 REINFORCE samples, get a baseline for free"; Ahmadian et al. 2024).

``trainer_node.advantage: group`` with ``episode_manager.scene_repeats`` k > 1: an arm runs each fresh
scene k times in a row, and every step of episode i gets

    A_i = R_i - mean(R_j for the other episodes j of its group)

where R is the episode's undiscounted return and a group is the batch's episodes with one
``start_state_id``. Why: the GAE advantage leans on V(s), which on 40-200 episodes explains 10-40 % of
the returns' variance here (issue 11), so most of an advantage is how hard the scene was. Within a
group the scene is the same, so the difference is what the policy did: a group whose episodes all
succeed (or all fail alike) has zero advantages, where GAE's noise moved the policy anyway. Exactly 0.0: returns
within ``RETURN_TIE`` of each other are a tie, because two successes' returns are sums of different per-step
potential changes and differ by ~1e-16; the advantages that leaves (~1e-17) are no signal, yet Adam normalises
any gradient to a full step (ggz's run: 5 of 60 updates, KL up to 0.005, which ``skip_zero_gradient_steps`` did
not catch, their gradient norm being 1e-15, not 0). Adam's momentum still moves it on a zero gradient (KL
0.001-0.005 per such update in gg's run, up to 0.127 right after a large step in ggn's);
``trainer_node.skip_zero_gradient_steps`` takes no step then.

Every step carries its episode's advantage, so a longer episode weighs more: failures that run to the step
limit outweigh shorter successes, and a mixed group's update leans negative (docs/rl_experiments.md, "A group
baseline from repeated scenes": mean advantage per step -0.13 to -0.15). ``group_weighting: episode`` scales each step's
advantage by (the batch's mean episode length / its episode's length) (``length_balanced``): an episode's
steps then sum to A_i x mean length whatever its length, and since the leave-one-out advantages of a group
sum to zero, so does the group's push. Scaling the advantage by a positive weight is exactly weighting the
step's clipped surrogate, min(r A w, clip(r) A w) = w min(r A, clip(r) A).
In docs/rl_experiments.md it did worse than the per-step default (variant ``gge``: 16 and 28 of 40 held-out scenes
against ``gg``'s 25 and 27): the lean was not what held the group baseline at the prior.

With a potential-difference reward (``sim_dense``) R_i is the potential reached minus the start's, the
same start for the whole group, so A_i compares where the episodes ended. An episode alone in the batch
has no baseline: it is left out of the update and counted (``UpdateStats.ungrouped_episodes``).

``advantage: group_phase`` (``phase_matched_advantages``) gives credit per task phase instead of per episode. gg
hands every step its episode's whole advantage, so an episode that grasped and then hovered without releasing,
beside two that never grasped, teaches "more of this" for its hovering too. Here an episode is cut into visits
(runs of steps in one simulator phase, ``Transition.gt_phase``: reach, carry, release, ...), and every step of a
visit gets

    A = G_i(entry of the visit) - mean(G_j(first entry into that phase) for the other episodes j that got there)

with G the undiscounted return to go. Its first visit (the shared start's phase) is gg's advantage exactly; a later
visit is judged only against the episodes that reached the same phase, by what each made of it from there: the
hoverer's carry steps are measured against the one that released. A visit of a phase no other episode of the group
reached has no comparison of its own and keeps the advantage of the episode's last visit that had one (the release
of the group's only success is credited with that success against the others from their last shared phase). Why
unbiased: the baseline depends on the state's phase and the group's other episodes only, never on the step's own
action, and the rewards a visit's return adds before the step were earned before it (an asymmetric baseline: the
simulator's phase is privileged information the policy does not see, which is why it needs a simulated arm, whose
every step records the phase whatever the reward source, and is refused on a real one). docs/rl_experiments.md,
"Credit per task phase": on rl44 it changed 11 % of the steps' advantages and the run did no better than gg.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

#: Returns closer than this are equal (float summation noise is ~1e-16; a real difference is a share of a potential
#: of 1 reached or not, orders of magnitude above this).
RETURN_TIE = 1e-9


def leave_one_out_advantages(groups: Sequence[str], returns: Sequence[float]) -> list[float | None]:
    """A_i = R_i - mean of the other R_j with ``groups[j] == groups[i]``; None where i is alone in its group."""
    if len(groups) != len(returns):
        raise ValueError(f"leave_one_out_advantages: {len(groups)} group keys for {len(returns)} returns")
    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(groups):
        members[key].append(i)
    advantages: list[float | None] = [None] * len(returns)
    for indices in members.values():
        n = len(indices)
        if n < 2:
            continue
        group_returns = [returns[i] for i in indices]
        if max(group_returns) - min(group_returns) <= RETURN_TIE:
            # Exactly zero: float summation leaves ~1e-17, which is no signal but still a gradient for Adam.
            for i in indices:
                advantages[i] = 0.0
            continue
        total = sum(group_returns)
        for i in indices:
            advantages[i] = returns[i] - (total - returns[i]) / (n - 1)
    return advantages


def length_balanced(advantages: Sequence[float], lengths: Sequence[int]) -> list[float]:
    """Each episode's advantage x (mean of ``lengths`` / its length): per step, so that every episode's steps
    push alike in sum (A_i x mean length) whatever its length."""
    if len(advantages) != len(lengths):
        raise ValueError(f"length_balanced: {len(advantages)} advantages for {len(lengths)} episode lengths")
    if any(n < 1 for n in lengths):
        raise ValueError(f"length_balanced: episode lengths must be >= 1 step, got {list(lengths)}")
    if not lengths:
        return []
    mean_length = sum(lengths) / len(lengths)
    return [a * mean_length / n for a, n in zip(advantages, lengths, strict=True)]


def phase_visits(phases: Sequence[str]) -> list[tuple[str, int]]:
    """The runs of equal consecutive ``phases`` as (phase, index of the run's first step)."""
    return [(phase, t) for t, phase in enumerate(phases) if t == 0 or phases[t - 1] != phase]


def phase_matched_advantages(
    groups: Sequence[str], rewards: Sequence[Sequence[float]], phases: Sequence[Sequence[str]]
) -> list[list[float] | None]:
    """Per-step advantages of each episode (module docstring, ``group_phase``): ``rewards[i]`` and ``phases[i]`` are
    episode i's per-step rewards and the phase at each step's start; None for an episode alone in its group."""
    if not len(groups) == len(rewards) == len(phases):
        raise ValueError(
            f"phase_matched_advantages: {len(groups)} group keys, {len(rewards)} reward lists, "
            f"{len(phases)} phase lists"
        )
    to_go: list[list[float]] = []
    for i, (r, p) in enumerate(zip(rewards, phases, strict=True)):
        if len(r) != len(p) or not r:
            raise ValueError(f"phase_matched_advantages: episode {i} has {len(r)} rewards and {len(p)} phases")
        if not all(p):
            raise ValueError(f"phase_matched_advantages: episode {i} step {list(p).index('')} has no phase")
        suffix, total = [0.0] * len(r), 0.0
        for t in range(len(r) - 1, -1, -1):
            total += r[t]
            suffix[t] = total
        to_go.append(suffix)
    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(groups):
        members[key].append(i)
    advantages: list[list[float] | None] = [None] * len(groups)
    for key, indices in members.items():
        if len(indices) < 2:
            continue
        # Each episode's return to go at its first entry into each phase it reached: what the others are judged by.
        visits = {i: phase_visits(phases[i]) for i in indices}
        first_entry = {i: {} for i in indices}
        for i in indices:
            for phase, entry in visits[i]:
                first_entry[i].setdefault(phase, to_go[i][entry])
        for i in indices:
            per_step: list[float] = []
            advantage: float | None = None
            for k, (phase, entry) in enumerate(visits[i]):
                end = visits[i][k + 1][1] if k + 1 < len(visits[i]) else len(phases[i])
                others = [first_entry[j][phase] for j in indices if j != i and phase in first_entry[j]]
                if others:
                    advantage = to_go[i][entry] - sum(others) / len(others)
                    if abs(advantage) <= RETURN_TIE:
                        advantage = 0.0  # a tie (float summation noise) is no signal: exactly zero, as in gg
                elif advantage is None:
                    raise ValueError(
                        f"phase_matched_advantages: group {key!r}: episode {i} starts in phase {phase!r}, which no "
                        "other episode of its group visits (a group shares its start, so its first phase)"
                    )
                per_step.extend([advantage] * (end - entry))
            advantages[i] = per_step
    return advantages
