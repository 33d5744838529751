"""Simulated tasks: experts succeed, failure variants fail, seeds are deterministic, variations vary."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="the simulated tasks need MuJoCo")

from piper_driver.robot import MotionRefused
from piper_driver.safety import SafetyConfig
from piper_driver.sim.arm import SimArm
from piper_driver.sim.backend import SimBackend, SimConfig
from piper_driver.sim.experts import FAILURE_VARIANTS
from piper_driver.sim.rollout import rollout
from piper_driver.sim.tasks import TASKS, make_expert, make_task, pick_bowl, pick_bowl_expert, plan_for
from piper_driver.sim.variation import SceneVariation, VariationSwitches

TASK_NAMES = sorted(TASKS)


def _arm(task: str, safety: SafetyConfig | None = None) -> SimArm:
    return SimArm("sim_0", task, SimConfig(image_size_px=48), safety, first_seed=0)


@pytest.fixture(scope="module")
def arms() -> dict[str, SimArm]:
    return {name: _arm(name) for name in TASK_NAMES}


@pytest.fixture(scope="module")
def backends(arms) -> dict[str, SimBackend]:
    return {name: arm.backend for name, arm in arms.items()}


def _run(arm, variant, seed, noise_mm=1.0, render=False):
    expert = make_expert(arm.task, variant, np.random.default_rng([seed, 7]), noise_mm=noise_mm, noise_deg=0.5)
    return rollout(arm, expert, seed=seed, variant=variant, render=render, max_steps=150)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_succeeds_on_a_few_seeds(arms, task):
    for seed in (0, 1, 2):
        record = _run(arms[task], "expert", seed)
        assert record.success, f"{task} seed {seed}: expert failed (last waypoint {record.meta['last_waypoint']})"
        assert not record.success_steps[0], "the task must not start solved"
        actions = record.actions
        assert np.all(np.abs(actions[:, :3]) <= 30) and np.all(np.abs(actions[:, 3:6]) <= 15)


def _closed_steps_before_the_lift(record) -> int:
    """Actions with the gripper closed before the first that lifts (the expert's pause on the rim)."""
    lift = int(np.argmax(record.actions[:, 2] >= 10))
    return int(np.sum(record.actions[:lift, 6] == 0))


def test_grasp_hold_steps_sets_the_pause_closed_on_the_rim_before_the_lift(arms):
    """The default expert closes and stays 3 steps; with a hold of 1 it closes and lifts on the next step.
    Both succeed: the simulated gripper shuts within one step."""
    arm = arms["pick_bowl"]
    for hold, closed in [(None, pick_bowl_expert.GRASP_HOLD_STEPS), (1, 1)]:
        expert = make_expert("pick_bowl", "expert", np.random.default_rng([4, 7]), noise_mm=1.0, grasp_hold_steps=hold)
        record = rollout(arm, expert, seed=4, render=False, max_steps=150)
        assert record.success, f"hold {hold}: the expert failed"
        assert _closed_steps_before_the_lift(record) == closed
    assert pick_bowl_expert.GRASP_HOLD_STEPS == 3  # the shipped demos' pause


def test_grasp_hold_steps_is_refused_for_a_task_without_a_grasp_or_out_of_range():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="task 'sweep' has no grasp"):
        make_expert("sweep", "expert", rng, grasp_hold_steps=1)
    for bad in (0, 11, 1.5, True):
        with pytest.raises(ValueError, match=r"grasp_hold_steps: expected an integer 1\.\.10"):
            make_expert("pick_bowl", "expert", rng, grasp_hold_steps=bad)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_rollout_records_where_the_moved_object_is_at_every_observation(arms, task):
    record = _run(arms[task], "expert", seed=2)
    objects = np.asarray(record.meta["object_mm"])
    assert objects.shape == (record.length + 1, 3)
    arms[task].reset_to_seed(2, image=False)
    start = arms[task].backend.describe()[make_task(task).object_key] * 1000.0
    assert objects[0] == pytest.approx(start, abs=0.01)
    assert np.linalg.norm(objects[-1, :2] - objects[0, :2]) > 50.0  # carried or pushed to its goal


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_actions_pass_the_safety_envelope(arms, task):
    """The rollout moves the session's simulated arm, so its safety envelope applies: limits apply, counted."""
    assert _run(arms[task], "expert", seed=3).meta["safety_clamps"] == {}  # the defaults never clamp an expert
    expert = make_expert(task, "expert", np.random.default_rng([3, 7]))
    record = rollout(_arm(task, SafetyConfig(max_step_mm=5.0)), expert, seed=3, max_steps=6, render=False)
    assert record.meta["safety_clamps"].get("step_translation", 0) >= 1
    moved = np.linalg.norm(np.diff(record.end_poses[:, :3], axis=0), axis=1)
    assert moved.max() < 5.0 + 1.0  # the clamped target (IK and settling tolerance aside), not the expert's step
    still = SafetyConfig(workspace_min_mm=(0.0, -400.0, 500.0))  # the arm starts below this box: moves are refused
    with pytest.raises(MotionRefused):
        rollout(_arm(task, still), make_expert(task, "expert", np.random.default_rng(0)), seed=3, render=False)


@pytest.mark.parametrize("task", TASK_NAMES)
@pytest.mark.parametrize("variant", FAILURE_VARIANTS)
def test_failure_variants_fail_the_success_check(arms, task, variant):
    record = _run(arms[task], variant, seed=4)
    assert not record.success
    if variant == "undo":
        assert record.success_steps.any(), "undo must reach success before reversing it"


@pytest.mark.parametrize("task", TASK_NAMES)
def test_same_seed_same_episode_other_seed_other_scene(arms, task):
    backend = arms[task].backend
    first = _run(arms[task], "expert", seed=5, noise_mm=2.0, render=True)
    second = _run(arms[task], "expert", seed=5, noise_mm=2.0, render=True)
    np.testing.assert_array_equal(first.actions, second.actions)
    np.testing.assert_array_equal(first.end_poses, second.end_poses)
    np.testing.assert_array_equal(first.front_images, second.front_images)
    backend.reset(5)
    scene_5 = {k: v for k, v in backend.describe().items() if isinstance(v, np.ndarray)}
    backend.reset(6)
    scene_6 = {k: v for k, v in backend.describe().items() if isinstance(v, np.ndarray)}
    assert any(not np.allclose(scene_5[k], scene_6[k]) for k in scene_5)


def test_success_is_ground_truth_of_the_scene_not_of_the_arm(backends):
    backend = backends["pick_bowl"]
    backend.reset(0)
    assert not backend.success()
    scene = backend.describe()
    import mujoco

    joint = mujoco.mj_name2id(backend.model, mujoco.mjtObj.mjOBJ_JOINT, "bowl_joint")
    adr = backend.model.jnt_qposadr[joint]
    backend.data.qpos[adr : adr + 3] = scene["plate_m"] + np.array([0.0, 0.0, 0.008])
    backend.advance(0.4)  # let it settle on the plate
    assert backend.success()


def test_variation_switches_change_the_picture_and_none_changes_nothing():
    canonical = SimBackend(make_task("sweep"), SimConfig(image_size_px=48))
    canonical.connect()
    varied = SimBackend(make_task("sweep"), SimConfig(image_size_px=48, variation=VariationSwitches.parse("all")))
    varied.connect()
    canonical.reset(3)
    varied.reset(3)
    assert canonical.variation == SceneVariation()
    assert varied.variation != SceneVariation()
    # Same seed: same object layout, different looks.
    np.testing.assert_array_equal(canonical.describe()["trash_m"], varied.describe()["trash_m"])
    assert np.abs(canonical.render().astype(int) - varied.render().astype(int)).mean() > 3


def test_only_the_requested_aspect_varies():
    rng = np.random.default_rng(0)
    lighting_only = SceneVariation.sample(rng, VariationSwitches(lighting=True))
    assert lighting_only.table_material == 0 and lighting_only.camera_offset_m == (0.0, 0.0, 0.0)
    assert lighting_only.light_diffuse != SceneVariation().light_diffuse


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="pick_bowl"):
        make_task("fold_towel")
    with pytest.raises(ValueError, match="stall"):
        make_expert("sweep", "teleport", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown variant 'teleport'"):  # the plan alone checks it too
        plan_for("pick_bowl", "teleport")
    with pytest.raises(ValueError, match="unknown task 'fold_towel'; known: pick_bowl, sweep"):
        make_expert("fold_towel", "expert", np.random.default_rng(0))
    with pytest.raises(ValueError, match="lighting"):
        VariationSwitches.parse("lighting,fog")


def _expert_trace(backend, seed):
    """(ground truth, privileged scene) after reset and after every step of the noise-free expert."""
    expert = make_expert(backend.task.name, "expert", np.random.default_rng([seed, 7]))
    backend.reset(seed)
    backend.enable()
    trace = [(backend.truth(), backend.describe())]
    for _ in range(150):
        action = expert.act(backend.observe(), trace[-1][1])
        if action is None:
            break
        backend.execute(action)
        trace.append((backend.truth(), backend.describe()))
    return trace


def _expert_truths(backend, seed):
    """Ground truth after reset and after every step of the noise-free expert."""
    return [truth for truth, _ in _expert_trace(backend, seed)]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_climbs_the_task_phase_potential_to_one_at_success(backends, task):
    """The potential is ground truth of progress: the expert starts low, ends at 1.0 exactly where success
    holds, passes through the task's phases in their declared order."""
    backend = backends[task]
    truths = _expert_truths(backend, seed=3)
    assert truths[-1].success and truths[-1].potential == 1.0 and truths[-1].phase == "done"
    assert not truths[0].success and truths[0].potential < 0.5 and truths[0].phase == "reach"
    assert all(t.phase in backend.task.phases for t in truths)
    assert all((t.potential == 1.0) == t.success for t in truths)
    order = [backend.task.phases.index(t.phase) for t in truths]
    assert order[-1] == max(order) and len(set(order)) >= 2


def test_pick_bowl_release_phase_is_over_the_plate_and_low_enough_to_let_go(backends):
    """The expert arrives over the plate at its carry height, then lowers: the phase says "release" only once
    the bowl is low enough that opening places it (bench/release_height.py), not wherever it is centred."""
    held_centred = []  # (bowl base above the plate top, phase, potential) while held within the success radius
    for truth, scene in _expert_trace(backends["pick_bowl"], seed=1):
        to_plate_m = np.hypot(*(scene["bowl_m"][:2] - scene["plate_m"][:2]))
        if scene["grasped"] and to_plate_m <= pick_bowl.SUCCESS_RADIUS_M:
            held_centred.append((scene["bowl_m"][2] - pick_bowl.PLATE_TOP_M, truth.phase, truth.potential))
    assert {phase for _, phase, _ in held_centred} == {"carry", "release"}  # high first, then low
    for drop_m, phase, _ in held_centred:
        assert (phase == "release") == (drop_m <= pick_bowl.RELEASE_MAX_DROP_M), (drop_m, phase)
    # Coming down pays (LOWER_GAIN), under what letting go earns.
    highest, lowest = max(held_centred), min(held_centred)
    assert lowest[0] < highest[0] - 0.02 and lowest[2] > highest[2] + 0.01
    assert max(p for _, _, p in held_centred) < pick_bowl.PLACED_POTENTIAL


def test_pick_bowl_potential_pays_grasp_carry_and_release(backends):
    truths = _expert_truths(backends["pick_bowl"], seed=1)
    seen = [t.phase for t in truths]
    assert {"reach", "carry", "release", "done"} <= set(seen)
    carry = [t.potential for t in truths if t.phase in ("carry", "release")]
    assert carry[-1] > carry[0] and min(carry) >= 0.25 and max(carry) <= 0.75 + pick_bowl.LOWER_GAIN
    # Letting go over the plate is the largest single gain: the step a critic must not punish.
    gains = np.diff([t.potential for t in truths])
    assert seen[int(np.argmax(gains)) + 1] in ("placed", "done")


@pytest.mark.parametrize(("offset_mm", "succeeds"), [(20.0, True), (50.0, False)])
def test_a_bowl_set_down_off_centre_succeeds_only_inside_the_success_radius(arms, offset_mm, succeeds):
    """The near-miss the critic must tell apart: at 50 mm the bowl rests wholly on the plate, yet the task fails."""
    from piper_driver.sim.experts import ScriptedExpert

    arm = arms["pick_bowl"]
    arm.reset_to_seed(6, image=False)
    plate_mm = np.asarray(arm.backend.goal_mm())[:2]
    assert plate_mm == pytest.approx(arm.backend.describe()["plate_m"][:2] * 1000.0)
    plan = pick_bowl_expert.place_off_centre_plan((0.0, -offset_mm / 1000.0))
    record = rollout(arm, ScriptedExpert(plan, np.random.default_rng(6)), seed=6, render=False, max_steps=150)
    bowl_mm = np.asarray(record.meta["object_mm"])[-1]
    assert np.linalg.norm(bowl_mm[:2] - plate_mm) == pytest.approx(offset_mm, abs=6.0)
    assert bowl_mm[2] == pytest.approx(pick_bowl.PLATE_TOP_M * 1000.0, abs=3.0)  # set down on the plate
    assert record.success == succeeds


def test_an_off_centre_set_down_beyond_the_plate_is_refused():
    with pytest.raises(ValueError, match="offset_m: expected a finite"):
        pick_bowl_expert.place_off_centre_plan((0.1, 0.0))
    with pytest.raises(ValueError, match="offset_m: expected a finite"):
        pick_bowl_expert.place_off_centre_plan((float("nan"), 0.0))
