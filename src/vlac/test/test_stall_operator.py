"""Human-guided explore in simulation, the operator who steps in when the policy stalls: no takeover while the
ground-truth progress rises, a takeover after ``stall_steps`` steps without, and the expert finishing the task
from wherever the policy left the scene."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from piper_driver.sim.arm import SimArm
from piper_driver.sim.backend import SimConfig
from vlac.session.demos import STALL_KEY, ScriptedOperator
from vlac_core.types import DeltaAction, TaskTruth

STILL = DeltaAction(0, 0, 0, 0, 0, 0, 1)


@pytest.mark.parametrize("task", ["pick_bowl", "sweep"])
def test_a_stalled_episode_is_taken_over_and_the_expert_finishes_the_task(task):
    arm = SimArm("arm_0", task, SimConfig(image_size_px=48), None, first_seed=0)
    try:
        operator = ScriptedOperator({"arm_0": arm}, task, takeover_after_steps=5, stall_steps=3)
        operator.begin_episode("arm_0", take_over=False, seed=1)
        arm.reset(None)
        taken = []
        for _ in range(150):
            observation = arm.observe()
            if operator.end_requested("arm_0"):
                break
            action = operator.teleop_action("arm_0", observation)
            taken.append(action is not None)
            arm.execute(action or STILL)  # the "policy" holds still: no progress
        # the first call sets the best potential; 3 more without a rise and the operator steps in for good
        assert taken[:3] == [False] * 3 and all(taken[3:])
        assert operator.end_requested("arm_0") and arm.ground_truth_success()
    finally:
        arm.close()


def _rising_arm(potentials, phases=None):
    values = iter(potentials)
    phase = iter(phases) if phases is not None else iter(lambda: "reach", None)
    return SimpleNamespace(truth=lambda: TaskTruth(next(values), False, next(phase)))


def test_no_takeover_while_progress_rises_by_the_minimum_gain_or_when_not_watching():
    arm = _rising_arm(np.arange(0.0, 0.5, 0.02))  # 0.02 a step: above the 0.01 that counts as progress
    operator = ScriptedOperator({"arm_0": arm}, "pick_bowl", takeover_after_steps=5, stall_steps=2)
    operator.begin_episode("arm_0", take_over=False, seed=0)
    assert all(operator.teleop_action("arm_0", None) is None for _ in range(25))
    jitter = _rising_arm([0.3, 0.305, 0.309, 0.3095] * 2)  # rises under 0.01 are no progress
    jitter.backend = SimpleNamespace(success=lambda: True)  # taken over in a done scene: hold and end
    operator = ScriptedOperator({"arm_0": jitter}, "pick_bowl", takeover_after_steps=5, stall_steps=3)
    operator.begin_episode("arm_0", take_over=False, seed=0, watch=False)  # an evaluation: nobody steps in
    assert all(operator.teleop_action("arm_0", None) is None for _ in range(4))
    operator.begin_episode("arm_0", take_over=False, seed=0)
    closed = SimpleNamespace(gripper_open=False)
    assert [operator.teleop_action("arm_0", closed) for _ in range(4)] == [
        None,
        None,
        None,
        DeltaAction(0, 0, 0, 0, 0, 0, 0),
    ]
    assert operator.end_requested("arm_0")


def test_with_stall_phases_only_steps_in_those_phases_count():
    # stuck mid-carry for 5 steps (not watched), then held over the plate: the 3rd still step there is a stall
    arm = _rising_arm([0.5] * 9, ["carry"] * 6 + ["release"] * 3)
    arm.backend = SimpleNamespace(success=lambda: True)
    operator = ScriptedOperator({"arm_0": arm}, "pick_bowl", 5, stall_steps=3, stall_phases=("release",))
    operator.begin_episode("arm_0", take_over=False, seed=0)
    still = SimpleNamespace(gripper_open=False)
    taken = [operator.teleop_action("arm_0", still) is not None for _ in range(9)]
    assert taken == [False] * 8 + [True]
    with pytest.raises(ValueError, match=r"guided_explore_stall_phases: hover not phases of 'pick_bowl'"):
        ScriptedOperator({}, "pick_bowl", 5, stall_steps=3, stall_phases=("release", "hover"))


def test_a_task_without_a_state_labeler_is_refused_naming_the_key():
    with pytest.raises(ValueError, match=rf"{STALL_KEY}=4: dagger: no state labeler for task 'stack'"):
        ScriptedOperator({}, "stack", takeover_after_steps=5, stall_steps=4)
    ScriptedOperator({}, "sweep", takeover_after_steps=5, stall_steps=4)  # the sweep has one (SweepLabeler)
