"""The PPO update on a tiny real policy: direction of the update, torch recompute, warm-up, demo replay."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import ppo_trainer_helpers as h
import pytest
import torch

from vlac_actor.inputs import InputLimits, actor_content
from vlac_actor.scoring import score_actions
from vlac_core.action_text import format_action
from vlac_core.config import ConfigError, from_mapping
from vlac_core.types import DeltaAction, Termination
from vlac_trainer.online.ppo_trainer import PPOTrainer, StepSample, UpdateBatch, minibatch_indices, score_decisions
from vlac_trainer.online.trainer_config import TrainerConfig


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
    trainer = PPOTrainer(policy, h.config(policy_dir, gamma=0.0, gae_lambda=0.0, learning_rate=1e-4, target_kl=0.0))
    ep = h.sampled(policy, h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]))
    before = logprobs(policy, ep)
    stats = trainer.update([ep])
    after = logprobs(policy, ep)
    deltas = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(deltas[0::2]) > 0, deltas
    assert sum(deltas[1::2]) < 0, deltas
    assert stats.policy_version == 1 and policy.version == 1 and not stats.warmup
    assert stats.episodes == 1 and stats.dropped_episodes == 0


def test_current_data_has_ratio_one_to_the_recorded_sampling_logprobs(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir))
    stats = trainer.update([h.sampled(policy, h.episode("e1", [0.5, -0.5, 0.2]))])
    assert stats.max_abs_logratio_first < 1e-4
    assert stats.logratio_sampled_mean == pytest.approx(0.0, abs=1e-4)


def test_the_ratio_is_to_the_behaviour_policy_not_a_recompute(policy_dir):
    # The actor that sampled these steps gave each action 0.5 nats more than the current policy does
    # (an older version): log pi_old - log mu = -0.5 per action, ratio e^-0.5, and the first minibatch's
    # ratio pi / mu starts 0.5 nats from 1 instead of exactly at 1.
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir))
    stats = trainer.update([h.sampled(policy, h.episode("e1", [0.5, -0.5, 0.2]), shift_nats=0.5)])
    assert stats.logratio_sampled_mean == pytest.approx(-0.5, abs=1e-4)
    assert stats.ratio_sampled_mean == pytest.approx(math.exp(-0.5), abs=1e-4)
    assert stats.max_abs_logratio_first == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize(("clip_around", "first_clipfrac"), [("behaviour", 1.0), ("pre_update", 0.0)])
def test_clipped_around_the_pre_update_policy_a_lagged_batch_starts_inside_the_range(
    policy_dir, clip_around, first_clipfrac
):
    # Sampled by a version that gave every action 0.5 nats more (ratio to mu e^-0.5 = 0.61, below 0.8): around
    # mu every action starts clipped, and the negative-advantage ones get no gradient; around pi_old none is,
    # and both signs move the way their advantage says.
    policy = h.load(policy_dir)
    cfg = h.config(
        policy_dir,
        gamma=0.0,
        gae_lambda=0.0,
        learning_rate=1e-4,
        target_kl=0.0,
        update_epochs=1,
        minibatch_size=16,
        ppo_clip_around=clip_around,
    )
    trainer = PPOTrainer(policy, cfg)
    ep = h.sampled(policy, h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]), shift_nats=0.5)
    before = logprobs(policy, ep)
    stats = trainer.update([ep])  # one minibatch: its clip fraction is measured before its step
    deltas = [a - b for a, b in zip(logprobs(policy, ep), before, strict=True)]
    assert stats.minibatches == 1 and stats.clipfrac == first_clipfrac
    assert sum(deltas[0::2]) > 0, deltas
    if clip_around == "pre_update":
        assert sum(deltas[1::2]) < 0, deltas


def test_clipping_around_the_pre_update_policy_takes_one_ratio_per_action(policy_dir):
    values = {"checkpoint_path": str(policy_dir), "ppo_clip_around": "pre_update", "ppo_ratio": "decision"}
    with pytest.raises(ConfigError, match="ppo_clip_around: 'pre_update' takes one ratio per action"):
        from_mapping(TrainerConfig, values)


def test_untrusted_backend_logprobs_are_recomputed_for_current_data_and_dropped_when_stale(policy_dir):
    policy = h.load(policy_dir, version=3)
    trainer = PPOTrainer(policy, h.config(policy_dir))

    def vllm_episode(name, version):
        ep = h.episode(name, [0.1, 0.2, 0.3], policy_version=version)
        actions = [replace(t.action, logprob_needs_recompute=True) for t in ep.transitions]
        return replace(ep, transitions=[replace(t, action=a) for t, a in zip(ep.transitions, actions, strict=True)])

    stats = trainer.update([vllm_episode("current", 3), vllm_episode("stale", 2)])
    assert (stats.episodes, stats.dropped_episodes, stats.steps) == (1, 1, 3)
    assert stats.max_abs_logratio_first < 1e-4  # the recompute is the behaviour policy of current data
    with pytest.raises(ValueError, match="0 step"):
        trainer.update([vllm_episode("stale again", 3)])  # the policy is at version 4 now


def test_value_warmup_fits_discounted_real_returns_from_a_zero_head_and_trains_the_head_only(policy_dir):
    policy = h.load(policy_dir)  # its value head has random weights; the first update zeroes it
    trainer = PPOTrainer(policy, h.config(policy_dir, value_warmup_updates=1, update_epochs=4, gamma=0.5))
    trunk_before = [p.detach().clone() for p in policy.loaded.model.parameters()]
    ep = h.sampled(policy, h.episode("e1", [1.0, 1.0, 1.0, 1.0], termination=Termination.DONE))
    stats = trainer.update([ep])
    assert stats.warmup and stats.pg_loss != stats.pg_loss  # NaN: no policy loss in warm-up
    # targets: G_t = sum_k 0.5^k r_{t+k} (lambda = 1 on the real rewards), from V = 0: explained variance 0
    assert stats.return_mean == pytest.approx((1.875 + 1.75 + 1.5 + 1.0) / 4)
    assert stats.explained_variance == pytest.approx(0.0)
    assert all(torch.equal(a, b) for a, b in zip(trunk_before, policy.loaded.model.parameters(), strict=True))
    after = trainer.episode_samples(ep)
    assert sum(s.old_value**2 for s in after) > 0  # the head moved off zero ...
    error = sum((g - s.old_value) ** 2 for g, s in zip((1.875, 1.75, 1.5, 1.0), after, strict=True))
    assert error < 1.875**2 + 1.75**2 + 1.5**2 + 1.0  # ... toward the returns
    assert all(p.requires_grad for p in policy.loaded.model.parameters())  # unfrozen again
    assert not trainer.in_warmup


def test_value_head_has_its_own_learning_rate_and_no_borrowed_clip(policy_dir):
    trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir, learning_rate=1e-5, value_learning_rate=1e-3))
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-5, 1e-3]
    assert trainer.optimizer.param_groups[1]["params"] == list(trainer.policy.value_head.parameters())
    assert trainer.coefs.vf_clip == 0.0


def test_advantages_are_normalised_over_the_whole_batch():
    samples = [StepSample("", (), None, 0.0, 0.0, 0.0, adv, 0.0) for adv in (1.0, 3.0, 5.0, 7.0)]
    batch = UpdateBatch.of(samples, norm_adv=True)
    # mean 4, unbiased std sqrt(20 / 3): one normalisation for all four, whatever the minibatches
    assert batch.advantages.tolist() == pytest.approx([x / math.sqrt(20 / 3) for x in (-3.0, -1.0, 1.0, 3.0)], rel=1e-6)
    assert batch.minibatch(np.array([3, 0]), torch.device("cpu")).advantages.tolist() == pytest.approx(
        [3 / math.sqrt(20 / 3), -3 / math.sqrt(20 / 3)], rel=1e-6
    )  # a minibatch keeps the batch's normalisation
    assert UpdateBatch.of(samples, norm_adv=False).advantages.tolist() == [1.0, 3.0, 5.0, 7.0]


@pytest.mark.parametrize("size", [2, 3, 4, 16])
def test_minibatches_take_every_step_once_and_never_leave_one_step_alone(size):
    for n in range(2, 5 * size + 2):
        order = np.random.default_rng(n).permutation(n)
        batches = minibatch_indices(order, size)
        assert np.concatenate(batches).tolist() == order.tolist(), (n, size)  # each step once, in the drawn order
        assert all(len(b) >= 2 for b in batches) and all(len(b) <= size + 1 for b in batches), (n, size)
        assert len(batches) == max(1, n // size + (n % size > 1)), (n, size)


def test_scoring_in_chunks_gives_each_steps_decisions_as_one_pass_does(policy_dir):
    # actions of different decision counts (signs and digits), so each chunk pads to its own width
    policy = h.load(policy_dir)
    episode = h.episode("e1", [0.1] * 5)
    prompts = [actor_content(t.observation, InputLimits()) for t in episode.transitions]
    actions = [t.action.delta for t in episode.transitions]
    whole = score_actions(policy, [c for c, _ in prompts], [i for _, i in prompts], actions)
    tokens, values = score_decisions(policy, prompts, actions, chunk=2)  # chunks of 2, 2 and 1
    assert len({len(row) for row in tokens}) > 1  # the actions' decision counts differ
    for row, expected, mask in zip(tokens, whole.token_logprobs, whole.mask, strict=True):
        assert row == pytest.approx(expected[mask].tolist(), abs=1e-5)
    assert values == pytest.approx(whole.values.tolist(), abs=1e-5)


def test_an_update_whose_steps_are_one_more_than_two_minibatches_trains_them_all(policy_dir):
    # 5 steps at 4 per minibatch: the lone fifth step joins the first minibatch (one gradient step, not a failure)
    policy = h.load(policy_dir)
    ep = h.sampled(policy, h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0]))
    stats = PPOTrainer(policy, h.config(policy_dir, minibatch_size=4, update_epochs=1, target_kl=0.0)).update([ep])
    assert stats.steps == 5 and stats.minibatches == 1


def test_target_kl_stops_the_epochs_early(policy_dir):
    policy = h.load(policy_dir)
    ep = h.sampled(policy, h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0], termination=Termination.DONE))
    free = PPOTrainer(policy, h.config(policy_dir, minibatch_size=2, update_epochs=3, target_kl=0.0)).update([ep])
    assert free.minibatches == 9 and not free.early_stopped
    policy = h.load(policy_dir)
    ep = h.sampled(policy, ep)
    stopped = PPOTrainer(policy, h.config(policy_dir, minibatch_size=2, update_epochs=3, target_kl=1e-12)).update([ep])
    # the first minibatch's KL to the pre-update policy is 0, the next ones' above 1e-12: the first epoch's
    # mean is over the target, so the epoch ends (all 3 minibatches) and no second one starts
    assert stopped.early_stopped and stopped.minibatches == 3
    policy = h.load(policy_dir)
    ep = h.sampled(policy, ep)
    loose = PPOTrainer(policy, h.config(policy_dir, minibatch_size=2, update_epochs=3, target_kl=10.0)).update([ep])
    assert loose.minibatches == 9 and not loose.early_stopped
    policy = h.load(policy_dir)
    ep = h.sampled(policy, ep)
    last = PPOTrainer(policy, h.config(policy_dir, minibatch_size=2, update_epochs=1, target_kl=1e-12)).update([ep])
    # over the target after the only epoch: nothing was skipped, so nothing was stopped
    assert last.minibatches == 3 and not last.early_stopped


def _adam_steps(trainer: PPOTrainer) -> int:
    """How many optimiser steps the trainer's Adam has taken (its per-parameter step count)."""
    return int(max(float(state["step"]) for state in trainer.optimizer.state.values()))


def test_kl_guard_ends_the_update_before_the_runaway_step(policy_dir):
    ep = h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0], termination=Termination.DONE)
    policy = h.load(policy_dir)
    cfg = h.config(policy_dir, minibatch_size=2, update_epochs=3, target_kl=0.0, kl_guard=1e-12)
    trainer = PPOTrainer(policy, cfg)
    guarded = trainer.update([h.sampled(policy, ep)])
    # the first minibatch's KL to the pre-update policy is 0 and it steps; the second's is above 1e-12: no step,
    # and neither the rest of the epoch nor the two epochs after it run
    assert guarded.kl_guard_stopped and not guarded.early_stopped
    assert guarded.minibatches == 2 and _adam_steps(trainer) == 1
    assert guarded.approx_kl_max > 1e-12 and guarded.approx_kl == pytest.approx(guarded.approx_kl_max / 2)
    policy = h.load(policy_dir)
    free = PPOTrainer(policy, h.config(policy_dir, minibatch_size=2, update_epochs=3, target_kl=0.0, kl_guard=0.0))
    stats = free.update([h.sampled(policy, ep)])
    assert not stats.kl_guard_stopped and stats.minibatches == 9 and _adam_steps(free) == 9
    assert stats.approx_kl_max >= stats.approx_kl > 0


def test_update_reports_the_diagnostics(policy_dir):
    policy = h.load(policy_dir)
    # the checkpoint's (random) value head: a zero head sends no value gradient into the trunk at first
    trainer = PPOTrainer(policy, h.config(policy_dir, target_kl=0.0, value_head_init="checkpoint"))
    stats = trainer.update([h.sampled(policy, h.episode("e1", [0.5, -0.5, 0.2, 0.1]))])
    assert stats.grad_norm_policy > 0 and stats.grad_norm_value > 0  # both terms reach the shared trunk
    assert stats.entropy > 0 and stats.approx_kl >= 0 and 0 <= stats.clipfrac <= 1
    assert stats.adv_min <= stats.adv_mean <= stats.adv_max and stats.adv_std > 0
    assert math.isfinite(stats.explained_variance)


@pytest.mark.parametrize(("max_grad_norm", "clipped_share"), [(1e-6, 1.0), (1e6, 0.0)])
def test_update_reports_the_gradient_norm_before_the_clip_and_how_often_it_clipped(
    policy_dir, max_grad_norm, clipped_share
):
    # The same batch under a clip every gradient exceeds and one none reaches: the norm reported is the
    # unclipped one in both (the clip scales the gradient, not the report), and the share counts the clips.
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, minibatch_size=2, max_grad_norm=max_grad_norm, target_kl=0.0))
    stats = trainer.update([h.sampled(policy, h.episode("e1", [0.5, -0.5, 0.2, 0.1]))])
    assert stats.minibatches >= 2
    assert stats.grad_clipped_share == clipped_share
    assert 1e-3 < stats.grad_norm < 1e6


@pytest.mark.parametrize(("skip", "moves"), [(True, False), (False, True)])
def test_a_batch_with_no_signal_moves_the_policy_only_along_adams_momentum_unless_skipped(policy_dir, skip, moves):
    # A first update with signal leaves Adam momentum; the second batch is one group whose two episodes did alike
    # (all advantages exactly zero, no value or entropy term): its gradient is zero, yet Adam's step still moves
    # the weights along that momentum. skip_zero_gradient_steps takes no step then, and counts it.
    policy = h.load(policy_dir)
    cfg = h.config(policy_dir, advantage="group", norm_adv=False, vf_coef=0.0, target_kl=0.0, minibatch_size=4)
    trainer = PPOTrainer(policy, replace(cfg, skip_zero_gradient_steps=skip))

    def from_start(episode_id, rewards, start, seed):
        return replace(h.sampled(policy, h.episode(episode_id, rewards, seed=seed)), start_state_id=start)

    first = trainer.update([from_start("a", [0.5, 0.5], "s1", 0), from_start("b", [0.25, -0.25], "s1", 1)])
    assert first.steps_skipped_share == 0.0 and first.grad_norm > 0
    before = [p.detach().clone() for p in policy.loaded.model.parameters()]
    # returns 0.7 each: summed, the leave-one-out mean would leave float noise (group_baseline makes it exact)
    alike = trainer.update([from_start("c", [0.35, 0.35], "s2", 2), from_start("d", [0.7, 0.0], "s2", 3)])
    assert (alike.adv_min, alike.adv_max, alike.grad_norm) == (0.0, 0.0, 0.0)
    assert alike.steps_skipped_share == (1.0 if skip else 0.0)
    after = list(policy.loaded.model.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True)) == moves


def test_demo_replay_raises_the_likelihood_of_the_human_actions(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, demo_coef=1.0, update_epochs=3, vf_coef=0.0, learning_rate=1e-4))
    demo = h.episode("d1", [0.0, 0.0, 0.0], human=True, seed=7)
    rollout = h.episode("r1", [0.0, 0.0, 0.0, 0.0], seed=3)  # zero advantages: only the demo term moves things
    before = sum(logprobs(policy, demo))
    stats = trainer.update([rollout], [demo])
    assert stats.demo_nll is not None and stats.demo_steps == 3
    assert sum(logprobs(policy, demo)) > before


def test_truncated_episode_bootstraps_from_the_state_value_of_its_final_observation(policy_dir):
    trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir, gamma=1.0, gae_lambda=1.0))
    truncated_ep = h.episode("t", [0.0, 0.0], termination=Termination.STEP_LIMIT)
    truncated = trainer.episode_samples(h.sampled(trainer.policy, truncated_ep))
    done = trainer.episode_samples(h.sampled(trainer.policy, h.episode("d", [0.0, 0.0], termination=Termination.DONE)))
    assert len(truncated) == len(done) == 2
    assert done[-1].ret == pytest.approx(0.0, abs=1e-6)  # absorbing: return = reward = 0
    # R_{T-1} = r + V(s_T) with V read for the final observation alone (no action after it)
    v_final = trainer.state_value(truncated_ep.final_observation)
    assert v_final != pytest.approx(0.0, abs=1e-6)  # the test head has random weights
    assert truncated[-1].ret == pytest.approx(v_final, abs=1e-5)


def test_update_refuses_an_empty_batch(policy_dir):
    trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir))
    with pytest.raises(ValueError, match="no rollout, demo or successful episode"):
        trainer.update([], [])


def test_demo_replay_alone_trains_before_any_rollout(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, demo_coef=1.0, learning_rate=1e-4))
    demo = h.episode("d1", [0.0, 0.0, 0.0], human=True, seed=5)
    before = sum(logprobs(policy, demo))
    stats = trainer.update([], [demo])
    assert stats.demo_nll is not None and stats.minibatches >= 1 and stats.policy_version == 1
    assert sum(logprobs(policy, demo)) > before


def test_self_imitation_raises_the_replayed_successes_actions_beside_ppo(policy_dir):
    policy = h.load(policy_dir)
    cfg = h.config(policy_dir, self_imitation_coef=1.0, learning_rate=1e-4, target_kl=0.0)
    trainer = PPOTrainer(policy, cfg)
    success = h.sampled(policy, h.episode("s1", [0.0, 0.0, 1.0], seed=6, termination=Termination.DONE))
    before = sum(logprobs(policy, success))
    stats = trainer.update([], [], [success])  # no rollout: the imitation term alone
    assert stats.self_imitation_steps == 3 and stats.self_imitation_nll is not None and stats.demo_nll is None
    assert sum(logprobs(policy, success)) > before
    rollout = h.sampled(policy, h.episode("r1", [0.0, 1.0, 0.0, 0.0], seed=7))
    stats = trainer.update([rollout], [], [success])  # beside PPO: every minibatch draws replayed steps
    assert stats.steps == 4 and stats.self_imitation_steps == 3 and stats.self_imitation_nll is not None


def test_self_imitation_off_ignores_the_successes(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, self_imitation_coef=0.0))
    success = h.episode("s1", [0.0, 1.0], seed=6, termination=Termination.DONE)
    rollout = h.sampled(policy, h.episode("r1", [0.0, 1.0, 0.0], seed=7))
    stats = trainer.update([rollout], [], [success])
    assert stats.self_imitation_steps == 0 and stats.self_imitation_nll is None
    with pytest.raises(ValueError, match="PPO needs at least 2"):  # nothing else to train on: not a silent no-op
        trainer.update([], [], [success])


def test_the_prior_kl_anchor_holds_the_policy_nearer_the_starting_policy(policy_dir):
    def moved(coef: float) -> tuple[float, list]:
        policy = h.load(policy_dir)
        cfg = h.config(policy_dir, gamma=0.0, gae_lambda=0.0, target_kl=0.0, prior_kl_coef=coef, learning_rate=1e-4)
        trainer = PPOTrainer(policy, cfg, prior=h.load(policy_dir) if coef else None)
        ep = h.sampled(policy, h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]))
        before = logprobs(policy, ep)
        stats = [trainer.update([h.sampled(policy, ep)]) for _ in range(3)]
        after = logprobs(policy, ep)
        return sum(abs(a - b) for a, b in zip(after, before, strict=True)), stats

    free, free_stats = moved(0.0)
    anchored, anchored_stats = moved(5.0)  # measured: 3.4 vs 11.4 nats moved over the six actions
    assert anchored < 0.5 * free, (anchored, free)
    assert all(s.prior_kl is None for s in free_stats)
    # the first minibatch of the first update is at the prior (KL 0); later ones have moved off it
    assert anchored_stats[0].prior_kl >= 0 and anchored_stats[-1].prior_kl > 0


def test_the_prior_kl_anchor_needs_the_prior(policy_dir):
    with pytest.raises(ValueError, match="prior_kl_coef > 0 needs the prior"):
        PPOTrainer(h.load(policy_dir), h.config(policy_dir, prior_kl_coef=0.1))
    with pytest.raises(ValueError, match="log_prior_kl needs the prior"):
        PPOTrainer(h.load(policy_dir), h.config(policy_dir, log_prior_kl=True))


def test_logging_the_drift_from_the_prior_leaves_the_update_as_it_was(policy_dir):
    # log_prior_kl scores the prior on the batch and logs KL(pi || prior) as the anchor would, without pulling:
    # weights and losses are those of the same updates without it, and the drift grows from 0 as the policy moves.
    ep = h.sampled(h.load(policy_dir), h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]))
    results = {}
    for on in (False, True):
        policy = h.load(policy_dir)
        cfg = h.config(policy_dir, gamma=0.0, gae_lambda=0.0, target_kl=0.0, learning_rate=1e-4, log_prior_kl=on)
        trainer = PPOTrainer(policy, cfg, prior=h.load(policy_dir) if on else None)
        stats = [trainer.update([h.sampled(policy, ep)]) for _ in range(3)]
        results[on] = (stats, [p.detach().clone() for p in trainer.parameters()])
    (off, off_weights), (on, on_weights) = results[False], results[True]
    assert all(torch.equal(a, b) for a, b in zip(off_weights, on_weights, strict=True))
    assert [(s.loss, s.approx_kl) for s in on] == [(s.loss, s.approx_kl) for s in off]
    assert all(s.prior_kl is None for s in off)
    assert 0 <= on[0].prior_kl < on[-1].prior_kl  # the first minibatch is at the prior; three updates later, not


def test_the_per_decision_ratio_update_moves_each_action_the_way_its_advantage_says(policy_dir):
    policy = h.load(policy_dir)
    cfg = h.config(policy_dir, gamma=0.0, gae_lambda=0.0, learning_rate=1e-4, target_kl=0.0, ppo_ratio="decision")
    trainer = PPOTrainer(policy, cfg)
    ep = h.sampled(policy, h.episode("e1", [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]))
    before = logprobs(policy, ep)
    stats = trainer.update([ep])
    deltas = [a - b for a, b in zip(logprobs(policy, ep), before, strict=True)]
    assert sum(deltas[0::2]) > 0 and sum(deltas[1::2]) < 0, deltas
    assert 0 <= stats.clipfrac <= 1 and stats.max_abs_logratio_first < 1e-4


def test_the_per_decision_ratio_refuses_a_step_whose_recorded_decisions_do_not_match(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, target_kl=0.0, ppo_ratio="decision"))
    ep = h.episode("e1", [1.0, -1.0], recorded_logprob=-1.0)  # one recorded decision per action: too few
    with pytest.raises(ValueError, match="1 recorded decisions, the re-score has"):
        trainer.update([ep])


def test_the_group_advantage_is_each_episodes_return_against_the_others_from_its_start(policy_dir):
    policy = h.load(policy_dir)
    cfg = h.config(policy_dir, advantage="group", norm_adv=False, target_kl=0.0, learning_rate=1e-4)
    trainer = PPOTrainer(policy, cfg)

    def from_start(episode_id, rewards, start, seed, delta=None):
        ep = h.episode(episode_id, rewards, seed=seed)
        if delta is not None:  # the same observations, another action: the update must tell them apart
            action = replace(ep.transitions[0].action, delta=delta, text=format_action(delta))
            ep = replace(ep, transitions=[replace(t, action=action) for t in ep.transitions])
        return replace(h.sampled(policy, ep), start_state_id=start)

    better = from_start("better", [0.5, 0.5], "pick_bowl-seed1", 0)  # return 1.0
    other = DeltaAction(-40, 25, -10, 0, 0, 0, 1)
    worse = from_start("worse", [0.25, -0.25], "pick_bowl-seed1", 0, other)  # return 0.0 from the same start
    alone = from_start("alone", [0.7, 0.7], "pick_bowl-seed2", 2)  # no other episode from its start
    before = [logprobs(policy, ep) for ep in (better, worse)]
    stats = trainer.update([better, worse, alone])
    after = [logprobs(policy, ep) for ep in (better, worse)]
    # every step of an episode gets R_i minus the mean of the others' returns: +1 for better, -1 for worse
    assert (stats.adv_min, stats.adv_max, stats.adv_mean) == (-1.0, 1.0, 0.0)
    assert stats.steps == 4 and stats.episodes == 2 and stats.ungrouped_episodes == 1
    assert sum(after[0]) > sum(before[0]) and sum(after[1]) < sum(before[1])


@pytest.mark.parametrize(("weighting", "per_step"), [("step", (1.0, -1.0)), ("episode", (2.0, -2.0 / 3.0))])
def test_group_weighting_episode_makes_a_long_failure_weigh_as_much_as_a_short_success(policy_dir, weighting, per_step):
    policy = h.load(policy_dir)
    cfg = h.config(policy_dir, advantage="group", group_weighting=weighting, norm_adv=False, target_kl=0.0)
    trainer = PPOTrainer(policy, cfg)
    success = replace(h.sampled(policy, h.episode("short", [1.0], seed=0)), start_state_id="pick_bowl-seed1")
    failure = replace(h.sampled(policy, h.episode("long", [0.0] * 3, seed=0)), start_state_id="pick_bowl-seed1")
    stats = trainer.update([success, failure])
    # LOO: +1 and -1. Per step: unweighted, 1 step at +1 against 3 at -1 (the batch leans negative); weighted by
    # mean length 2 over the episode's length, +2 on the success's step and -2/3 on each of the failure's
    assert (stats.adv_max, stats.adv_min) == pytest.approx(per_step)
    assert stats.adv_mean == pytest.approx((per_step[0] + 3 * per_step[1]) / 4)
    assert stats.steps == 4 and stats.ungrouped_episodes == 0


@pytest.mark.parametrize("advantage", ["gae", "group_phase"])
def test_group_weighting_without_the_episode_group_advantage_is_refused(policy_dir, advantage):
    values = {"checkpoint_path": str(policy_dir), "group_weighting": "episode", "advantage": advantage}
    match = f"group_weighting: 'episode' weighs an episode's advantage; advantage is '{advantage}'"
    with pytest.raises(ConfigError, match=match):
        from_mapping(TrainerConfig, values)


def _with_phases(episode, phases):
    steps = [replace(t, gt_phase=p) for t, p in zip(episode.transitions, phases, strict=True)]
    return replace(episode, transitions=steps)


def test_the_phase_matched_group_advantage_judges_each_phase_against_the_others_that_reached_it(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, advantage="group_phase", norm_adv=False, target_kl=0.0))
    start = "pick_bowl-seed1"
    # returns to go: grasped [0.6, 0.5, 0.3] (reach, carry, carry); missed [0.2, 0.1, 0.0] (reach x 3)
    grasped = _with_phases(h.episode("grasped", [0.1, 0.2, 0.3], seed=0), ["reach", "carry", "carry"])
    missed = _with_phases(h.episode("missed", [0.1, 0.1, 0.0], seed=0), ["reach"] * 3)
    batch = [replace(h.sampled(policy, ep), start_state_id=start) for ep in (grasped, missed)]
    stats = trainer.update(batch)
    # reach visits: 0.6 - 0.2 and 0.2 - 0.6; grasped's carry visit has no other episode there: keeps +0.4
    assert (stats.adv_min, stats.adv_max) == pytest.approx((-0.4, 0.4))
    assert stats.adv_mean == pytest.approx(0.0) and stats.steps == 6 and stats.ungrouped_episodes == 0


def test_the_phase_matched_group_advantage_refuses_an_episode_without_the_simulators_phase(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, advantage="group_phase"))
    phased = _with_phases(h.episode("phased", [0.1, 0.2], seed=0), ["reach", "reach"])
    real = h.episode("real", [0.1, 0.2], seed=0)  # no gt_phase: what a real arm records
    batch = [replace(h.sampled(policy, ep), start_state_id="s") for ep in (phased, real)]
    with pytest.raises(ValueError, match="advantage group_phase: episode real step 0 has no simulator phase"):
        trainer.update(batch)


def test_a_group_update_where_every_episode_is_alone_says_so(policy_dir):
    policy = h.load(policy_dir)
    trainer = PPOTrainer(policy, h.config(policy_dir, advantage="group"))
    lonely = [
        replace(h.sampled(policy, h.episode(f"e{i}", [0.1, 0.2], seed=i)), start_state_id=f"pick_bowl-seed{i}")
        for i in range(2)
    ]
    with pytest.raises(ValueError, match=r"2 episode\(s\) alone in the batch from their start"):
        trainer.update(lonely)


def test_the_lesson_diagnostic_leaves_the_update_as_it_was(policy_dir):
    # The lesson is one more backward pass at the pre-update policy through autograd.grad: the update's weights,
    # losses and minibatch draws are those of the same update without it.
    batch = [h.sampled(h.load(policy_dir), h.episode("e1", [0.5, -0.5, 0.2, 0.1]))]
    results = {}
    for on in (False, True):
        trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir, target_kl=0.0, lesson_agreement=on))
        stats = trainer.update(batch)
        results[on] = (stats, [p.detach().clone() for p in trainer.parameters()])
    (off, off_weights), (on, on_weights) = results[False], results[True]
    assert all(torch.equal(a, b) for a, b in zip(off_weights, on_weights, strict=True))
    assert (on.loss, on.approx_kl) == (off.loss, off.approx_kl)
    assert math.isnan(off.lesson_norm) and off.lessons == 0
    assert on.lesson_norm > 0 and on.lessons == 1 and math.isnan(on.lesson_cos_to_past)


def test_the_lesson_is_the_policy_terms_gradient_at_the_pre_update_policy(policy_dir):
    # gamma = lambda = 0 and a zero value head: each step's advantage is its reward, normalised over the batch. The
    # first lesson's norm is |grad sum_s A_s log pi(a_s|s)| computed here by hand; with steps of 1e-9 the policy
    # stays put, so the same batch again teaches the same lesson (cosine 1) and the batch with its rewards negated
    # the opposite one (cosine -1 to the two before; pairwise cosines 1, -1, -1: agreement -1/3).
    policy = h.load(policy_dir)
    cfg = h.config(
        policy_dir, gamma=0.0, gae_lambda=0.0, learning_rate=1e-9, value_learning_rate=1e-9, lesson_agreement=True
    )
    trainer = PPOTrainer(policy, cfg)
    rewards = [0.5, -0.5, 0.2, 0.1, -0.3]
    batch = [h.sampled(policy, h.episode("e1", rewards))]
    negated = [h.sampled(policy, h.episode("e2", [-r for r in rewards]))]

    by_hand = h.load(policy_dir)
    prompts = [actor_content(t.observation, InputLimits()) for t in batch[0].transitions]
    scores = score_actions(
        by_hand,
        [c for c, _ in prompts],
        [i for _, i in prompts],
        [t.action.delta for t in batch[0].transitions],
        with_grad=True,
    )
    advantages = torch.tensor(rewards)
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    (advantages * scores.logprob).sum().backward()
    grads = [p.grad.flatten() for p in by_hand.loaded.model.parameters() if p.grad is not None]
    expected_norm = float(torch.cat(grads).norm())

    first = trainer.update(batch)
    assert first.lesson_norm == pytest.approx(expected_norm, rel=1e-4)
    again = trainer.update(batch)
    assert again.lesson_cos_to_past == pytest.approx(1.0, abs=1e-4)
    assert again.lesson_agreement == pytest.approx(1.0, abs=1e-4)
    opposite = trainer.update(negated)
    assert opposite.lesson_cos_to_past == pytest.approx(-1.0, abs=1e-4)
    assert opposite.lesson_agreement == pytest.approx(-1 / 3, abs=1e-4)
    assert opposite.lesson_shared_to_noise == 0.0 and opposite.lessons == 3


def test_no_lesson_is_taken_in_the_value_warmup(policy_dir):
    trainer = PPOTrainer(h.load(policy_dir), h.config(policy_dir, value_warmup_updates=1, lesson_agreement=True))
    stats = trainer.update([h.sampled(trainer.policy, h.episode("e1", [0.5, -0.5, 0.2]))])
    assert stats.warmup and math.isnan(stats.lesson_norm) and stats.lessons == 0


def test_a_logprob_gradient_over_mismatched_steps_is_refused(policy_dir):
    from vlac_trainer.online.ppo_trainer import logprob_gradient

    step = h.episode("e1", [0.5]).transitions[0]
    prompt = actor_content(step.observation, InputLimits())
    with pytest.raises(ValueError, match="2 prompts, 1 actions and 1 weights"):
        logprob_gradient(h.load(policy_dir), [prompt, prompt], [step.action.delta], torch.ones(1), 16)
