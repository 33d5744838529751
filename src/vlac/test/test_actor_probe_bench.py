"""bench/actor_probe.py: which steps it probes, how it splits them, and that its probes find a signal that is there
(and only when it is there). The probes on the real runs take minutes and the runs' bags; not run here."""

from __future__ import annotations

import math
from types import SimpleNamespace as Ns

import numpy as np
import pytest
import torch
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def probe():
    yield from load_bench("actor_probe")


def _step(phase, *, human=False, open_=0, p_open=0.5, pose=(1.0, 2.0, 3.0)):
    p_chosen = p_open if open_ else 1.0 - p_open
    action = Ns(delta=Ns(open=open_), token_logprobs=(-0.3, math.log(p_chosen)))
    observation = Ns(end_pose=Ns(x_mm=pose[0], y_mm=pose[1], z_mm=pose[2]), images=[np.zeros((8, 8, 3), np.uint8)])
    return Ns(gt_phase=phase, human=human, action=None if human else action, observation=observation)


def test_held_steps_are_the_policys_own_carry_and_release_steps_keyed_by_scene(probe):
    fresh = Ns(
        start_state_id="pick_bowl-seed3",
        transitions=[_step("reach"), _step("carry", p_open=0.1), _step("release", open_=1, p_open=0.7), _step("done")],
    )
    restarted = Ns(
        start_state_id="pick_bowl-seed3/arm_0-ab/step20",  # a frontier restart of the same scene
        transitions=[_step("release", human=True), _step("carry", pose=(4.0, 5.0, 6.0))],
    )
    data = probe.held_steps([fresh, restarted], run="r")
    assert data.released.tolist() == [0.0, 1.0, 0.0]  # reach, done and the operator's step left out
    assert data.scenes == ["r:pick_bowl-seed3"] * 3
    assert data.p_open.tolist() == pytest.approx([0.1, 0.7, 0.5])
    assert data.pose_mm.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert len(data.observations) == len(data.actions) == 3


def test_the_split_holds_out_whole_scenes_the_same_way_every_time(probe):
    scenes = [f"run:pick_bowl-seed{k}" for k in range(400) for _ in range(3)]
    mask = probe.held_out_mask(scenes)
    assert mask.tolist() == probe.held_out_mask(scenes).tolist()
    per_scene = mask.reshape(400, 3)
    assert (per_scene.all(1) | ~per_scene.any(1)).all()  # no scene on both sides
    assert 0.22 < per_scene[:, 0].mean() < 0.38  # about HELD_OUT_SHARE of the scenes


def test_the_logistic_probe_finds_a_linear_signal_and_not_noise(probe):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    y = (x[:, 2] - 0.5 * x[:, 4] > 0.8).astype(np.float32)  # rare positives, a direction in feature space
    score = probe.fit_logistic(x[:400], y[:400])
    assert probe.auc(score(x[400:]), y[400:]) > 0.97
    noise = rng.normal(size=(600, 5))
    score = probe.fit_logistic(noise[:400], y[:400])
    assert 0.35 < probe.auc(score(noise[400:]), y[400:]) < 0.65
    with pytest.raises(ValueError, match="both classes"):
        probe.fit_logistic(x[:10], np.zeros(10, np.float32))
    assert probe.auc(np.arange(3.0), np.ones(3, np.float32)) is None


def test_the_pixel_probe_learns_where_a_blob_is(probe):
    rng = np.random.default_rng(1)
    n, size = 240, 16
    frames = torch.zeros((n, 3, size, size))
    y = (rng.random(n) < 0.3).astype(np.float32)
    for i in range(n):  # a bright 3x3 blob on the left half (positives) or the right half
        row = rng.integers(0, size - 3)
        col = rng.integers(0, size // 2 - 3) + (0 if y[i] else size // 2)
        frames[i, :, row : row + 3, col : col + 3] = 1.0
    score = probe.fit_cnn(frames[:160], y[:160], epochs=30, seed=0)
    assert probe.auc(score(frames[160:]), y[160:]) > 0.95


def test_teaching_the_open_decision_makes_p_open_read_what_tells_the_states_apart(probe, tmp_path):
    """Two kinds of held state that differ only in the pose of the prompt: before teaching the tiny policy's
    p_open does not separate them, after 60 steps on the fit half it does on the other half."""
    from vlac_actor.policy import load_policy
    from vlac_actor.value_head import ValueHead
    from vlac_core.model import TinyModelSpec, build_tiny_model
    from vlac_core.types import DeltaAction, EndPose, Observation

    torch.manual_seed(0)
    path = build_tiny_model(tmp_path / "model", TinyModelSpec(seed=0))
    ValueHead(TinyModelSpec().text_hidden, seed=0).save(path)
    rng = np.random.default_rng(2)
    observations, actions, released = [], [], []
    for k in range(48):
        over = k % 3 == 0
        pose = EndPose(x_mm=250.0 if over else -250.0, y_mm=-20.0, z_mm=180.0, roll_deg=170.0, pitch_deg=5.0,
                       yaw_deg=-90.0)  # fmt: skip
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        observations.append(Observation("arm_0", "pick up the bowl", (image,), pose, False, 30.0, (0.0,) * 6, k, k))
        actions.append(Ns(delta=DeltaAction(3, -2, 1, 0, 0, 5, 0)))
        released.append(over)
    data = probe.HeldSteps(
        scenes=[f"s{k}" for k in range(48)],
        released=np.asarray(released, dtype=np.float32),
        p_open=np.zeros(48),
        pose_mm=np.zeros((48, 3), np.float32),
        observations=observations,
        actions=actions,
    )
    fit = np.arange(48) < 24
    policy = load_policy(path)
    _, before = probe.actor_readouts(policy, observations, actions)
    assert probe.auc(before[~fit], data.released[~fit]) < 0.9  # not yet
    probe.teach_open(policy, data, fit, steps=60, lr=3e-3, seed=0, batch=8)
    _, after = probe.actor_readouts(policy, observations, actions)
    assert probe.auc(after[~fit], data.released[~fit]) == 1.0
    with pytest.raises(ValueError, match="both kinds"):
        probe.teach_open(policy, data, fit & (data.released == 0), steps=1, lr=1e-3, seed=0)
