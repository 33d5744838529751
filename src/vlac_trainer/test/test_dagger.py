"""DAgger labels (issue 11, item 4): the expert's action on the states the policy reaches, in the real
simulator, recorded beside what was executed and taught by behaviour cloning instead of it."""

from __future__ import annotations

import numpy as np
import ppo_trainer_helpers as h
import pytest

from piper_driver.sim.backend import SimBackend, SimConfig
from piper_driver.sim.demo_format import iter_episodes, save_episode_npz
from piper_driver.sim.experts import tcp_of
from piper_driver.sim.tasks import make_task
from piper_driver.sim.tasks.sweep_expert import label_target
from vlac_actor.policy import load_policy
from vlac_core.types import DeltaAction
from vlac_trainer.offline.bc_data import bc_samples
from vlac_trainer.offline.critic_rollouts import DAGGER_STEPS_AFTER_DONE, collect
from vlac_trainer.offline.dagger import STAY_CLOSED, STAY_OPEN, PickBowlLabeler, SweepLabeler, make_labeler
from vlac_trainer.offline.train_common import load_expert_records


@pytest.fixture()
def backend():
    sim = SimBackend(make_task("pick_bowl"), SimConfig(image_size_px=32))
    sim.connect()
    yield sim
    sim.disconnect()


def follow_labels(backend, labeler, steps, *, override=None):
    """Execute the labeler's own labels (``override(step, label)`` may replace one); returns labels, successes."""
    labels, successes = [], []
    for step in range(steps):
        done = backend.truth().success
        label = labeler.label(backend.observe(), backend.describe(), done)
        labels.append(label)
        backend.execute(override(step, label) if override else label)
        successes.append(backend.truth().success)
    return labels, successes


def test_the_labels_alone_complete_the_task_like_the_expert(backend):
    backend.reset(4)
    backend.enable()
    labeler = make_labeler("pick_bowl", np.random.default_rng(0))
    labels, successes = follow_labels(backend, labeler, 120)
    assert any(successes)
    first = successes.index(True)
    assert all(label == STAY_OPEN for label in labels[first + 1 :])  # done: stay, gripper open
    assert labeler.replans == 1  # the plan never disagreed with the scene


def test_a_dropped_bowl_is_reached_for_again_and_still_placed(backend):
    backend.reset(4)
    backend.enable()
    labeler = PickBowlLabeler(np.random.default_rng(0))
    dropped = {}

    def drop_once_carrying(step, label):
        if backend.describe()["grasped"] and not dropped and backend.truth().phase == "carry" and step > 25:
            dropped["step"] = step
            return DeltaAction(0, 0, 0, 0, 0, 0, open=1)  # the "policy" lets go mid-carry
        return label

    labels, successes = follow_labels(backend, labeler, 200, override=drop_once_carrying)
    step = dropped["step"]
    assert labels[step].open == 0  # the expert wanted to keep carrying
    after = labels[step + 1 : step + 4]
    assert all(label.open == 1 for label in after)  # it opens to reach for the bowl again
    assert labeler.replans == 2
    assert any(successes[step:])


def test_holding_the_bowl_before_the_plan_expects_it_skips_to_the_place_plan(backend):
    backend.reset(4)
    backend.enable()
    labeler = PickBowlLabeler(np.random.default_rng(0))
    assert labeler.label(backend.observe(), backend.describe(), False).open == 1
    assert labeler._expert.current == "above_bowl"
    # Another controller (a policy faster than the plan) reaches and grasps the bowl meanwhile.
    other = PickBowlLabeler(np.random.default_rng(0))
    for _ in range(80):
        if backend.describe()["grasped"] and backend.truth().phase == "carry":
            break
        backend.execute(other.label(backend.observe(), backend.describe(), False))
    assert backend.describe()["grasped"]
    label = labeler.label(backend.observe(), backend.describe(), False)
    assert label.open == 0  # keep holding: the plan jumped ahead, it does not reach for the bowl again
    assert labeler._expert.current == "carry" and labeler.replans == 2


@pytest.fixture()
def sweep_backend():
    """The sweep at scene seed 3, enabled: the arm at home, the trash and the dustpan placed."""
    sim = SimBackend(make_task("sweep"), SimConfig(image_size_px=32))
    sim.connect()
    sim.reset(3)
    sim.enable()
    yield sim
    sim.disconnect()


def test_the_sweep_labels_alone_push_the_trash_in_like_the_expert(sweep_backend):
    labeler = make_labeler("sweep", np.random.default_rng(0))
    assert isinstance(labeler, SweepLabeler)
    labels, successes = follow_labels(sweep_backend, labeler, 60)
    assert any(successes)
    first = successes.index(True)
    assert all(label == STAY_CLOSED for label in labels[first + 1 :])  # done: stay, gripper closed as it pushed
    assert all(label.open == 0 for label in labels)  # the sweep pushes with the gripper closed throughout


def test_a_sweep_label_depends_on_the_state_only_not_on_what_led_there(sweep_backend):
    running = SweepLabeler(np.random.default_rng(0))
    for _ in range(25):
        state, scene = sweep_backend.observe(), sweep_backend.describe()
        label = running.label(state, scene, False)
        assert SweepLabeler(np.random.default_rng(1)).label(state, scene, False) == label  # a fresh labeler agrees
        sweep_backend.execute(label)


def test_a_pusher_lifted_off_the_trash_is_labelled_back_behind_it_and_still_pushes_it_in(sweep_backend):
    labeler = SweepLabeler(np.random.default_rng(0))
    lifted = {}

    def lift_mid_push(step, label):
        tcp_z_m = tcp_of(sweep_backend.observe().end_pose.as_array())[2]
        if not lifted and sweep_backend.truth().phase == "push" and tcp_z_m < 0.02:  # low at the trash: pushing
            lifted["step"] = step
        if lifted and step < lifted["step"] + 3:
            return DeltaAction(0, 0, 20, 0, 0, 0, open=0)  # the "policy" lifts off the trash, 60 mm up
        if lifted and step == lifted["step"] + 3:
            pose = sweep_backend.observe().end_pose.as_array()
            lifted["target_z_m"] = tcp_of(label_target(sweep_backend.describe(), pose))[2]
        return label

    _, successes = follow_labels(sweep_backend, labeler, 120, override=lift_mid_push)
    step = lifted["step"]
    assert not any(successes[: step + 3])
    assert lifted["target_z_m"] == pytest.approx(0.07)  # lifted off: back to the hover point behind it, not down
    assert any(successes[step + 3 :])


def test_unknown_task_has_no_labeler():
    with pytest.raises(ValueError, match="no state labeler for task 'stack'"):
        make_labeler("stack", np.random.default_rng(0))
    with pytest.raises(ValueError, match="no state labeler"):
        collect("stack", [("dagger", 0)], policy=object())
    with pytest.raises(ValueError, match="expert_share"):
        collect("pick_bowl", [("dagger", 0)], policy=object(), expert_share=1.5)


@pytest.fixture(scope="module")
def dagger_records(tmp_path_factory):
    """Two DAgger episodes of a tiny untrained policy, one executing every label (expert_share 1)."""
    policy = load_policy(h.build_policy_dir(tmp_path_factory.mktemp("dagger_policy")), device="cpu", dtype="fp32")
    root = tmp_path_factory.mktemp("dagger")
    mixed = collect("pick_bowl", [("dagger", 7)], policy=policy, max_steps=6, image_size_px=32, parallel=1)
    expert = collect(
        "pick_bowl", [("dagger", 4)], policy=policy, max_steps=150, image_size_px=32, parallel=1, expert_share=1.0
    )
    for record in mixed + expert:
        save_episode_npz(root / "npz" / f"{record.task}_dagger_s{record.seed}.npz", record)
    return mixed[0], expert[0], root


def test_dagger_episodes_record_the_labels_beside_what_was_executed(dagger_records):
    mixed, expert, _ = dagger_records
    assert mixed.length == 6 and len(mixed.meta["expert_labels"]) == 6
    assert mixed.meta["controller"] == ["policy"] * 6  # expert_share 0: the policy moved the arm
    assert isinstance(mixed.meta["safety_clamps"], dict)  # through the safety envelope, clamps counted
    assert expert.meta["controller"] == ["expert"] * expert.length
    assert np.array_equal(np.array(expert.meta["expert_labels"]), expert.actions)  # executed = labels
    first = int(np.argmax(expert.success_steps))
    assert expert.success_steps.any() and expert.length == first + DAGGER_STEPS_AFTER_DONE - 1


def test_behaviour_cloning_teaches_the_labels_not_the_executed_actions(dagger_records):
    mixed, _, root = dagger_records
    samples = bc_samples(mixed)
    taught = [s.action.as_tuple() for s in samples]
    assert taught == [tuple(label) for label in mixed.meta["expert_labels"]]
    assert taught != [tuple(int(v) for v in a) for a in mixed.actions]
    loaded = load_expert_records([str(root)])
    assert sorted(r.seed for r in loaded) == [4, 7]  # DAgger episodes are kept whatever their outcome
    short = next(iter_episodes(root))
    short.meta["expert_labels"] = short.meta["expert_labels"][:-1]
    with pytest.raises(ValueError, match="expert labels for"):
        bc_samples(short)
