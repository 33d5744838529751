"""The simulated PiPER's kinematics agree with piper_sdk's, and the IK lands where it is asked to."""

from __future__ import annotations

import math

import numpy as np
import pytest

from piper_driver.sim.ik import solve_ik
from piper_driver.sim.kinematics import (
    JOINT_LIMITS_RAD,
    euler_deg_to_matrix,
    flange_transform,
    forward_kinematics,
    matrix_to_euler_deg,
)


def _random_joints(rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(lo, hi) for lo, hi in JOINT_LIMITS_RAD])


def test_forward_kinematics_matches_piper_sdk():
    piper_fk = pytest.importorskip("piper_sdk.kinematics.piper_fk", reason="piper_sdk provides the reference FK")
    reference = piper_fk.C_PiperForwardKinematics()
    rng = np.random.default_rng(3)
    for joints in [np.zeros(6), *(_random_joints(rng) for _ in range(6))]:
        ours = forward_kinematics(joints)
        theirs = np.array(reference.CalFK(list(joints))[-1])
        np.testing.assert_allclose(ours[:3], theirs[:3], atol=1e-6)
        np.testing.assert_allclose(ours[3:], theirs[3:], atol=1e-6)


def test_zero_joints_give_the_sdks_rest_pose():
    np.testing.assert_allclose(forward_kinematics(np.zeros(6)), [56.128, 0.0, 213.266, 0.0, 85.0, 0.0], atol=1e-3)


def test_mujoco_link6_frame_is_the_dh_flange():
    mujoco = pytest.importorskip("mujoco")
    from piper_driver.sim.model import TaskXml, build_model

    model = build_model(TaskXml())
    data = mujoco.MjData(model)
    link6 = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "link6")
    rng = np.random.default_rng(5)
    for _ in range(4):
        joints = _random_joints(rng)
        data.qpos[:6] = joints
        mujoco.mj_kinematics(model, data)
        expected = flange_transform(joints)
        np.testing.assert_allclose(data.xpos[link6] * 1000.0, expected[:3, 3], atol=0.01)
        np.testing.assert_allclose(data.xmat[link6].reshape(3, 3), expected[:3, :3], atol=1e-5)


def test_euler_round_trip_uses_zyx():
    rotation = euler_deg_to_matrix(30.0, -20.0, 110.0)
    np.testing.assert_allclose(matrix_to_euler_deg(rotation), (30.0, -20.0, 110.0), atol=1e-9)
    # Yaw is applied last (about the base z axis): a pure yaw turns x toward y.
    np.testing.assert_allclose(euler_deg_to_matrix(0, 0, 90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_ik_reaches_poses_of_reachable_joint_configurations():
    rng = np.random.default_rng(11)
    reached = 0
    for _ in range(8):
        joints = np.array([rng.uniform(lo * 0.6, hi * 0.6) for lo, hi in JOINT_LIMITS_RAD])
        joints[1] = rng.uniform(0.6, 2.0)
        joints[2] = rng.uniform(-2.0, -0.6)
        target = forward_kinematics(joints)
        seed = joints + rng.normal(0, 0.08, size=6)
        result = solve_ik(target, seed, max_iterations=100)
        assert all(lo - 1e-9 <= q <= hi + 1e-9 for q, (lo, hi) in zip(result.joints_rad, JOINT_LIMITS_RAD, strict=True))
        if result.converged:
            reached += 1
            achieved = forward_kinematics(result.joints_rad)
            assert np.linalg.norm(achieved[:3] - target[:3]) < 0.5
    assert reached >= 7


def test_ik_of_an_unreachable_target_stays_in_limits_and_says_so():
    result = solve_ik(np.array([900.0, 0.0, 200.0, 180.0, 0.0, 180.0]), np.array([0, 1.4, -1.2, 0, 1.0, 0]))
    assert not result.converged
    assert result.position_error_mm > 100
    assert all(lo - 1e-9 <= q <= hi + 1e-9 for q, (lo, hi) in zip(result.joints_rad, JOINT_LIMITS_RAD, strict=True))


def test_ik_rejects_non_finite_targets():
    with pytest.raises(ValueError, match="target_pose"):
        solve_ik(np.array([math.nan, 0, 200, 180, 0, 180]), np.zeros(6))
