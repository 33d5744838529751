"""sweep_expert.label_target: the sweep expert's next target as a function of the state alone (DAgger's labels).

A synthetic scene: the trash at (300, 0) mm, the dustpan ahead along +x, so the push goes along +x, its contact
point 28 mm behind the trash centre (272, 0) and the approach point 30 mm further back (242, 0)."""

from __future__ import annotations

import numpy as np
import pytest

from piper_driver.sim import tasks  # noqa: F401 (experts import cleanly only after tasks)
from piper_driver.sim.experts import step_toward, tcp_of, top_down_pose
from piper_driver.sim.tasks.sweep_expert import LOW_TCP_M, PUSH_REACH_M, PUSH_TCP_Z_M, label_target

SCENE = {
    "trash_m": np.array([0.3, 0.0, 0.012]),
    "bin_m": np.array([0.5, 0.0, 0.0]),
    "bin_dir": np.array([1.0, 0.0]),
    "trash_in_bin_m": np.array([-0.2, 0.0, 0.012]),
}
HOVER_Z_M = 0.07


def target_tcp_mm(tcp_m, yaw_deg=0.0):
    pose = top_down_pose(np.array(tcp_m), yaw_deg)
    return np.round(1000 * tcp_of(label_target(SCENE, pose)), 3)


def test_in_pushing_position_the_label_pushes_ahead_of_the_contact_point():
    assert target_tcp_mm([0.26, 0.0, 0.012]) == pytest.approx([292, 0, 12])  # 20 mm ahead of the contact
    assert target_tcp_mm([0.242, 0.005, 0.012]) == pytest.approx([292, 0, 12])  # at the approach point: 30 mm
    # Off the push line by 7 mm or more: back off 10 mm behind the contact to realign, at pushing height.
    assert target_tcp_mm([0.262, 0.02, 0.012]) == pytest.approx([262, 0, 12])


def test_the_push_keeps_the_yaw_it_has():
    pose = top_down_pose(np.array([0.26, 0.0, 0.012]), 17.0)
    assert label_target(SCENE, pose)[5] == pytest.approx(17.0)


def test_low_behind_the_trash_goes_to_the_approach_point_without_lifting():
    far_behind = [0.2, 0.05, 0.012]  # 88 mm from the contact point: out of pushing position
    assert np.hypot(0.2 - 0.272, 0.05) > PUSH_REACH_M
    assert target_tcp_mm(far_behind) == pytest.approx([242, 0, 1000 * PUSH_TCP_Z_M])


def test_low_in_front_of_or_beside_the_trash_goes_up_to_the_hover_point():
    for tcp in ([0.35, 0.0, 0.012], [0.3, 0.06, 0.012]):  # between the trash and the dustpan; beside it
        assert target_tcp_mm(tcp) == pytest.approx([242, 0, 1000 * HOVER_Z_M])


def test_high_it_goes_over_the_approach_point_and_lowers_only_there():
    assert target_tcp_mm([0.15, 0.1, 0.09]) == pytest.approx([242, 0, 1000 * HOVER_Z_M])
    assert target_tcp_mm([0.242, 0.005, 0.07]) == pytest.approx([242, 0, 1000 * PUSH_TCP_Z_M])  # within 10 mm
    # Just above pushing height near the contact point is not pushing position: lower first (over the approach).
    assert target_tcp_mm([0.245, 0.0, LOW_TCP_M + 0.01]) == pytest.approx([242, 0, 1000 * PUSH_TCP_Z_M])


def test_step_toward_moves_one_expert_step_and_rounds_to_the_template():
    pose = np.array([100.0, 0.0, 200.0, 180.0, 0.0, 0.0])
    action = step_toward(pose, np.array([200.0, 0.0, 200.0, 180.0, 0.0, 25.4]), open_=0)
    assert action.as_tuple() == (25, 0, 0, 0, 0, 10, 0)  # 25 mm and 10 deg at most per step
    near = step_toward(pose, np.array([103.4, -2.6, 200.0, -179.0, 0.0, 0.0]), open_=1)
    assert near.as_tuple() == (3, -3, 0, 1, 0, 0, 1)  # the roll wraps across 180 deg
