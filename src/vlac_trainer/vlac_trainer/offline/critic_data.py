"""Critic training samples built from recorded successful episodes, following the VLAC recipe.

Rules (shared VLAC_REFERENCE.md, "Progress, values and metrics"), for a trajectory of frames
``o_0 .. o_T`` (T steps, T+1 frames):

- Pair label ``c = dt / (T - i)`` for the pair (o_i, o_{i+dt}), any distance, both directions. For a
  backward pair (later frame first) ``i`` is the pair's *earlier-in-time* frame and the label is the
  forward label negated, so (a, b) and (b, a) always carry opposite labels: the value rule then
  rebuilds ``v_i = i / T`` from forward pairs and the reversed video gets the mirrored critic, which is
  what VROC measures.
- Pixel filter: a pair whose pixel difference is below 1 % gets ``c = 0`` (nothing visibly moved: no
  progress can be read from it). The difference is the share of pixels that changed, a pixel counting
  as changed when one of its channels moved by more than ``PIXEL_TOLERANCE`` levels (render and
  compression noise stay below). Not the mean absolute difference: with the arm a small part of the
  picture, one step of real motion moves the mean by < 1 % of 255 while it changes 2-6 % of the
  pixels (measured on the sim tasks at 64 px; holds and stalls change 0.1-0.9 %).
- Mini-group: each sampled (i, dt) brings four samples, (o_i, o_{i+dt}), (o_i, o_{i+1}), (o_{i+1}, o_i),
  (o_{i+dt}, o_i), always trained together (one unit of the sampler).
- Done samples in balanced pairs from one trajectory: one frame before 0.8 T (answer ``0``) and one
  after 0.95 T (answer ``1``); frames in between get no done label.
- With 5 % probability a progress sample's task text is swapped for another task's text and its
  label set to 0: progress only exists with respect to the task asked about.
- Task-description objective: a start frame in [0, 0.3 T] and an end frame in [0.8 T, T]; the answer
  is the task text.
- In-context samples: the release's in-context prompt with a reference trajectory of the same task
  (another episode), its first frame as the current episode's start, then a pair with the same label.

Labelled (non-expert) trajectories, issue 11: the recipe's time labels hold only for successful
episodes, where every step moved toward the goal. Policy rollouts and near-goal failures (the bowl
held over the plate and never released, moves after completion, the wrong target; see
``critic_rollouts``) carry the simulator's ground truth per frame instead, and are labelled by it:

- progress of (o_a, o_b): ``c = (phi_b - phi_a) / (1 - min(phi_a, phi_b))`` with ``phi`` the task-phase
  potential (``SimTask.truth``). Forward progress is the share of the remaining way covered (what the
  value rule ``v <- v + (100 - v) c / 100`` adds back up), regress is the negation of the reverse
  pair's label, so the pair and its swap carry opposite labels as in the recipe; a hold, a stall or a
  move after completion (both frames done) is 0. No pixel filter: the truth says whether anything
  changed (a release barely changes the picture and is the step that matters most);
- done: 1 on frames the simulator calls a success, 0 on the others except the ``placed`` phase (let
  go, the bowl not yet resting: no label, like the recipe's [0.8 T, 0.95 T]); drawn as balanced
  pairs, the negative ``set_down_negative_prob`` of the time from the frames where the object was left
  after the arm moved it (``set down``: a ``reach`` frame after a near-goal one; a bowl set down just
  outside the success radius is one), else half the time from the near-goal phases (``NEAR_GOAL_PHASES``),
  the positive from a labelled trajectory of the same task that succeeds (or an expert's last frames).

Their units are two more kinds (``rollout_progress``, ``rollout_done``), drawn with their own shares
(0 by default: the recipe alone); mismatched task text applies to them as to expert pairs.

Answer text: the label in percent rounded to a whole number (``"17"``, ``"-4"``, ``"0"``): a bare signed
number that the critic's strict parser (``vlac_critic.parsing.parse_progress_pct``) reads, and the
fewest digits a tiny model has to learn. A whole percent is below the critic's own noise; a pair
whose label rounds to 0 says "no visible progress", as the pixel filter does.

Sampling is a pure function of (seed, unit index): a resumed training draws exactly the samples an
uninterrupted one would have drawn, with no sampler state to checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vlac_core import prompts
from vlac_core.types import check_image

#: Pixel filter: pairs in which fewer than this share of the pixels changed get label 0.
PIXEL_DIFF_MIN_SHARE = 0.01
#: A pixel changed when one of its channels moved by more than this many levels (of 255).
PIXEL_TOLERANCE = 8
#: Done labels: 0 for frames before this share of the trajectory, 1 after DONE_POSITIVE_AFTER.
DONE_NEGATIVE_BEFORE = 0.8
DONE_POSITIVE_AFTER = 0.95
#: Task-description objective: start frame in [0, 0.3 T], end frame in [0.8 T, T].
DESCRIPTION_START_MAX = 0.3
DESCRIPTION_END_MIN = 0.8

#: Labelled trajectories: phases whose frames are hard "not done" negatives, and phases without a done label.
NEAR_GOAL_PHASES = ("release", "carry", "push")
#: the phase of an object the arm is not moving: after a near-goal phase, the object was set down (or dropped)
LEFT_PHASE = "reach"
NO_DONE_LABEL_PHASES = ("placed",)

#: Unit kinds; the labelled-trajectory kinds come last so the recipe's draws do not move when their share is 0.
SAMPLE_KINDS = ("progress", "in_context", "done", "task_description", "rollout_progress", "rollout_done")


class CriticDataError(ValueError):
    """Episodes or settings cannot produce critic samples; the message names what is wrong."""


@dataclass(frozen=True)
class Trajectory:
    """A successful episode's front-camera frames (T+1, H, W, 3) uint8 and its task text."""

    task: str
    frames: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task.strip():
            raise CriticDataError(f"trajectory {self.name!r}: empty task text")
        frames = np.asarray(self.frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise CriticDataError(
                f"trajectory {self.name!r}: frames must be (T+1, H, W, 3) uint8, got {frames.shape} {frames.dtype}"
            )
        if frames.shape[0] < 3:
            raise CriticDataError(f"trajectory {self.name!r}: needs at least 3 frames, got {frames.shape[0]}")

    @property
    def steps(self) -> int:
        """T: steps between the first and the last frame."""
        return int(self.frames.shape[0]) - 1


@dataclass(frozen=True)
class LabelledTrajectory:
    """A non-expert episode's frames (T+1, H, W, 3) with the simulator's truth per frame (potential, success, phase)."""

    task: str
    frames: np.ndarray
    potential: np.ndarray
    success: np.ndarray
    phase: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        Trajectory(self.task, self.frames, self.name)  # the same frame checks
        n = int(np.asarray(self.frames).shape[0])
        potential = np.asarray(self.potential, dtype=np.float64)
        if potential.shape != (n,) or len(self.phase) != n or np.asarray(self.success).shape != (n,):
            raise CriticDataError(
                f"labelled trajectory {self.name!r}: potential {potential.shape}, success "
                f"{np.asarray(self.success).shape} and {len(self.phase)} phases for {n} frames"
            )
        if not (np.all(np.isfinite(potential)) and potential.min() >= 0.0 and potential.max() <= 1.0):
            raise CriticDataError(f"labelled trajectory {self.name!r}: potentials must lie in [0, 1]")

    @property
    def steps(self) -> int:
        return int(self.frames.shape[0]) - 1

    def done_frames(self) -> LabelledDoneFrames:
        """Frame indices with a done label: every negative, the near-goal and the set-down ones, the positives."""
        negative = [
            i for i in range(self.steps + 1) if not self.success[i] and self.phase[i] not in NO_DONE_LABEL_PHASES
        ]
        near = [i for i in negative if self.phase[i] in NEAR_GOAL_PHASES]
        set_down = [i for i in negative if self.phase[i] == LEFT_PHASE and near and i > near[0]]
        positive = [i for i in range(self.steps + 1) if self.success[i]]
        return LabelledDoneFrames(negative, near, set_down, positive)


class LabelledDoneFrames(NamedTuple):
    """A labelled trajectory's frame indices by done label (``LabelledTrajectory.done_frames``)."""

    negative: list[int]  # every frame labelled not done
    near: list[int]  # of those, the object held or pushed near the goal (NEAR_GOAL_PHASES)
    set_down: list[int]  # of those, the object left after the arm moved it, not a success (LEFT_PHASE after near)
    positive: list[int]  # frames labelled done


@dataclass(frozen=True)
class CriticSample:
    """One supervised sample: user CONTENT with ``<image>`` placeholders, its images, the answer text."""

    kind: str
    content: str
    images: tuple[np.ndarray, ...]
    answer: str
    label_pct: float | None = None  # progress samples: the label before formatting


@dataclass(frozen=True)
class CriticDataMix:
    """How often each kind of unit is drawn, and the reference's probabilities.

    ``*_share`` are relative weights of the units the sampler draws (a progress unit is a
    four-sample mini-group, a done unit a balanced pair, the others one sample).
    """

    progress_share: float = 0.7
    in_context_share: float = 0.1
    done_share: float = 0.15
    task_description_share: float = 0.05
    mismatch_prob: float = 0.05
    rollout_progress_share: float = 0.0
    rollout_done_share: float = 0.0
    near_goal_negative_prob: float = 0.5
    set_down_negative_prob: float = 0.0
    n_reference: int = prompts.DEFAULT_REFERENCE_FRAMES
    pixel_diff_min_share: float = PIXEL_DIFF_MIN_SHARE

    def __post_init__(self) -> None:
        shares = self.shares()
        if any(s < 0 for s in shares) or sum(shares) <= 0:
            raise CriticDataError(f"unit shares must be >= 0 with a positive sum, got {shares}")
        if not 0.0 <= self.mismatch_prob <= 1.0:
            raise CriticDataError(f"mismatch_prob must be in [0, 1], got {self.mismatch_prob}")
        if not 0.0 <= self.near_goal_negative_prob <= 1.0:
            raise CriticDataError(f"near_goal_negative_prob must be in [0, 1], got {self.near_goal_negative_prob}")
        if not 0.0 <= self.set_down_negative_prob <= 1.0:
            raise CriticDataError(f"set_down_negative_prob must be in [0, 1], got {self.set_down_negative_prob}")
        if not 2 <= self.n_reference <= prompts.MAX_REFERENCE_FRAMES:
            raise CriticDataError(f"n_reference must be 2..{prompts.MAX_REFERENCE_FRAMES}, got {self.n_reference}")
        if not 0.0 <= self.pixel_diff_min_share < 1.0:
            raise CriticDataError(f"pixel_diff_min_share must be in [0, 1), got {self.pixel_diff_min_share}")

    def shares(self) -> tuple[float, ...]:
        """Relative weights in ``SAMPLE_KINDS`` order."""
        return (
            self.progress_share,
            self.in_context_share,
            self.done_share,
            self.task_description_share,
            self.rollout_progress_share,
            self.rollout_done_share,
        )


def progress_label(earlier_index: int, later_index: int, steps: int) -> float:
    """Label (fraction, -1..1) of the pair (o_a, o_b): ``dt / (T - i)`` with i the earlier-in-time frame.

    ``later_index`` < ``earlier_index`` is a backward pair: the forward label negated.
    """
    if not (0 <= earlier_index <= steps and 0 <= later_index <= steps):
        raise CriticDataError(f"frame indices ({earlier_index}, {later_index}) outside 0..{steps}")
    first = min(earlier_index, later_index)
    if first == steps:
        return 0.0
    return (later_index - earlier_index) / (steps - first)


def potential_label(phi_a: float, phi_b: float) -> float:
    """Label (fraction, -1..1) of the pair (o_a, o_b) from the truth's potentials: ``(phi_b - phi_a) / (1 - min)``.

    Antisymmetric; 0 when both frames are at the goal (potential 1): nothing is left to gain.
    """
    if not (0.0 <= phi_a <= 1.0 and 0.0 <= phi_b <= 1.0):
        raise CriticDataError(f"potentials ({phi_a}, {phi_b}) outside [0, 1]")
    remaining = 1.0 - min(phi_a, phi_b)
    if remaining <= 1e-9:
        return 0.0
    return float(np.clip((phi_b - phi_a) / remaining, -1.0, 1.0))


def pixel_difference_share(a: np.ndarray, b: np.ndarray, tolerance: int = PIXEL_TOLERANCE) -> float:
    """Share of pixels of two same-size HxWx3 uint8 images whose largest channel change exceeds ``tolerance``."""
    if a.shape != b.shape:
        raise CriticDataError(f"pixel difference of images of different shapes {a.shape} and {b.shape}")
    change = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1)
    return float((change > tolerance).mean())


def format_progress_answer(label: float) -> str:
    """Label (fraction) -> answer text: whole percent, no '+', no '-0'."""
    if not -1.0 <= label <= 1.0:
        raise CriticDataError(f"progress label {label} outside [-1, 1]")
    return str(round(label * 100.0))  # an int: never "-0"


def _pair_label(traj: Trajectory, a: int, b: int, min_share: float) -> float:
    if pixel_difference_share(traj.frames[a], traj.frames[b]) < min_share:
        return 0.0
    return progress_label(a, b, traj.steps)


def progress_sample(
    traj: Trajectory, a: int, b: int, task: str | None = None, min_share: float = PIXEL_DIFF_MIN_SHARE
) -> CriticSample:
    """Pair-wise sample (o_a, o_b); a ``task`` other than the trajectory's makes it a mismatch (label 0)."""
    mismatched = task is not None and task != traj.task
    label = 0.0 if mismatched else _pair_label(traj, a, b, min_share)
    return CriticSample(
        kind="progress",
        content=prompts.pair_progress_prompt(task or traj.task),
        images=(traj.frames[a], traj.frames[b]),
        answer=format_progress_answer(label),
        label_pct=round(label * 100.0),
    )


def mini_group(traj: Trajectory, i: int, dt: int, min_share: float = PIXEL_DIFF_MIN_SHARE) -> list[CriticSample]:
    """The four samples of one sampled pair: (i, i+dt), (i, i+1), (i+1, i), (i+dt, i).

    ``i + 1`` must be a frame, so ``i < T``; ``dt`` != 0 may be negative.
    """
    j = i + dt
    if dt == 0 or not (0 <= i < traj.steps and 0 <= j <= traj.steps):
        raise CriticDataError(f"mini-group (i={i}, dt={dt}) needs 0 <= i < {traj.steps}, i+dt in 0..{traj.steps}")
    pairs = ((i, j), (i, i + 1), (i + 1, i), (j, i))
    return [progress_sample(traj, a, b, min_share=min_share) for a, b in pairs]


def done_indices(steps: int) -> tuple[range, range]:
    """(frames labelled not done, frames labelled done): i < 0.8 T and i > 0.95 T."""
    negative = range(0, int(np.ceil(DONE_NEGATIVE_BEFORE * steps)))
    positive = range(int(np.floor(DONE_POSITIVE_AFTER * steps)) + 1, steps + 1)
    return negative, positive


def done_sample(traj: Trajectory, index: int) -> CriticSample:
    """Done sample of frame ``index`` (answer 0 or 1); frames in [0.8 T, 0.95 T] have no label."""
    negative, positive = done_indices(traj.steps)
    if index in negative:
        answer = "0"
    elif index in positive:
        answer = "1"
    else:
        raise CriticDataError(f"frame {index} of {traj.steps} steps lies in [0.8 T, 0.95 T]: no done label")
    return CriticSample(
        kind="done", content=prompts.done_prompt(traj.task), images=(traj.frames[index],), answer=answer
    )


def done_pair(traj: Trajectory, rng: np.random.Generator) -> list[CriticSample]:
    """A balanced pair from one trajectory: one incomplete frame (0), one complete frame (1)."""
    negative, positive = done_indices(traj.steps)
    if not negative or not positive:
        raise CriticDataError(f"trajectory {traj.name!r} of {traj.steps} steps is too short for done labels")
    return [done_sample(traj, int(rng.choice(negative))), done_sample(traj, int(rng.choice(positive)))]


def task_description_sample(traj: Trajectory, rng: np.random.Generator) -> CriticSample:
    """Start frame in [0, 0.3 T], end frame in [0.8 T, T]; the answer is the task text."""
    start = int(rng.integers(0, int(DESCRIPTION_START_MAX * traj.steps) + 1))
    end = int(rng.integers(int(np.ceil(DESCRIPTION_END_MIN * traj.steps)), traj.steps + 1))
    return CriticSample(
        kind="task_description",
        content=prompts.TASK_DESCRIPTION_PROMPT,
        images=(traj.frames[start], traj.frames[end]),
        answer=traj.task,
    )


def in_context_sample(
    traj: Trajectory, reference: Trajectory, a: int, b: int, n_reference: int, min_share: float = PIXEL_DIFF_MIN_SHARE
) -> CriticSample:
    """The release's in-context prompt: reference frames, this episode's first frame, then (o_a, o_b)."""
    if reference.task != traj.task:
        raise CriticDataError(f"reference task {reference.task!r} differs from the trajectory's {traj.task!r}")
    n = min(n_reference, reference.frames.shape[0])
    picked = [reference.frames[k] for k in prompts.select_reference_frames(reference.frames.shape[0], n)]
    label = _pair_label(traj, a, b, min_share)
    return CriticSample(
        kind="in_context",
        content=prompts.in_context_progress_prompt(traj.task, n),
        images=(*picked, traj.frames[0], traj.frames[a], traj.frames[b]),
        answer=format_progress_answer(label),
        label_pct=round(label * 100.0),
    )


def labelled_progress_sample(traj: LabelledTrajectory, a: int, b: int) -> CriticSample:
    """Pair-wise sample (o_a, o_b) of a labelled trajectory: the truth's label (``potential_label``)."""
    label = potential_label(float(traj.potential[a]), float(traj.potential[b]))
    return CriticSample(
        kind="progress",
        content=prompts.pair_progress_prompt(traj.task),
        images=(traj.frames[a], traj.frames[b]),
        answer=format_progress_answer(label),
        label_pct=round(label * 100.0),
    )


def labelled_mini_group(traj: LabelledTrajectory, i: int, dt: int) -> list[CriticSample]:
    """The recipe's four-sample mini-group (i, i+dt), (i, i+1), (i+1, i), (i+dt, i) with truth labels."""
    j = i + dt
    if dt == 0 or not (0 <= i < traj.steps and 0 <= j <= traj.steps):
        raise CriticDataError(f"mini-group (i={i}, dt={dt}) needs 0 <= i < {traj.steps}, i+dt in 0..{traj.steps}")
    return [labelled_progress_sample(traj, a, b) for a, b in ((i, j), (i, i + 1), (i + 1, i), (j, i))]


def labelled_done_sample(traj: LabelledTrajectory, index: int) -> CriticSample:
    """Done sample of a labelled frame: 1 where the simulator calls it a success, else 0 (never ``placed``)."""
    if traj.phase[index] in NO_DONE_LABEL_PHASES and not traj.success[index]:
        raise CriticDataError(f"frame {index} of {traj.name!r} is in phase {traj.phase[index]!r}: no done label")
    return CriticSample(
        kind="done",
        content=prompts.done_prompt(traj.task),
        images=(traj.frames[index],),
        answer="1" if traj.success[index] else "0",
    )


class CriticSampler:
    """Draws training units (lists of samples) from trajectories; unit ``k`` depends only on (seed, k)."""

    def __init__(
        self,
        trajectories: Sequence[Trajectory],
        mix: CriticDataMix | None = None,
        seed: int = 0,
        distractor_tasks: Sequence[str] = (),
        labelled: Sequence[LabelledTrajectory] = (),
    ) -> None:
        if not trajectories:
            raise CriticDataError("no trajectories to build critic samples from")
        self.trajectories = list(trajectories)
        self.labelled = list(labelled)
        for traj in self.trajectories:
            check_image(traj.frames[0], f"trajectory {traj.name!r} frame 0")
        self.mix = mix or CriticDataMix()
        self.seed = int(seed)
        self.tasks = sorted({t.task for t in self.trajectories})
        # Texts a mismatch may swap in: the other trajectories' tasks, plus extra texts the caller adds.
        self.mismatch_pool = sorted(set(self.tasks) | {t for t in distractor_tasks if t.strip()})
        self._by_task: dict[str, list[int]] = {}
        for index, traj in enumerate(self.trajectories):
            self._by_task.setdefault(traj.task, []).append(index)
        shares = np.asarray(self.mix.shares(), dtype=np.float64)
        if not self.labelled and shares[4:].sum() > 0:
            raise CriticDataError("rollout_progress_share / rollout_done_share > 0 but no labelled trajectories")
        self._kind_probs = shares / shares.sum()
        # done units of labelled trajectories: frames per trajectory, and where the positives of each task are
        self._done_frames = [t.done_frames() for t in self.labelled]
        self._positives_by_task: dict[str, list[tuple[int, int]]] = {}
        for n, traj in enumerate(self.labelled):
            for i in self._done_frames[n].positive:
                self._positives_by_task.setdefault(traj.task, []).append((n, i))
        self._done_capable = [n for n, frames in enumerate(self._done_frames) if frames.negative]
        if self.labelled and self.mix.rollout_done_share > 0 and not self._done_capable:
            raise CriticDataError("labelled trajectories hold no frame with a 'not done' label")

    def unit(self, k: int) -> list[CriticSample]:
        """Unit number ``k``: a progress mini-group, an in-context sample, a done pair or a description."""
        rng = np.random.default_rng([self.seed, int(k)])
        kind = SAMPLE_KINDS[int(rng.choice(len(SAMPLE_KINDS), p=self._kind_probs))]
        if kind == "rollout_progress":
            return self._rollout_progress(rng)
        if kind == "rollout_done":
            return self._rollout_done(rng)
        traj = self.trajectories[int(rng.integers(len(self.trajectories)))]
        if kind == "done":
            return done_pair(traj, rng)
        if kind == "task_description":
            return [task_description_sample(traj, rng)]
        a, b = self._draw_pair(traj, rng)
        if kind == "in_context":
            siblings = [i for i in self._by_task[traj.task] if self.trajectories[i] is not traj]
            if siblings:
                reference = self.trajectories[int(rng.choice(siblings))]
                return [in_context_sample(traj, reference, a, b, self.mix.n_reference, self.mix.pixel_diff_min_share)]
        group = mini_group(traj, a, b - a, self.mix.pixel_diff_min_share)
        return self._mismatch(group, traj.task, rng)

    def _mismatch(self, group: list[CriticSample], task: str, rng: np.random.Generator) -> list[CriticSample]:
        """Each sample of a mini-group gets another task's text (label 0) with probability ``mismatch_prob``."""
        others = [t for t in self.mismatch_pool if t != task]
        for n, sample in enumerate(group):
            if others and rng.random() < self.mix.mismatch_prob:
                a_img, b_img = sample.images
                swapped = others[int(rng.integers(len(others)))]
                group[n] = CriticSample(
                    kind="progress",
                    content=prompts.pair_progress_prompt(swapped),
                    images=(a_img, b_img),
                    answer=format_progress_answer(0.0),
                    label_pct=0.0,
                )
        return group

    def _rollout_progress(self, rng: np.random.Generator) -> list[CriticSample]:
        traj = self.labelled[int(rng.integers(len(self.labelled)))]
        a, b = self._draw_pair(traj, rng)
        return self._mismatch(labelled_mini_group(traj, a, b - a), traj.task, rng)

    def _rollout_done(self, rng: np.random.Generator) -> list[CriticSample]:
        """A balanced pair: a 'not done' frame of a labelled trajectory (often near the goal, or set down), a done
        frame."""
        n = self._done_capable[int(rng.integers(len(self._done_capable)))]
        traj = self.labelled[n]
        frames = self._done_frames[n]
        # drawn only with a positive share, so the draws of a mix without set-down negatives stay as they were
        set_down = self.mix.set_down_negative_prob > 0 and rng.random() < self.mix.set_down_negative_prob
        if set_down and frames.set_down:
            pool = frames.set_down
        else:
            near = frames.near and rng.random() < self.mix.near_goal_negative_prob
            pool = frames.near if near else frames.negative
        out = [labelled_done_sample(traj, int(pool[int(rng.integers(len(pool)))]))]
        positives = self._positives_by_task.get(traj.task)
        if positives:
            m, i = positives[int(rng.integers(len(positives)))]
            out.append(labelled_done_sample(self.labelled[m], i))
        else:  # no labelled success of this task: an expert's complete frame
            experts = self._by_task.get(traj.task) or list(range(len(self.trajectories)))
            expert = self.trajectories[experts[int(rng.integers(len(experts)))]]
            out.append(done_sample(expert, int(rng.choice(done_indices(expert.steps)[1]))))
        return out

    def samples(self, start_unit: int, min_samples: int) -> tuple[list[CriticSample], int]:
        """Whole units from ``start_unit`` until at least ``min_samples`` samples; returns (samples, next unit)."""
        out: list[CriticSample] = []
        k = start_unit
        while len(out) < min_samples:
            out.extend(self.unit(k))
            k += 1
        return out, k

    @staticmethod
    def _draw_pair(traj: Trajectory, rng: np.random.Generator) -> tuple[int, int]:
        """(i, i+dt) with i < T and dt != 0 of any distance, forward or backward with equal odds."""
        i = int(rng.integers(0, traj.steps))
        if i > 0 and rng.random() < 0.5:
            return i, int(rng.integers(0, i))
        return i, int(rng.integers(i + 1, traj.steps + 1))
