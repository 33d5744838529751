"""The PPO update on a tiny real policy: direction of the update, torch recompute, warm-up, demo replay."""

from __future__ import annotations

import ppo_trainer_helpers as h
import pytest
import torch

from vlac_actor.inputs import InputLimits, actor_content
from vlac_actor.scoring import score_actions
from vlac_core.types import Termination
from vlac_trainer.ppo_trainer import PPOTrainer


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    return h.build_policy_dir(tmp_path_factory.mktemp("ppo_policy"))


def logprobs(policy, episode) -> list[float]:
    contents, images, actions = [], [], []
    for t in episode.transitions:
        content, imgs = actor_content(t.observation, InputLimits())
        contents.append(content)
        images.append(imgs)
        actions.append(t.action.delta)
    return score_actions(policy, contents, images, actions).logprob.tolist()


def test_update_raises_logprob_of_positive_advantage_actions_and_lowers_negative(policy_dir):
    # gamma = lambda = 0: A_t = r_t - V(s_t), so the sign of each step's advantage is the sign of its reward.
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, gamma=0.0, gae_lambda=0.0, learning_rate=1e-4))
    ep = h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    before = logprobs(policy, ep)
    stats = trainer.update([ep])
    after = logprobs(policy, ep)
    deltas = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(deltas[0::2]) > 0, deltas
    assert sum(deltas[1::2]) < 0, deltas
    assert stats.policy_version == 1 and policy.version == 1 and not stats.warmup


def test_old_logprobs_are_recomputed_with_torch_not_taken_from_the_actor(policy_dir):
    # The recorded log-probs are -100 nats: were they used, the first ratio would be e^{+90} or so.
    trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir))
    stats = trainer.update([h.episode("e1", [0.5, -0.5, 0.2])])
    assert stats.max_abs_logratio_first < 1e-4


def test_value_warmup_trains_the_value_head_only(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, value_warmup_updates=1, update_epochs=4, learning_rate=1e-2))
    trunk_before = [p.detach().clone() for p in policy.loaded.model.parameters()]
    head_before = policy.value_head.linear.weight.detach().clone()
    ep = h.episode("e1", [1.0, 1.0, 1.0, 1.0], termination=Termination.DONE)
    first = trainer.episode_samples(ep)
    stats = trainer.update([ep])
    second = trainer.episode_samples(ep)
    assert stats.warmup and stats.pg_loss != stats.pg_loss  # NaN: no policy loss in warm-up
    assert all(torch.equal(a, b) for a, b in zip(trunk_before, policy.loaded.model.parameters(), strict=True))
    assert not torch.equal(head_before, policy.value_head.linear.weight)
    error_before = sum((s.ret - s.old_value) ** 2 for s in first)
    error_after = sum((s.ret - s.old_value) ** 2 for s in second)
    assert error_after < error_before
    assert all(p.requires_grad for p in policy.loaded.model.parameters())  # unfrozen again
    assert not trainer.in_warmup


def test_demo_replay_raises_the_likelihood_of_the_human_actions(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, demo_coef=1.0, update_epochs=3, vf_coef=0.0, learning_rate=1e-4))
    demo = h.episode("d1", [0.0, 0.0, 0.0], human=True, seed=7)
    rollout = h.episode("r1", [0.0, 0.0, 0.0, 0.0], seed=3)  # zero advantages: only the demo term moves things
    before = sum(logprobs(policy, demo))
    stats = trainer.update([rollout], [demo])
    assert stats.demo_nll is not None and stats.demo_steps == 3
    assert sum(logprobs(policy, demo)) > before


def test_truncated_episode_bootstraps_from_the_final_observation_and_done_does_not(policy_dir):
    trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir, gamma=1.0, gae_lambda=1.0))
    truncated = trainer.episode_samples(h.episode("t", [0.0, 0.0], termination=Termination.STEP_LIMIT))
    done = trainer.episode_samples(h.episode("d", [0.0, 0.0], termination=Termination.DONE))
    assert len(truncated) == len(done) == 2
    assert done[-1].ret == pytest.approx(0.0, abs=1e-6)  # absorbing: return = reward = 0
    assert truncated[-1].ret != pytest.approx(0.0, abs=1e-9)  # V(final observation) of a random head


def test_update_refuses_an_empty_batch(policy_dir):
    trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir))
    with pytest.raises(ValueError, match="no rollout and no demo"):
        trainer.update([], [])


def test_demo_replay_alone_trains_before_any_rollout(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, demo_coef=1.0, learning_rate=1e-4))
    demo = h.episode("d1", [0.0, 0.0, 0.0], human=True, seed=5)
    before = sum(logprobs(policy, demo))
    stats = trainer.update([], [demo])
    assert stats.demo_nll is not None and stats.minibatches >= 1 and stats.policy_version == 1
    assert sum(logprobs(policy, demo)) > before
