"""Episode contract, pose math and plan timing."""

from __future__ import annotations

import numpy as np
import pytest

from sim.control.plan import Plan, Waypoint, min_jerk, plan_targets
from sim.episode import Episode, EpisodeMeta
from sim.errors import SchemaError
from sim.transforms import (
    mat_to_pose,
    pose_inv,
    pose_mul,
    pose_to_mat,
    quat_angle,
    quat_normalize,
    slerp,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
    yaw_quat,
)


def _episode(T: int = 5) -> Episode:
    rng = np.random.default_rng(0)
    pose = np.tile([0.1, 0.2, 0.3, 1.0, 0.0, 0.0, 0.0], (T, 1))
    return Episode(
        meta=EpisodeMeta(task="t", robot="r", fps=10, source="unit"),
        time=np.arange(T) / 10,
        joint_names=["a", "b"],
        qpos=rng.normal(size=(T, 2)),
        action_names=["a", "b", "g"],
        action=rng.normal(size=(T, 3)),
        ee={"right": pose},
        gripper={"right": np.ones(T)},
        objects={"box": pose.copy()},
        subtasks={"grasped": np.zeros(T, bool)},
    )


def test_validate_accepts_good_episode_and_names_bad_fields():
    _episode().validate()
    ep = _episode()
    ep.action[3, 1] = np.nan
    with pytest.raises(SchemaError, match=r"unit: 'action' has NaN/inf \(first at step 3\)"):
        ep.validate()
    ep = _episode()
    ep.qpos = ep.qpos[:, :1]
    with pytest.raises(SchemaError, match=r"'qpos' must have shape \(5, 2\), got \(5, 1\)"):
        ep.validate()
    ep = _episode()
    ep.ee["right"][2, 3:] = [0.0, 0.0, 0.0, 1.0 + 0.5]  # e.g. x,y,z,w read as w,x,y,z + scale
    with pytest.raises(SchemaError, match=r"ee\['right'\].*step 2 has norm 1.5"):
        ep.validate()
    ep = _episode()
    ep.time[2] = ep.time[1]
    with pytest.raises(SchemaError, match="strictly increasing"):
        ep.validate()
    with pytest.raises(SchemaError, match="no 'images'"):
        _episode().require("qpos", "images")


def test_slice_rebases_time():
    ep = _episode(8).slice(3, 6)
    assert len(ep) == 3 and ep.time[0] == 0 and ep.objects["box"].shape == (3, 7)


def test_pose_math_roundtrips():
    rng = np.random.default_rng(1)
    q = quat_normalize(rng.normal(size=(6, 4)))
    poses = np.concatenate([rng.normal(size=(6, 3)), q], axis=1)
    ident = pose_mul(poses, pose_inv(poses))
    np.testing.assert_allclose(ident[:, :3], 0, atol=1e-12)
    np.testing.assert_allclose(quat_angle(ident[:, 3:], np.array([1.0, 0, 0, 0])), 0, atol=1e-6)
    np.testing.assert_allclose(mat_to_pose(pose_to_mat(poses)), poses, atol=1e-12)
    np.testing.assert_array_equal(xyzw_to_wxyz(wxyz_to_xyzw(q)), q)
    half = slerp(yaw_quat(0.0), yaw_quat(1.0), 0.5)
    np.testing.assert_allclose(half, yaw_quat(0.5), atol=1e-12)


def test_min_jerk_and_plan_targets():
    s = np.linspace(0, 1, 11)
    y = min_jerk(s)
    assert y[0] == 0 and y[-1] == 1 and np.all(np.diff(y) >= 0)
    start = np.array([0.0, 0, 0, 1, 0, 0, 0])
    goal = np.r_[0.1, 0, 0, yaw_quat(np.pi / 2)]
    plan = Plan(settle=0.2).add("right", Waypoint(goal, 1.0, 0.0, "reach"))
    tg = plan_targets(plan, {"right": start}, {"right": 1.0}, dt=0.1)
    assert len(tg) == 13
    np.testing.assert_allclose(tg.pose["right"][10], goal, atol=1e-12)
    assert tg.gripper["right"][9] == 1.0 and tg.gripper["right"][10] == 0.0
    v = np.diff(tg.pose["right"][:11, 0])
    assert v[0] < v[5] > v[-1]  # bell-shaped speed profile
    with pytest.raises(SchemaError, match="arm 'left'"):
        plan_targets(Plan().add("left", Waypoint(goal, 1.0, 0.0)), {"right": start}, {}, 0.1)


def _slerp_reference(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """Textbook slerp (shortest arc), written out independently of scipy."""
    dot = float(np.dot(a, b))
    if dot < 0:
        b, dot = -b, -dot
    theta = np.arccos(min(dot, 1.0))
    return (np.sin((1 - s) * theta) * a + np.sin(s * theta) * b) / np.sin(theta)


def test_one_slerp_on_scipy_vectorized_and_shortest_arc():
    from sim.transforms import interp_linear, interp_slerp, mat_to_quat, quat_to_mat

    rng = np.random.default_rng(3)
    q = quat_normalize(rng.normal(size=(5, 4)))
    s = np.linspace(0, 1, 7)
    for a, b in zip(q[:-1], q[1:], strict=True):
        out = slerp(a, b, s)
        assert out.shape == (7, 4)
        for k, sk in enumerate(s):
            ref = _slerp_reference(a, b, sk)
            np.testing.assert_allclose(out[k] * np.sign(out[k] @ ref), ref, atol=1e-10)
        np.testing.assert_allclose(out[0], a, atol=1e-12)  # same sign as the start
    # a time series: source samples are returned exactly (sign kept), in between the arc
    t = np.array([0.0, 0.5, 1.5, 2.0, 3.0])
    qq = q.copy()
    qq[2] *= -1  # other hemisphere: still the shortest arc
    dst = np.array([0.0, 0.25, 0.5, 1.0, 1.5, 2.5, 3.0, 4.0])
    got = interp_slerp(t, qq, dst)
    np.testing.assert_allclose(got[[0, 2, 4, 6]], qq[[0, 1, 2, 4]], atol=1e-12)
    np.testing.assert_allclose(got[7], qq[4], atol=1e-12)  # held past the end
    mid = _slerp_reference(qq[1], qq[2], 0.5)
    np.testing.assert_allclose(np.abs(got[3] @ mid), 1.0, atol=1e-10)
    np.testing.assert_allclose(interp_linear(t, t * 2, dst), np.minimum(dst, 3.0) * 2)
    # rotation matrices <-> quaternions, vectorized, w >= 0
    mats = quat_to_mat(q)
    back = mat_to_quat(mats)
    assert back.shape == (5, 4) and np.all(back[:, 0] >= 0)
    np.testing.assert_allclose(np.abs(np.sum(back * q, axis=1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(
        mats @ np.swapaxes(mats, 1, 2), np.tile(np.eye(3), (5, 1, 1)), atol=1e-12
    )


def test_slerp_pairs_rowwise():
    from sim.transforms import slerp_pairs

    rng = np.random.default_rng(5)
    a, b = quat_normalize(rng.normal(size=(20, 4))), quat_normalize(rng.normal(size=(20, 4)))
    s = rng.uniform(size=20)
    out = slerp_pairs(a, b, s)
    assert out.shape == (20, 4) and np.all(out[:, 0] >= 0)
    for k in range(20):
        ref = _slerp_reference(a[k], b[k], s[k])
        np.testing.assert_allclose(np.abs(out[k] @ ref), 1.0, atol=1e-10)
