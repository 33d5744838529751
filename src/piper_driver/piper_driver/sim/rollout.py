"""Run one scripted episode on a ``SimArm`` and keep what training and recording need.

The expert drives the same simulated arm the episode loop drives (``piper_driver.sim.arm.SimArm``):
its actions pass ``SafeArm``, the safety envelope on the arm's clock, answering the state they were
computed from. So a demonstration never holds a move a live episode's arm would refuse or clamp
unnoticed: a refusal raises ``MotionRefused``, and clamped actions are counted in
``meta["safety_clamps"]``. The loop stays the expert's: no actor, critic or sink.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from piper_driver.sim.arm import SimArm
from piper_driver.sim.experts import ScriptedExpert
from vlac_core.types import ACTION_FIELDS


@dataclass
class EpisodeRecord:
    """One simulated episode: T actions between T+1 observations (images, poses), and ground truth.

    Arrays: ``front_images`` (T+1, H, W, 3) uint8, ``wrist_images`` same or None, ``end_poses``
    (T+1, 6) [mm, deg], ``gripper_mm`` (T+1,), ``joints_rad`` (T+1, 6), ``stamps_s`` (T+1,)
    simulated time, ``actions`` (T, 7) int32 in ``ACTION_FIELDS`` order.
    """

    task: str
    text: str
    seed: int
    variant: str
    front_images: np.ndarray
    wrist_images: np.ndarray | None
    end_poses: np.ndarray
    gripper_mm: np.ndarray
    joints_rad: np.ndarray
    stamps_s: np.ndarray
    actions: np.ndarray
    success: bool
    success_steps: np.ndarray  # (T+1,) ground truth after each step: shows progress that was undone
    meta: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])


def rollout(
    arm: SimArm,
    expert: ScriptedExpert,
    *,
    seed: int,
    variant: str = "expert",
    max_steps: int = 120,
    render: bool = True,
) -> EpisodeRecord:
    """Reset ``arm`` to ``seed``, run ``expert`` until it finishes (or ``max_steps``), record every step.

    Every action passes the arm's safety envelope. ``render``: record camera images (off, nothing is rendered).
    ``meta["object_mm"]``: the centre of the object the task moves (``SimTask.object_key``) at each observation,
    mm, for the actor's auxiliary object loss (``train_actor.object_coef``).
    """
    backend = arm.backend
    arm.reset_to_seed(seed, image=False)
    clamps: Counter[str] = Counter()
    front, wrist, poses, grippers, joints, stamps, actions, successes = [], [], [], [], [], [], [], []
    object_key, objects_mm = backend.task.object_key, []

    def record() -> None:
        state = arm.arm_state()
        poses.append(state.end_pose.as_array())
        grippers.append(state.gripper_mm)
        joints.append(state.joints_rad)
        stamps.append(backend.sim_time_s())
        successes.append(backend.success())
        if object_key:
            objects_mm.append(backend.object_mm())
        if render:
            images = backend.images()
            front.append(images[0])
            if len(images) > 1:
                wrist.append(images[1])

    record()
    for _ in range(max_steps):
        action = expert.act(arm.arm_state(), backend.describe())
        if action is None:
            break
        clamps.update(arm.execute(action).clamps)
        actions.append(action.as_tuple())
        record()
    size = backend.config.image_size_px
    empty = np.zeros((0, size, size, 3), np.uint8)
    return EpisodeRecord(
        task=backend.task.name,
        text=backend.task.text,
        seed=seed,
        variant=variant,
        front_images=np.stack(front) if front else empty,
        wrist_images=np.stack(wrist) if wrist else None,
        end_poses=np.array(poses, dtype=np.float64),
        gripper_mm=np.array(grippers, dtype=np.float64),
        joints_rad=np.array(joints, dtype=np.float64),
        stamps_s=np.array(stamps, dtype=np.float64),
        actions=np.array(actions, dtype=np.int32).reshape(-1, len(ACTION_FIELDS)),
        success=bool(successes[-1]),
        success_steps=np.array(successes, dtype=bool),
        meta={
            "expert_finished": expert.finished,
            "last_waypoint": expert.current,
            "safety_clamps": dict(clamps),
            **({"object_mm": objects_mm} if object_key else {}),
        },
    )
