"""bench/gradient_agreement.py: the groups it forms, the lessons and their cosines, the null, and one real score
gradient of a tiny policy (the runs' own take minutes and their bags; not run here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from actor_episodes import recorded_episode
from bench_scripts import load_bench

from vlac_actor.inputs import InputLimits
from vlac_actor.policy import load_policy
from vlac_core.model import TinyModelSpec, build_tiny_model
from vlac_core.types import DeltaAction


@pytest.fixture(scope="module")
def ga():
    yield from load_bench("gradient_agreement")


def _row(episode_id: str, scene: int, episode_return: float, **extra) -> dict:
    return {
        "episode_id": episode_id,
        "phase": "train",
        "termination": "step_limit",
        "start_state_id": f"pick_bowl-seed{scene}",
        "success": False,
        "episode_return": episode_return,
        **extra,
    }


def test_groups_are_the_trainers_consecutive_episodes_of_a_scene_with_a_lesson(ga):
    rows = [
        *[_row(f"a{k}", 0, r) for k, r in enumerate((1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5))],  # 2 groups, 1 ties
        _row("x", 1, 1.0, termination="aborted"),  # no verdict: not in any group
        *[_row(f"b{k}", 1, r) for k, r in enumerate((0.2, 0.4, 0.6))],  # 3 episodes: no whole group of 4
        *[_row(f"c{k}", 0, r) for k, r in enumerate((0.0, 1.0, 1.0, 0.0))],  # scene 0 again, later
    ]
    groups = ga.training_groups(rows, group_size=4)
    assert [(g.scene, g.episode_ids) for g in groups] == [
        ("pick_bowl-seed0", ("a0", "a1", "a2", "a3")),
        ("pick_bowl-seed0", ("c0", "c1", "c2", "c3")),
    ]
    assert groups[0].advantages == pytest.approx((1.0, -1 / 3, -1 / 3, -1 / 3))  # leave-one-out
    threes = [g.episode_ids[0] for g in ga.training_groups(rows, group_size=3)]
    assert threes == ["a0", "a3", "b0", "c0"]  # a6 and a7 are no whole group of 3
    with pytest.raises(ValueError, match="at least 2"):
        ga.training_groups(rows, group_size=1)


def test_lessons_that_point_alike_within_a_scene_and_apart_across_scenes_read_so(ga):
    # score gradients in 6 dimensions: scene A's episodes differ along e0 (the better one has more of it), scene
    # B's along e3; every episode also carries a large common part (e5) that no advantage contrast keeps
    e = np.eye(6, dtype=np.float32)

    def episodes(axis: int, noise_axis: int) -> torch.Tensor:
        return torch.from_numpy(np.stack([e[axis] + 5 * e[5], 5 * e[5], 5 * e[5] + 0.2 * e[noise_axis]]))

    scores = [episodes(0, 1), episodes(0, 2), episodes(3, 4)]
    groups = [
        ga.Group("A", ("a1", "a2", "a3"), (1.0, -0.5, -0.5)),
        ga.Group("A", ("a4", "a5", "a6"), (1.0, -0.5, -0.5)),
        ga.Group("B", ("b1", "b2", "b3"), (1.0, -0.5, -0.5)),
    ]
    lengths = [np.array([30, 30, 30])] * 3  # equal lengths: both weightings are the same lessons
    both = ga.agreement_figures(scores, groups, lengths, null_draws=50, rng=np.random.default_rng(0))
    figures = both["as_trained"]
    assert figures["same_scene"]["pairs"] == 1 and figures["same_scene"]["mean"] > 0.95
    assert figures["other_scene"]["pairs"] == 2 and abs(figures["other_scene"]["mean"]) < 1e-6
    assert figures["null_same_scene"]["draws"] == 50
    assert figures["null_same_scene"]["mean"] < figures["same_scene"]["mean"] - 0.2  # permuted: often apart
    assert (both["groups"], both["scenes"]) == (3, 2)
    assert both["length_balanced"]["same_scene"] == figures["same_scene"]
    # the common part cancels in a lesson (advantages sum to zero): it makes no false agreement
    assert ga.lessons(scores, [np.array(g.advantages) for g in groups])[:, 5].abs().max() < 1e-5
    with pytest.raises(ValueError, match="at least 2"):
        ga.agreement_figures(scores[:1], groups[:1], lengths[:1], null_draws=0, rng=np.random.default_rng(0))


def test_a_push_every_step_shares_agrees_as_trained_and_cancels_length_balanced(ga):
    # two scenes whose own lessons are orthogonal (e0, e1); every step also carries a common drift d (e2), so an
    # episode's score gradient holds length x d: the long failure against the short success shares -d
    e = np.eye(3, dtype=np.float32)
    lengths = [np.array([10, 40]), np.array([10, 40])]
    scores = [
        torch.from_numpy(np.stack([e[axis] + 10 * 0.1 * e[2], 40 * 0.1 * e[2]])) for axis in (0, 1)
    ]  # success: its lesson axis and 10 steps of drift; failure: 40 steps of drift
    groups = [ga.Group("A", ("a1", "a2"), (1.0, -1.0)), ga.Group("B", ("b1", "b2"), (1.0, -1.0))]
    both = ga.agreement_figures(scores, groups, lengths, null_draws=0, rng=np.random.default_rng(0))
    assert both["as_trained"]["other_scene"]["mean"] > 0.8  # (e0 - 3 e2) . (e1 - 3 e2) / 10
    assert abs(both["length_balanced"]["other_scene"]["mean"]) < 1e-6  # drift cancels: e0 . e1 = 0


def test_pairs_of_two_scenes_split_by_whether_their_goals_share_a_side(ga):
    # lessons along e0 on left-goal scenes, along -e0 on right-goal ones (the mirrored carry), one scene unknown
    e = np.eye(2, dtype=np.float32)
    rows = torch.from_numpy(np.stack([e[0], e[0] + 0.1 * e[1], -e[0], e[1]]))
    scenes = ["pick_bowl-seed1", "pick_bowl-seed2", "pick_bowl-seed3", "frontier-7"]
    sides = {"pick_bowl-seed1": "left", "pick_bowl-seed2": "left", "pick_bowl-seed3": "right"}
    pairs = ga.pair_cosines(rows, scenes, sides)
    assert len(pairs["other_scene"]) == 6 and pairs["same_scene"] == []
    assert pairs["same_side"] == pytest.approx([1 / math.sqrt(1.01)])
    assert pairs["mirrored"] == pytest.approx([-1.0, -1 / math.sqrt(1.01)])  # the unknown scene in neither
    # through agreement_figures, with a null: same side agrees, mirrored cancels, sides counted per scene
    scores = [torch.from_numpy(np.stack([r, np.zeros(2, np.float32)])) for r in rows.numpy()]
    groups = [ga.Group(s, (f"{s}a", f"{s}b"), (1.0, -1.0)) for s in scenes]
    figures = ga.agreement_figures(scores, groups, [np.array([5, 5])] * 4, null_draws=10,
                                   rng=np.random.default_rng(0), sides=sides)  # fmt: skip
    assert figures["scenes_per_side"] == {"left": 2, "right": 1}
    assert figures["as_trained"]["same_side"]["mean"] > 0.99
    assert figures["as_trained"]["mirrored"]["mean"] < -0.99
    assert figures["as_trained"]["null_mirrored"]["draws"] == 10
    plain = ga.agreement_figures(scores, groups, [np.array([5, 5])] * 4, null_draws=0, rng=np.random.default_rng(0))
    assert plain["as_trained"]["same_side"] is None and plain["as_trained"]["other_scene"]["pairs"] == 6


def test_a_scenes_side_is_where_the_simulator_puts_its_goal(ga):
    from piper_driver.sim.backend import SimBackend
    from piper_driver.sim.tasks import make_task

    ids = [f"pick_bowl-seed{k}" for k in range(6)] + ["sweep-seed3", "frontier-2"]
    sides = ga.scene_sides(ids)
    assert set(sides) == set(ids) - {"frontier-2"}  # an id of no seeded scene: no side
    assert {sides[f"pick_bowl-seed{k}"] for k in range(6)} == {"left", "right"}  # both layouts occur
    backend = SimBackend(make_task("pick_bowl"))
    backend.connect()
    for k in range(6):
        backend.reset(k)
        scene = backend.describe()
        assert (scene["plate_m"][1] > 0) == (sides[f"pick_bowl-seed{k}"] == "left")
        assert np.sign(scene["tray_m"][1]) == -np.sign(scene["plate_m"][1])  # the start across from the goal
    backend.disconnect()


def test_the_sum_gain_is_one_for_orthogonal_lessons_and_root_n_for_identical_ones(ga):
    assert ga.sum_gain(torch.eye(4)) == pytest.approx(1.0)
    assert ga.sum_gain(torch.ones(4, 3) * torch.tensor([1.0, 2.0, 3.0, 4.0])[:, None]) == pytest.approx(2.0)


def test_a_score_gradient_is_the_gradient_of_the_episodes_own_summed_log_probabilities(ga, tmp_path, monkeypatch):
    from vlac_actor.scoring import score_actions

    path = build_tiny_model(tmp_path / "p", TinyModelSpec(image_size_px=32, seed=3))
    policy = load_policy(path, device="cpu", allow_fresh_value_head=True)
    policy.loaded.model.eval()
    actions = [DeltaAction(10, 0, -5, 0, 0, 0, 1), DeltaAction(-3, 7, 0, 0, 0, 0, 0), DeltaAction(0, 0, 20, 0, 0, 0, 1)]
    limits = InputLimits()
    monkeypatch.setattr(ga, "SCORE_CHUNK", 2)  # chunks of 2 and 1: the sum over chunks is the whole gradient
    chunked = ga.score_gradient(policy, recorded_episode(actions, [False, False, False]), limits)
    monkeypatch.setattr(ga, "SCORE_CHUNK", 16)
    episode = recorded_episode(actions, [False, True, False])  # the operator's step: out
    helped = ga.score_gradient(policy, episode, limits)
    # the reference: one pass over the two policy steps of the helped episode, by hand
    from vlac_actor.inputs import actor_content
    from vlac_trainer.online.ppo import action_logprobs

    params = [p for p in policy.loaded.model.parameters() if p.requires_grad]
    own = [t for t in episode.transitions if not t.human]
    prompts = [actor_content(t.observation, limits) for t in own]
    scores = score_actions(policy, [c for c, _ in prompts], [i for _, i in prompts], [t.action.delta for t in own],
                           with_grad=True)  # fmt: skip
    grads = torch.autograd.grad(action_logprobs(scores.token_logprobs, scores.mask).sum(), params, allow_unused=True)
    reference = torch.cat(
        [(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads, strict=True)]
    )
    assert helped.shape == reference.shape == (sum(p.numel() for p in params),)
    torch.testing.assert_close(helped, reference, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(chunked, helped)  # the middle step counts when the policy took it
    assert math.isfinite(float(chunked.norm())) and float(chunked.norm()) > 0
