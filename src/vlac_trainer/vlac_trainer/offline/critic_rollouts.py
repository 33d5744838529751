"""Labelled non-expert episodes: policy rollouts and near-goal failures with ground truth (critic), DAgger (actor).

Issue 11 found the shipped critic trained on expert episodes only: on the policy's own episodes it
paid holding the bowl over the plate, fired "done" there, and punished the release. This module
records the episodes it never saw, each frame with the simulator's ground truth (task-phase
potential, success, phase; ``SimTask.truth``), so ``critic_data`` can label them by what happened
rather than by time:

- ``policy``: the actor prior samples every action (temperature 1), for ``max_steps`` steps whatever
  happens (success is not an end: the moves after completion are part of what the critic must score);
- ``policy_expert``: the prior for a random 0..``takeover_max`` steps, the scripted expert from
  there until its plan ends (mostly a success, from the policy's own state), then the prior again:
  completions and releases in policy-like scenes, and the policy's moves after completion;
- ``hold`` (pick_bowl): the expert picks the bowl, carries it over the plate, lowers it and then
  hovers there holding it, never releasing (the state the old critic called done);
- ``after_done``: the expert completes the task, then wanders above the table with random moves;
- ``off_centre`` (pick_bowl): the expert sets the bowl down ``OFF_CENTRE_RADIUS_MM`` off the plate's centre (any
  direction), then wanders: placements on both sides of the success radius, where a critic's done is least sure;
- ``stall`` / ``wrong_target`` / ``undo``: the scripted failure variants of ``collect-demos``;
- ``dagger`` (pick_bowl, sweep): the prior acts (a share ``expert_share`` of steps the expert's label is
  executed instead) and ``vlac_trainer.offline.dagger`` labels every state with the expert's action, kept in
  ``meta["expert_labels"]``; the episode ends a few steps after success. ``vlac train actor`` trains
  on the labels (``bc_data.bc_samples``), not on the actions that moved the arm.

Episodes are saved as ``collect-demos`` npz files (``piper_driver.sim.demo_format``) whose variant
names the source; the per-frame truth lives in the header (``meta``: ``potential``, ``phase``), so
``load_labelled`` reads them back as ``critic_data.LabelledTrajectory``. The expert-only loader of
the critic recipe ignores them (their variant is not ``expert``).

``rescored_episode`` turns a recorded rollout and a critic into the loop's ``Episode`` (per step:
the critic's progress of (o_t, o_{t+1}), its done rule on o_{t+1}, the ground truth), which is
what ``vlac critic audit`` scores; ``python -m vlac_trainer.offline.critic_rollouts audit`` writes them as
bags and runs the audit, so two critics are compared on the very same held-out frames. Its extra report adds the
done per threshold, per variant, and by the moved object's distance to its goal and the frame's phase
(``done_by_goal_distance``: where a done goes wrong, not only how often).

``done-rule`` chooses a critic's done rule on such rollouts: every rule of a grid (threshold x steps in a row,
``vlac_critic.done_rule``) judged per episode where the loop would end it, the one with the fewest wrong
episodes (a done on a failure, a success never called) kept, and with ``--write`` stored beside the checkpoint
(``done_rule.json``), where ``episode_manager.done_rule: critic`` reads it. Choose on rollouts the critic was not
trained on: on its own training rollouts a fine-tuned critic is surer than on new scenes, and the rule chosen
there is one for a critic it is not (docs/rl_experiments.md, "The done rule chosen per critic"). With
``--rules`` it scores the given rules only: how a rule chosen on one set of rollouts is judged on another.

    python -m vlac_trainer.offline.critic_rollouts collect --task pick_bowl --variants policy policy_expert \
        --episodes 40 --seed 300000 --out out/critic11/heldout_pick_bowl
    python -m vlac_trainer.offline.critic_rollouts audit out/critic11/heldout_pick_bowl --checkpoint models/sim_critic \
        --out out/critic11/audit_shipped
    python -m vlac_trainer.offline.critic_rollouts done-rule out/critic12/rollouts_prior --variants policy \
        --checkpoint out/critic12/critic_ft_l64 --write
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlac_critic.done_rule import RULE_THRESHOLDS

ROLLOUT_VARIANTS = (
    "policy",
    "policy_expert",
    "hold",
    "after_done",
    "off_centre",
    "stall",
    "wrong_target",
    "undo",
    "dagger",
)
#: Variants that need the actor prior.
POLICY_VARIANTS = ("policy", "policy_expert", "dagger")
#: dagger: steps recorded after the task is first done (the policy should learn to stay done, not to linger).
DAGGER_STEPS_AFTER_DONE = 3
#: off_centre: the range of the bowl's set-down distance from the plate's centre, drawn uniformly per episode (mm).
#: The task's success radius (pick_bowl.SUCCESS_RADIUS_M, 35 mm) lies inside it; policies set the bowl down 0-60 mm off.
OFF_CENTRE_RADIUS_MM = (15.0, 65.0)
#: Lower edges of the bins of the moved object's horizontal distance to its goal (mm) in the audit's done table
#: (``done_by_goal_distance``); the last bin is open. 35 mm is pick_bowl's success radius (pick_bowl.SUCCESS_RADIUS_M).
GOAL_DISTANCE_EDGES_MM = (0.0, 10.0, 20.0, 30.0, 35.0, 45.0, 60.0, 80.0, 120.0)
#: Expert noise of collect-demos' defaults (mm, deg).
EXPERT_NOISE = (1.0, 0.5)


@dataclass
class _Arm:
    """One simulated arm of a lockstep batch: the arm, the episode being recorded and its controller."""

    sim: object  # piper_driver.sim.arm.SimArm
    variant: str = ""
    seed: int | None = None
    rng: np.random.Generator | None = None
    sampler: object = None  # torch.Generator of the policy's draws in this episode, seeded by the episode's seed
    expert: object = None  # ScriptedExpert currently in charge, or None (the policy acts)
    expert_used: bool = False
    takeover_at: int = -1  # policy_expert: step the expert takes over
    steps: int = 0
    frames: list = field(default_factory=list)
    poses: list = field(default_factory=list)
    grippers: list = field(default_factory=list)
    joints: list = field(default_factory=list)
    stamps: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    truths: list = field(default_factory=list)
    objects_mm: list = field(default_factory=list)  # per frame: the moved object's centre, mm (SimBackend.object_mm)
    controllers: list = field(default_factory=list)  # per action: "policy" or "expert"
    labeler: object = None  # dagger: the expert's labeler of this episode's states
    labels: list = field(default_factory=list)  # dagger: per action, the expert's label
    steps_done: int = 0  # dagger: steps recorded since the task was first done
    clamps: Counter = field(default_factory=Counter)  # safety-envelope clamps of this episode's actions
    error: str = ""


def _wander_plan(rng: np.random.Generator, moves: int):
    """Random open-gripper moves above the table (the 'after_done' tail): each a waypoint 3-8 cm away."""
    from piper_driver.sim.experts import Waypoint

    offsets = [
        np.array([*rng.uniform(-80.0, 80.0, size=2), rng.uniform(-20.0, 60.0), 0.0, 0.0, 0.0]) for _ in range(moves)
    ]

    def target(offset):
        def fn(scene, anchor):
            pose = anchor + offset
            pose[2] = float(np.clip(pose[2], 150.0, 320.0))  # flange height: stays above the objects
            return pose

        return fn

    return [Waypoint(f"wander{k}", target(o), open=1, tolerance_mm=8.0, budget_steps=6) for k, o in enumerate(offsets)]


def make_controller(
    task: str, variant: str, rng: np.random.Generator, max_steps: int, grasp_hold_steps: int | None = None
):
    """The scripted part of ``variant`` (a ScriptedExpert), or None when the policy starts.

    ``grasp_hold_steps``: the expert's pause closed on its grasp (``make_expert``); None keeps the task's."""
    from piper_driver.sim import tasks  # noqa: F401 (experts imports cleanly only after tasks)
    from piper_driver.sim.experts import ScriptedExpert, hover_plan
    from piper_driver.sim.tasks import make_expert, plan_for

    noise_mm, noise_deg = EXPERT_NOISE
    if variant in POLICY_VARIANTS:
        return None
    if variant in ("stall", "wrong_target", "undo"):
        return make_expert(
            task, variant, rng, noise_mm=noise_mm, noise_deg=noise_deg, grasp_hold_steps=grasp_hold_steps
        )
    if variant == "hold":
        if task != "pick_bowl":
            raise ValueError(f"variant 'hold' needs a grasp: pick_bowl only, not {task!r}")
        # pick (4 waypoints) + carry + lower of the expert plan, then hover holding it: never released
        plan = plan_for(task, "expert", grasp_hold_steps)[:6] + hover_plan("hold", max_steps, open_=0)
        return ScriptedExpert(plan, rng, noise_mm=3.0, noise_deg=1.0)
    if variant == "off_centre":
        if task != "pick_bowl":
            raise ValueError(f"variant 'off_centre' needs a plate: pick_bowl only, not {task!r}")
        from piper_driver.sim.tasks.pick_bowl_expert import place_off_centre_plan

        radius_m, angle_rad = rng.uniform(*OFF_CENTRE_RADIUS_MM) / 1000.0, rng.uniform(0.0, 2.0 * math.pi)
        offset_m = (radius_m * math.cos(angle_rad), radius_m * math.sin(angle_rad))
        hold = {} if grasp_hold_steps is None else {"grasp_hold_steps": grasp_hold_steps}
        plan = place_off_centre_plan(offset_m, **hold)
        return ScriptedExpert(plan + _wander_plan(rng, max_steps), rng, noise_mm=noise_mm, noise_deg=noise_deg)
    if variant == "after_done":
        plan = plan_for(task, "expert", grasp_hold_steps)
        return ScriptedExpert(plan + _wander_plan(rng, max_steps), rng, noise_mm=noise_mm, noise_deg=noise_deg)
    raise ValueError(f"variant: unknown rollout variant {variant!r}; known: {', '.join(ROLLOUT_VARIANTS)}")


def collect(
    task: str,
    jobs: Sequence[tuple[str, int]],
    *,
    policy=None,
    max_steps: int = 60,
    image_size_px: int = 64,
    parallel: int = 8,
    temperature: float = 1.0,
    greedy: bool = False,
    takeover_max: int = 25,
    sample_seed: int = 0,
    expert_share: float = 0.0,
    grasp_hold_steps: int | None = None,
    on_episode=None,
) -> list:
    """Record one episode per (variant, seed) of ``jobs``; returns ``EpisodeRecord``s with truth in ``meta``.

    ``greedy``: the policy decodes greedily (the state distribution of evaluations; DAgger's learner)
    instead of sampling at ``temperature``. ``expert_share`` (dagger): the probability that a step executes
    the expert's label instead of the policy's action (DAgger's beta), drawn per step from the episode's seed.
    ``grasp_hold_steps``: the scripted expert's pause closed on its grasp (``make_expert``; None: the task's own).
    The policy samples each episode from its own generator, seeded by ``sample_seed`` and the episode's seed: a
    (sample seed, seed) pair names one rollout at any ``parallel`` and after a resumed collection.

    Arms run in lockstep so the policy decodes one batch per step for every arm that needs it.
    Every action moves a ``SimArm`` (the session's simulated arm) through the safety envelope; clamps are
    counted in ``meta["safety_clamps"]``, and a motion it refuses ends that episode there (kept, with
    the reason in ``meta``).
    """
    import torch

    from piper_driver.robot import MotionRefused
    from piper_driver.sim.arm import SimArm
    from piper_driver.sim.backend import SimConfig

    if any(v in POLICY_VARIANTS for v, _ in jobs) and policy is None:
        raise ValueError("the policy variants need an actor checkpoint (--actor)")
    if max_steps < 1 or parallel < 1:
        raise ValueError(f"max_steps and parallel must be >= 1, got {max_steps}, {parallel}")
    if not 0.0 <= expert_share <= 1.0:
        raise ValueError(f"expert_share must be a probability in [0, 1], got {expert_share}")
    if any(v == "dagger" for v, _ in jobs):
        from vlac_trainer.offline.dagger import make_labeler

        make_labeler(task, np.random.default_rng(0))  # an unsupported task fails here, before any episode
    if grasp_hold_steps is not None:
        from piper_driver.sim.tasks import plan_for

        plan_for(task, "expert", grasp_hold_steps)  # a task without a grasp, or a bad hold, fails before any episode
    pending = list(jobs)
    arms = []
    for _ in range(min(parallel, len(pending))):
        sim = SimArm(f"rollout_{len(arms)}", task, SimConfig(image_size_px=image_size_px), None, first_seed=0)
        arms.append(_Arm(sim))
    records = []

    def record_frame(arm: _Arm) -> None:
        state = arm.sim.arm_state()
        arm.frames.append(arm.sim.backend.images()[0])
        arm.poses.append(state.end_pose.as_array())
        arm.grippers.append(state.gripper_mm)
        arm.joints.append(state.joints_rad)
        arm.stamps.append(state.stamp_s)
        arm.truths.append(arm.sim.truth())
        if arm.sim.backend.task.object_key:
            arm.objects_mm.append(arm.sim.backend.object_mm())

    def start(arm: _Arm) -> None:
        if not pending:
            arm.seed = None
            return
        variant, seed = pending.pop(0)
        # Why a sampler per episode: with one shared generator an episode's draws depended on which episodes
        # were batched with it (--parallel, a resumed collection), so a seed did not name one rollout.
        sampler = torch.Generator().manual_seed(
            int(np.random.SeedSequence([sample_seed, int(seed), 13]).generate_state(1)[0])
        )
        fresh = _Arm(
            arm.sim, variant=variant, seed=int(seed), rng=np.random.default_rng([int(seed), 11]), sampler=sampler
        )
        arm.__dict__.update(fresh.__dict__)
        arm.sim.reset_to_seed(arm.seed, image=False)
        arm.expert = make_controller(task, variant, arm.rng, max_steps, grasp_hold_steps)
        arm.expert_used = arm.expert is not None
        if variant == "policy_expert":
            arm.takeover_at = int(arm.rng.integers(0, takeover_max + 1))
        if variant == "dagger":
            from vlac_trainer.offline.dagger import make_labeler

            arm.labeler = make_labeler(task, np.random.default_rng([int(seed), 12]))
        record_frame(arm)

    def finish(arm: _Arm) -> None:
        records.append(_to_record(task, arm))
        if on_episode is not None:
            on_episode(records[-1])
        start(arm)

    for arm in arms:
        start(arm)
    while any(arm.seed is not None for arm in arms):
        active = [arm for arm in arms if arm.seed is not None]
        actions: dict[int, object] = {}
        needs_policy = []
        for arm in active:
            if arm.variant == "policy_expert" and not arm.expert_used and arm.steps >= arm.takeover_at:
                from piper_driver.sim.tasks import make_expert

                arm.expert = make_expert(
                    task,
                    "expert",
                    arm.rng,
                    noise_mm=EXPERT_NOISE[0],
                    noise_deg=EXPERT_NOISE[1],
                    grasp_hold_steps=grasp_hold_steps,
                )
                arm.expert_used = True
            action = None
            if arm.labeler is not None:
                label = arm.labeler.label(arm.sim.arm_state(), arm.sim.backend.describe(), arm.truths[-1].success)
                arm.labels.append(label.as_tuple())
                if arm.rng.random() < expert_share:
                    action = label
            if arm.expert is not None:
                action = arm.expert.act(arm.sim.arm_state(), arm.sim.backend.describe())
                if action is None:  # the plan ended: the policy acts from here (policy_expert), else hold still
                    arm.expert = None
            if action is not None:
                actions[id(arm)] = (action, "expert")
            elif arm.variant in POLICY_VARIANTS:
                needs_policy.append(arm)
            else:
                from vlac_core.types import DeltaAction

                actions[id(arm)] = (DeltaAction(0, 0, 0, 0, 0, 0, open=1), "expert")
        if needs_policy:
            from vlac_actor.decoding import SamplingSettings, decode_actions
            from vlac_actor.inputs import InputLimits, actor_content

            prompts = [actor_content(arm.sim.observe(), InputLimits()) for arm in needs_policy]
            settings = SamplingSettings(greedy=greedy, temperature=temperature)
            decoded = decode_actions(
                policy,
                [p for p, _ in prompts],
                [ims for _, ims in prompts],
                [settings] * len(prompts),
                [arm.sampler for arm in needs_policy],
            )
            for arm, action in zip(needs_policy, decoded, strict=True):
                actions[id(arm)] = (action.delta, "policy")
        for arm in active:
            delta, controller = actions[id(arm)]
            try:
                arm.clamps.update(arm.sim.execute(delta).clamps)
            except (MotionRefused, ValueError) as error:
                arm.error = f"step {arm.steps}: {error}"
                finish(arm)
                continue
            arm.actions.append(delta.as_tuple())
            arm.controllers.append(controller)
            arm.steps += 1
            record_frame(arm)
            if arm.labeler is not None and arm.truths[-1].success:
                arm.steps_done += 1
            if arm.steps >= max_steps or arm.steps_done >= DAGGER_STEPS_AFTER_DONE:
                finish(arm)
    for arm in arms:
        arm.sim.close()
    return records


def _to_record(task: str, arm: _Arm):
    from piper_driver.sim.rollout import EpisodeRecord
    from vlac_core.types import ACTION_FIELDS

    success = np.array([t.success for t in arm.truths], dtype=bool)
    return EpisodeRecord(
        task=task,
        text=arm.sim.task_text,
        seed=int(arm.seed),
        variant=arm.variant,
        front_images=np.stack(arm.frames),
        wrist_images=None,
        end_poses=np.array(arm.poses, dtype=np.float64),
        gripper_mm=np.array(arm.grippers, dtype=np.float64),
        joints_rad=np.array(arm.joints, dtype=np.float64),
        stamps_s=np.array(arm.stamps, dtype=np.float64),
        actions=np.array(arm.actions, dtype=np.int32).reshape(-1, len(ACTION_FIELDS)),
        success=bool(success[-1]),
        success_steps=success,
        meta={
            "potential": [round(float(t.potential), 6) for t in arm.truths],
            "phase": [t.phase for t in arm.truths],
            "controller": arm.controllers,
            "takeover_at": arm.takeover_at,
            "refused": arm.error,
            "safety_clamps": dict(arm.clamps),
            **({"expert_labels": arm.labels[: len(arm.actions)]} if arm.labeler is not None else {}),
            **({"object_mm": arm.objects_mm} if arm.objects_mm else {}),
        },
    )


def has_truth(record) -> bool:
    """Does a collected episode carry per-frame ground truth (collected here, not by collect-demos)?"""
    potential = record.meta.get("potential")
    return potential is not None and len(potential) == record.length + 1


def load_labelled(folders: Sequence[str | Path], max_per_folder: int = 0) -> list:
    """``critic_data.LabelledTrajectory`` of every episode with per-frame truth under ``folders``."""
    from piper_driver.sim.demo_format import iter_episodes
    from vlac_trainer.offline.critic_data import LabelledTrajectory

    out = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ValueError(f"rollout folder {str(folder)!r} is not a directory")
        found = [r for r in iter_episodes(folder) if has_truth(r) and r.front_images.shape[0] >= 3]
        if not found:
            raise ValueError(f"rollout folder {str(folder)!r} holds no episode with per-frame ground truth")
        for record in found[:max_per_folder] if max_per_folder else found:
            out.append(
                LabelledTrajectory(
                    task=record.text,
                    frames=record.front_images,
                    potential=np.asarray(record.meta["potential"], dtype=np.float64),
                    success=np.asarray(record.success_steps, dtype=bool),
                    phase=tuple(record.meta["phase"]),
                    name=f"{record.task}_{record.variant}_s{record.seed}",
                )
            )
    return out


# --- the audit of a critic on recorded rollouts -----------------------------------------------------
def rescored_episode(record, progress_pct: Sequence[float | None], done_probs: Sequence[float], flags: Sequence[bool]):
    """The loop's ``Episode`` of a recorded rollout with a critic's answers on every step.

    ``progress_pct[t]`` scores (o_t, o_{t+1}), ``done_probs[t]`` and ``flags[t]`` (the loop's done rule)
    o_{t+1}; ground truth from the record: potential change, success after the step, phase at its start.
    """
    from dataclasses import replace

    from piper_driver.sim.convert import record_to_episode

    episode = record_to_episode(record, episode_id=f"{record.task}_{record.variant}_s{record.seed}")
    potential, phase = record.meta["potential"], record.meta["phase"]
    episode.transitions = [
        replace(
            t,
            progress_pct=progress_pct[i],
            reward=0.0 if progress_pct[i] is None else progress_pct[i] / 100.0,
            done_prob=0.0 if math.isnan(float(done_probs[i])) else float(done_probs[i]),
            done=bool(flags[i]),
            critic_done=bool(flags[i]),
            gt_progress=float(potential[i + 1] - potential[i]),
            gt_done=bool(record.success_steps[i + 1]),
            gt_phase=phase[i],
        )
        for i, t in enumerate(episode.transitions)
    ]
    return episode


def score_record(critic, record, *, done_threshold: float, done_confirm_steps: int):
    """Run ``critic`` over every step of ``record`` as the episode loop does, with the given done rule (the
    ``--done-threshold`` / ``--done-confirm-steps`` flags); returns the rescored Episode."""
    from vlac_critic.done_rule import confirmed_done

    frames = list(record.front_images)
    scores = critic.progress(record.text, frames[:-1], frames[1:])
    progress = [s.progress_pct if s.parsed else None for s in scores]
    done = critic.done(record.text, frames[1:])
    probs = [math.nan if d.done_prob is None else float(d.done_prob) for d in done]
    flags = confirmed_done(probs, done_threshold, done_confirm_steps)
    return rescored_episode(record, progress, probs, flags)


def done_operating_points(episodes: Sequence, thresholds: Sequence[float] = RULE_THRESHOLDS) -> list:
    """Per-step done precision/recall of ``done_prob > threshold`` (one step) against truth, per threshold."""
    from vlac_critic.audit import precision_recall

    probs = np.array([t.done_prob for e in episodes for t in e.transitions], dtype=float)
    truth = np.array([bool(t.gt_done) for e in episodes for t in e.transitions], dtype=bool)
    return [{"threshold": th, **precision_recall(probs > th, truth)} for th in thresholds]


def goal_offsets_mm(records: Sequence) -> list:
    """Per record, per frame: the moved object's horizontal offset (x, y mm; ``meta["object_mm"]``) from where the
    task wants it (``SimBackend.goal_mm``, read from the scene reset to the record's seed), a (T+1, 2) array; None for
    a record without an object track or of a task that names no goal."""
    from piper_driver.sim.arm import SimArm
    from piper_driver.sim.backend import SimConfig
    from piper_driver.sim.tasks import make_task

    arms: dict = {}
    offsets = []
    try:
        for record in records:
            objects = record.meta.get("object_mm")
            if not objects or not make_task(record.task).goal_key:
                offsets.append(None)
                continue
            if record.task not in arms:  # reset_to_seed renders nothing: any image size serves
                arms[record.task] = SimArm("audit", record.task, SimConfig(image_size_px=32), None, first_seed=0)
            arms[record.task].reset_to_seed(record.seed, image=False)
            goal = np.asarray(arms[record.task].backend.goal_mm()[:2])
            offsets.append(np.asarray(objects, dtype=float)[:, :2] - goal)
    finally:
        for arm in arms.values():
            arm.close()
    return offsets


def goal_distances_mm(records: Sequence) -> list:
    """Per record, per frame: the moved object's horizontal distance (mm) from its goal (``goal_offsets_mm``)."""
    return [None if offset is None else np.hypot(*offset.T) for offset in goal_offsets_mm(records)]


def done_by_goal_distance(
    records: Sequence, episodes: Sequence, distances: Sequence, threshold: float, edges=GOAL_DISTANCE_EDGES_MM
) -> list:
    """The critic's done on every frame o_{t+1} of ``episodes`` (``rescored_episode``), by the moved object's distance
    to its goal (``distances``, per frame, from ``goal_distances_mm``) and the frame's task phase ("done" is a
    success): frames, mean done probability, the share over ``threshold``.

    Why: per-step precision and recall say how often the done is wrong, not where. A done that fires on a near miss
    (the bowl set down just outside the success radius) and stays silent on a success just inside it shows here as
    a soft boundary where the truth has a sharp one (docs/rl_experiments.md, "Where the critic's done goes wrong")."""
    cells: dict = defaultdict(list)
    for record, episode, distance in zip(records, episodes, distances, strict=True):
        if distance is None:
            continue
        phases = record.meta["phase"]
        for t, transition in enumerate(episode.transitions):
            cells[(bisect_right(edges, distance[t + 1]) - 1, phases[t + 1])].append(transition.done_prob)
    rows = []
    for (k, phase), probs in sorted(cells.items()):
        probs = np.asarray(probs, dtype=float)
        rows.append(
            {
                "from_mm": edges[k],
                "to_mm": edges[k + 1] if k + 1 < len(edges) else None,
                "phase": phase,
                "frames": int(probs.size),
                "mean_done_prob": float(probs.mean()),
                "share_over_threshold": float(np.mean(probs > threshold)),
            }
        )
    return rows


def plot_done_by_goal_distance(rows: Sequence[dict], path: str | Path, title: str = "", min_frames: int = 5) -> Path:
    """``done_by_goal_distance``'s rows as one line per phase: mean done probability against the distance bin (bins
    with fewer than ``min_frames`` frames left out); a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({(r["from_mm"], r["to_mm"]) for r in rows}, key=lambda b: b[0])
    where = {b: i for i, b in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(8, 4))
    for phase in dict.fromkeys(r["phase"] for r in rows):
        kept = [r for r in rows if r["phase"] == phase and r["frames"] >= min_frames]
        if kept:
            x = [where[(r["from_mm"], r["to_mm"])] for r in kept]
            ax.plot(
                x, [r["mean_done_prob"] for r in kept], marker="o", label=f"{phase} ({sum(r['frames'] for r in kept)})"
            )
    ax.set_xticks(range(len(labels)), [f"{lo:g}-{hi:g}" if hi is not None else f">{lo:g}" for lo, hi in labels])
    ax.set_xlabel("moved object's distance to its goal (mm)")
    ax.set_ylabel("critic's mean done probability")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or "the critic's done by the object's distance to its goal, per phase (frames)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def best_point_at_recall(points: Sequence[dict], recall_target: float) -> dict | None:
    """The operating point of highest precision whose recall is at least ``recall_target`` (at equal precision, the
    higher recall), or None where no threshold reaches it. Why: a done threshold chosen this way on one set of
    rollouts is what an honest check then scores on another."""
    eligible = [p for p in points if p["recall"] >= recall_target and not math.isnan(p["precision"])]
    return max(eligible, key=lambda p: (p["precision"], p["recall"]), default=None)


# --- command line -----------------------------------------------------------------------------------
def _collect_main(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from piper_driver.sim.demo_format import save_episode_npz
    from vlac_core.jsonio import write_json

    torch.set_num_threads(args.threads)
    policy = None
    if any(v in POLICY_VARIANTS for v in args.variants):
        from vlac_actor.policy import load_policy

        policy = load_policy(args.actor, device="cpu", dtype="fp32")
    # Why the actor's size: a frame of another size would be resized to it silently, a policy off its training data.
    image_size_px = args.image_size or (policy.loaded.image_size_px if policy is not None else 64)
    jobs = [(variant, args.seed + i) for i in range(args.episodes) for variant in args.variants]
    out = Path(args.out)
    jobs = [(v, s) for v, s in jobs if not (out / "npz" / f"{args.task}_{v}_s{s}.npz").exists()]
    counts: dict[str, dict[str, int]] = {}
    with tqdm(total=len(jobs), unit="episode", desc=f"rollouts {args.task}", file=sys.stderr) as bar:

        def save(record) -> None:
            save_episode_npz(out / "npz" / f"{record.task}_{record.variant}_s{record.seed}.npz", record)
            tally = counts.setdefault(record.variant, {"episodes": 0, "success": 0, "ever_success": 0, "steps": 0})
            tally["episodes"] += 1
            tally["success"] += int(record.success)
            tally["ever_success"] += int(record.success_steps.any())
            tally["steps"] += record.length
            bar.update(1)

        collect(
            args.task,
            jobs,
            policy=policy,
            max_steps=args.max_steps,
            image_size_px=image_size_px,
            parallel=args.parallel,
            temperature=args.temperature,
            greedy=args.greedy,
            sample_seed=args.seed,
            expert_share=args.expert_share,
            grasp_hold_steps=args.grasp_hold_steps,
            on_episode=save,
        )
    summary = {
        "task": args.task,
        "variants": args.variants,
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "actor": args.actor if policy is not None else None,
        "temperature": args.temperature,
        "greedy": args.greedy,
        "expert_share": args.expert_share,
        "grasp_hold_steps": args.grasp_hold_steps,
        "max_steps": args.max_steps,
        "image_size_px": image_size_px,
        "this_run": counts,
    }
    write_json(out / "rollouts_summary.json", summary)
    print(json.dumps(summary))
    return 0


def _audit_main(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from vlac_core.bag import write_episode
    from vlac_core.jsonio import write_json
    from vlac_critic.audit import audit
    from vlac_critic.audit_cli import headline, write_audit
    from vlac_critic.backends import make_backend
    from vlac_critic.critic import Critic

    torch.set_num_threads(args.threads)
    critic = Critic(make_backend("torch", args.checkpoint, device="cpu", dtype="fp32"), batch_size=args.batch_size)
    records = _records_with_truth(args.folders, args.variants)
    if not records:
        print("critic_rollouts audit: no rollout with per-frame ground truth in the folders", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    episodes = []
    for record in tqdm(records, unit="episode", desc="score", file=sys.stderr):
        episode = score_record(
            critic, record, done_threshold=args.done_threshold, done_confirm_steps=args.done_confirm_steps
        )
        episodes.append(episode)
        if args.bags:
            bag = out / "bags" / episode.episode_id
            if not bag.exists():
                write_episode(bag, episode, fsync=False)
    if args.bags:
        report, _ = write_audit([out / "bags"], out)  # `vlac critic audit <out>/bags` gives the same figures
    else:
        report = audit(episodes)
        write_json(out / "critic_audit.json", report)
    by_variant = {}
    for variant in sorted({r.variant for r in records}):
        chosen = [e for e, r in zip(episodes, records, strict=True) if r.variant == variant]
        sub = audit(chosen)
        by_variant[variant] = {
            "episodes": sub["episodes"],
            "successful": sub["successful_episodes"],
            "return_auc": sub["return_auc"],
            "return_auc_to_success": sub["return_auc_to_success"],
            "step_spearman": sub.get("overall", {}).get("step_spearman"),
            "done": sub.get("overall", {}).get("done"),
        }
    extra = {
        "checkpoint": args.checkpoint,
        "done_rule": {"threshold": args.done_threshold, "confirm_steps": args.done_confirm_steps},
        "done_operating_points": done_operating_points(episodes),
        "by_variant": by_variant,
    }
    extra["done_by_goal_distance"] = {
        "threshold": args.done_threshold,
        "rows": done_by_goal_distance(records, episodes, goal_distances_mm(records), args.done_threshold),
    }
    plot_done_by_goal_distance(
        extra["done_by_goal_distance"]["rows"], out / "done_by_goal_distance.png", title=f"{args.checkpoint}: done"
    )
    extra["done_at_recall"] = {
        "recall_target": args.recall_target,
        "best": best_point_at_recall(extra["done_operating_points"], args.recall_target),
    }
    write_json(out / "rollout_audit_extra.json", extra)
    print(headline(report))
    print(json.dumps({k: extra[k] for k in ("done_operating_points", "done_at_recall", "by_variant")}, default=str))
    return 0


def _done_rule_main(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from vlac_core.jsonio import dumps, write_json
    from vlac_critic.backends import make_backend
    from vlac_critic.critic import Critic
    from vlac_critic.done_rule import DoneRule, choose_rule, rule_grid, score_rules, write_done_rule

    torch.set_num_threads(args.threads)
    records = _records_with_truth(args.folders, args.variants)
    if not records:
        print("critic_rollouts done-rule: no rollout with per-frame ground truth in the folders", file=sys.stderr)
        return 2
    critic = Critic(make_backend("torch", args.checkpoint, device="cpu", dtype="fp32"), batch_size=args.batch_size)
    episodes = []  # per episode: the done probability of each o_{t+1} and its truth, as the loop scores them
    for record in tqdm(records, unit="episode", desc="done", file=sys.stderr):
        done = critic.done(record.text, list(record.front_images)[1:])
        episodes.append(([d.done_prob for d in done], np.asarray(record.success_steps[1:], dtype=bool)))
    rows = score_rules(episodes, args.rules or rule_grid())
    chosen = choose_rule(rows)
    report = {
        "checkpoint": args.checkpoint,
        "folders": [str(f) for f in args.folders],
        "variants": args.variants,
        "episodes": len(episodes),
        "successful": sum(bool(success.any()) for _, success in episodes),
        "objective": "fewest wrong episodes (early + false_done + missed); ties: earlier fire, fewer steps, higher "
        "threshold",
        "chosen": chosen,
        "rules": rows,
    }
    if args.out:
        write_json(args.out, report)
    if args.write:
        rule = DoneRule(chosen["threshold"], chosen["confirm_steps"])
        path = write_done_rule(args.checkpoint, rule, {k: v for k, v in report.items() if k != "rules"})
        print(f"critic_rollouts done-rule: {rule} written to {path}", file=sys.stderr)
    print(dumps(report))  # strict JSON: a rule no episode met on time has no mean delay (null, not NaN)
    return 0


def _records_with_truth(folders: Sequence[str], variants: Sequence[str] | None) -> list:
    """The rollouts under ``folders`` with per-frame ground truth, only ``variants`` when given."""
    from piper_driver.sim.demo_format import iter_episodes

    records = [r for folder in folders for r in iter_episodes(folder) if has_truth(r)]
    return [r for r in records if r.variant in variants] if variants else records


def main(argv=None) -> int:
    from vlac_critic.done_rule import rule_argument

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="record labelled rollouts (npz with per-frame ground truth)")
    c.add_argument("--task", required=True)
    c.add_argument("--variants", nargs="+", default=["policy", "policy_expert"], choices=ROLLOUT_VARIANTS)
    c.add_argument("--episodes", type=int, required=True, help="seeds; each seed runs every variant")
    c.add_argument("--seed", type=int, required=True, help="first scene seed (keep training and held-out apart)")
    c.add_argument("--out", required=True)
    c.add_argument("--actor", default="models/sim_actor", help="actor prior for the policy variants")
    c.add_argument("--temperature", type=float, default=1.0)
    c.add_argument("--greedy", action="store_true", help="the policy decodes greedily instead of sampling")
    c.add_argument(
        "--expert-share", type=float, default=0.0, help="dagger: share of steps that execute the expert's label"
    )
    c.add_argument("--max-steps", type=int, default=60, help="steps per episode (the RL experiment's 60)")
    c.add_argument(
        "--grasp-hold-steps",
        type=int,
        default=None,
        help="the scripted expert's steps closed on its grasp before lifting (pick_bowl; default the task's, 3)",
    )
    c.add_argument(
        "--image-size", type=int, default=None, help="camera px (default: the actor's image size, 64 without an actor)"
    )
    c.add_argument("--parallel", type=int, default=8)
    c.add_argument("--threads", type=int, default=1)
    a = sub.add_parser("audit", help="score a critic on recorded rollouts with vlac critic audit")
    a.add_argument("folders", nargs="+")
    a.add_argument("--checkpoint", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--variants", nargs="*", default=None, help="only these variants (default: all)")
    a.add_argument("--done-threshold", type=float, default=0.9)
    a.add_argument("--done-confirm-steps", type=int, default=1)
    a.add_argument(
        "--recall-target",
        type=float,
        default=0.9,
        help="report the done threshold of best per-step precision at this recall or more (default 0.9)",
    )
    a.add_argument("--batch-size", type=int, default=32)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--no-bags", dest="bags", action="store_false", help="audit in memory, write no bags")
    r = sub.add_parser("done-rule", help="choose a critic's done rule on recorded rollouts (and store it beside it)")
    r.add_argument("folders", nargs="+", help="rollouts with ground truth the critic was not trained on")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--variants", nargs="*", default=None, help="only these variants (default: all)")
    r.add_argument(
        "--rules",
        nargs="+",
        type=rule_argument,
        default=None,
        metavar="THRESHOLD:STEPS",
        help="score these rules only (default: thresholds 0.3-0.99 x 1-4 steps)",
    )
    r.add_argument("--write", action="store_true", help="store the chosen rule beside the checkpoint (done_rule.json)")
    r.add_argument("--out", default=None, help="also write the report (every rule's counts) to this JSON file")
    r.add_argument("--batch-size", type=int, default=32)
    r.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    commands = {"collect": _collect_main, "audit": _audit_main, "done-rule": _done_rule_main}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
