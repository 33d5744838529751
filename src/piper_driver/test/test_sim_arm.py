"""The one simulated arm (the episode loop's robot, the arm node's sim backend, the rollouts' arm):
start states by one id scheme, kept and shared, the rewind guard of its own clock, the envelope."""

from __future__ import annotations

import numpy as np
import pytest

from piper_driver.robot import MotionRefused
from piper_driver.safety import SafetyConfig
from piper_driver.sim.arm import SimArm, SnapshotStore, parse_seed_start_state_id, seed_start_state
from piper_driver.sim.backend import SimConfig
from piper_driver.sim.scene_seeds import SceneSeeds
from vlac_core.types import DeltaAction, StartState, StartStateGone


@pytest.fixture(scope="module")
def store():
    return SnapshotStore()


@pytest.fixture(scope="module")
def arm(store):
    sim = SimArm("arm_0", "pick_bowl", SimConfig(image_size_px=64), SafetyConfig(), first_seed=3, snapshots=store)
    yield sim
    sim.close()


def test_returns_exactly_to_a_kept_start_state_and_its_clock_never_goes_back(arm):
    start = arm.reset(None)
    assert start.state_id == seed_start_state("pick_bowl", 3).state_id == "pick_bowl-seed3"
    assert start.params == {"task": "pick_bowl", "seed": 3} and start.image.shape == (64, 64, 3)
    first = arm.observe()
    arm.execute(DeltaAction(10, 0, -10, 0, 0, 0, 1))
    moved = arm.observe()
    assert moved.stamp_s > first.stamp_s and not np.array_equal(moved.images[0], first.images[0])
    assert arm.reset(None).state_id == "pick_bowl-seed4"  # the next seed
    again = arm.reset(StartState(start.state_id, start.params))  # restore_state of the kept snapshot
    back = arm.observe()
    assert again.state_id == start.state_id and np.array_equal(back.images[0], first.images[0])
    assert back.stamp_s > moved.stamp_s  # the rewind guard: the envelope's rate limit never sees time go back
    arm.execute(DeltaAction(0, 0, 5, 0, 0, 0, 1))  # accepted right after the reset
    assert arm.ground_truth_success() is False and arm.truth().potential < 1.0


def test_another_arm_sharing_the_store_returns_to_the_same_scene(arm, store):
    kept = arm.reset_to_seed(11)
    other = SimArm("arm_1", "pick_bowl", SimConfig(image_size_px=64), SafetyConfig(), first_seed=0, snapshots=store)
    try:
        other.reset(StartState(kept.state_id))  # no params: the kept snapshot is enough
        np.testing.assert_array_equal(other.observe().images[0], kept.image)
    finally:
        other.close()


def test_fresh_starts_cycle_over_the_arms_scene_pool_and_a_first_seed_outside_it_is_refused():
    pool = SceneSeeds(20, pool_size=2)
    sim = SimArm("arm_0", "pick_bowl", SimConfig(image_size_px=32), None, first_seed=21, scenes=pool)
    try:
        drawn = [sim.reset(None).state_id for _ in range(3)]
        assert drawn == ["pick_bowl-seed21", "pick_bowl-seed20", "pick_bowl-seed21"]
    finally:
        sim.close()
    with pytest.raises(ValueError, match="scene seed 22 is outside the pool of 2 scenes from seed 20"):
        SimArm("arm_0", "pick_bowl", SimConfig(image_size_px=32), None, first_seed=22, scenes=pool)


def test_an_evicted_start_state_is_rebuilt_from_the_seed_its_id_names():
    sim = SimArm("arm_0", "sweep", SimConfig(image_size_px=48), None, first_seed=0, snapshots=SnapshotStore(1))
    try:
        kept = sim.reset_to_seed(5)
        sim.reset_to_seed(6)  # evicts sweep-seed5 (store of one)
        assert sim.snapshots.get("sweep-seed5") is None
        sim.reset(StartState("sweep-seed5"))
        np.testing.assert_array_equal(sim.observe().images[0], kept.image)
        with pytest.raises(ValueError, match=r"'pick_bowl-seed5'.*seed"):
            sim.reset(StartState("pick_bowl-seed5"))  # another task's id names no seed of this one
    finally:
        sim.close()


def test_a_seed_start_states_id_parses_back_and_no_other_id_does():
    assert parse_seed_start_state_id(seed_start_state("pick_bowl", 1042).state_id) == ("pick_bowl", 1042)
    for other in ("pick_bowl-seed0/ep/step3", "pick_bowl-seed", "pick_bowl-seedx", "-seed3", "", None):
        assert parse_seed_start_state_id(other) is None, other


def test_a_mid_episode_snapshot_comes_back_exactly_and_is_gone_once_evicted():
    """Return-and-explore to a frontier: the state after some steps (motion in progress, the task's own
    state) is set up again exactly; evicted, it has no seed to rebuild it from and says so."""
    sim = SimArm("arm_0", "pick_bowl", SimConfig(image_size_px=48), None, first_seed=0, snapshots=SnapshotStore(2))
    try:
        sim.reset(None)
        for _ in range(3):
            sim.observe()
            sim.execute(DeltaAction(10, -5, -10, 0, 0, 0, 0))
        here = sim.observe()
        frontier = sim.keep_snapshot(sim.snapshot(), "pick_bowl-seed0/ep/step3", here.images[0])
        assert frontier.params == {"task": "pick_bowl", "frontier_of": 0} and frontier.image is here.images[0]
        sim.execute(DeltaAction(0, 20, 20, 0, 0, 0, 1))
        sim.observe()
        sim.execute(DeltaAction(0, 0, 0, 0, 0, 0, 1))
        assert sim.reset(frontier) is frontier
        back = sim.observe()
        np.testing.assert_array_equal(back.images[0], here.images[0])
        assert (back.end_pose, back.gripper_mm) == (here.end_pose, here.gripper_mm)
        sim.execute(DeltaAction(0, 0, 5, 0, 0, 0, 0))  # the arm accepts actions at once after the return
        sim.reset_to_seed(1)
        sim.reset_to_seed(2)  # a store of two: the frontier is evicted
        with pytest.raises(StartStateGone, match=r"pick_bowl-seed0/ep/step3.*cannot be rebuilt"):
            sim.reset(StartState(frontier.state_id, frontier.params))
    finally:
        sim.close()


def test_every_action_passes_the_envelope():
    still = SafetyConfig(workspace_min_mm=(0.0, -400.0, 500.0))  # the arm starts below this box
    sim = SimArm("arm_0", "sweep", SimConfig(image_size_px=48), still, first_seed=0)
    try:
        sim.observe()
        with pytest.raises(MotionRefused, match="safety envelope"):
            sim.execute(DeltaAction(0, 0, -5, 0, 0, 0, 1))
        assert sum(v for k, v in sim.safe_arm.status().counters.items() if k.startswith("safety.rejected.")) == 1
    finally:
        sim.close()
