"""Tiny policies and episodes with real 64 px observations, for the PPO trainer tests (built once per module)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from vlac_actor.policy import load_policy
from vlac_actor.value_head import ValueHead
from vlac_core.action_text import format_action
from vlac_core.model import TinyModelSpec, build_tiny_model
from vlac_core.types import DeltaAction, EndPose, Episode, Observation, PolicyAction, Termination, Transition
from vlac_trainer.online.trainer_config import TrainerConfig

TASK = "pick up the bowl"


def build_policy_dir(root, seed: int = 0):
    path = build_tiny_model(root / "model", TinyModelSpec(seed=seed))
    ValueHead(TinyModelSpec().text_hidden, seed=seed).save(path)
    return path


def load(path, version: int = 0):
    return load_policy(path, version=version, device="cpu", dtype="float32")


def config(path, **overrides) -> TrainerConfig:
    base = TrainerConfig(
        checkpoint_path=str(path),
        learning_rate=1e-3,
        minibatch_size=8,
        update_epochs=2,
        value_warmup_updates=0,
        episodes_per_update=2,
        demo_minibatch_size=4,
    )
    return replace(base, **overrides)


def observation(step: int, seed: int, robot_id: str = "arm_0") -> Observation:
    rng = np.random.default_rng(seed * 100 + step)
    return Observation(
        robot_id=robot_id,
        task=TASK,
        images=(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),),
        end_pose=EndPose(250.0 + step, -20.0, 180.0, 170.0, 5.0, -90.0),
        gripper_open=True,
        gripper_mm=60.0,
        joints_rad=(0.0,) * 6,
        stamp_s=10.0 + step,
        seq=step,
    )


def episode(
    episode_id: str,
    rewards: list[float],
    *,
    seed: int = 0,
    robot_id: str = "arm_0",
    human: bool = False,
    termination: Termination = Termination.STEP_LIMIT,
    policy_version: int = 0,
    recorded_logprob: float = -100.0,
    success: bool | None = False,
) -> Episode:
    """Steps with distinct actions; the recorded log-probs are deliberately wrong (the trainer must recompute)."""
    transitions = []
    for t, reward in enumerate(rewards):
        delta = DeltaAction(5 * (t + 1), -3 * t, 2, 0, 0, 0, t % 2)
        action = PolicyAction(
            delta=delta,
            text=format_action(delta),
            token_logprobs=() if human else (recorded_logprob,),
            value=math.nan if human else 0.0,
            policy_version=-1 if human else policy_version,
            obs_stamp_s=10.0 + t,
            inference_latency_s=0.0,
            robot_id=robot_id,
            obs_seq=t,
        )
        transitions.append(
            Transition(
                observation=observation(t, seed, robot_id),
                action=action,
                progress_pct=reward * 100,
                reward=reward,
                done_prob=0.0,
                done=False,
                human=human,
            )
        )
    return Episode(
        episode_id=episode_id,
        robot_id=robot_id,
        task=TASK,
        transitions=transitions,
        final_observation=observation(len(rewards), seed, robot_id),
        termination=termination,
        success=success,
        policy_version=policy_version,
    )


def sampled(policy, episode: Episode, shift_nats: float = 0.0) -> Episode:
    """``episode`` with the log-probs its actor would have recorded had ``policy`` sampled it (per decision,
    as PolicyAction.token_logprobs holds them), plus ``shift_nats`` on each action's first decision."""
    from vlac_actor.inputs import InputLimits, actor_content
    from vlac_actor.scoring import score_actions

    prompts = [actor_content(t.observation, InputLimits()) for t in episode.transitions]
    scores = score_actions(
        policy, [c for c, _ in prompts], [i for _, i in prompts], [t.action.delta for t in episode.transitions]
    )
    transitions = []
    for row, t in enumerate(episode.transitions):
        logprobs = scores.token_logprobs[row][scores.mask[row]].tolist()
        logprobs[0] += shift_nats
        transitions.append(replace(t, action=replace(t.action, token_logprobs=tuple(logprobs))))
    return replace(episode, transitions=transitions)
