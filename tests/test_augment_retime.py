"""Time warp, retime caps, gripper speed, transit, selection, noise: pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.augment.noise import position_noise
from sim.augment.retime import capped_times, rate_limit, resample, warp_plan
from sim.augment.select import select
from sim.augment.stitch import SKIP_POS, needs_transit, transit
from sim.control.plan import Plan, Waypoint
from sim.errors import ConfigError, UnknownNameError
from sim.transforms import yaw_quat

DT = 0.05


def line(n: int, length: float) -> np.ndarray:
    p = np.zeros((n, 7))
    p[:, 0] = np.linspace(0, length, n)
    p[:, 3] = 1.0
    return p


def test_warp_plan_shares_factors_across_arms_and_keeps_timed_labels():
    wp = [Waypoint(np.r_[0, 0, 0, 1, 0, 0, 0.0], 1.0, 1.0, lab) for lab in ("a", "b", "c")]
    plan = Plan().add("left", *wp).add("right", *wp)
    out = warp_plan(plan, np.random.default_rng(0), 0.9, 1.15, keep=("b",))
    left = [w.duration for w in out.arms["left"]]
    assert left == [w.duration for w in out.arms["right"]]
    assert left[1] == 1.0 and all(0.9 <= d <= 1.15 for d in left) and left[0] != 1.0
    with pytest.raises(ConfigError, match="time_warp"):
        warp_plan(plan, np.random.default_rng(0), 1.2, 1.0)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.05, 0.5), st.integers(5, 40))
def test_capped_times_keep_speed_and_accel_under_the_caps(length, n):
    p = line(n, length)
    t = capped_times([p], DT, max_speed=0.3, max_accel=2.0)
    assert np.all(np.diff(t) >= DT - 1e-12)  # only ever slower
    q, _, _ = resample(p, np.ones(n), t, DT)
    v = np.linalg.norm(np.diff(q[:, :3], axis=0), axis=1) / DT
    assert v.max() <= 0.3 + 1e-6
    assert np.allclose(q[-1], p[-1]) and np.allclose(q[0], p[0])


def test_rate_limited_gripper_takes_its_stroke_time():
    g = np.r_[np.ones(5), np.zeros(20)]
    out = rate_limit(g, DT, stroke_s=0.3)
    assert np.all(np.abs(np.diff(out)) <= DT / 0.3 + 1e-12)
    assert out[5] > 0.5 and out[5 + 6] == 0.0  # 0.3 s = 6 steps for the full stroke


def test_transit_is_min_jerk_and_ends_on_the_goal():
    a = np.r_[0, 0, 0, yaw_quat(0.0)]
    b = np.r_[0.1, 0, 0.05, yaw_quat(0.5)]
    tr = transit(a, b, 10)
    assert tr.shape == (10, 7) and np.allclose(tr[-1], b)
    step = np.linalg.norm(np.diff(np.vstack([a, tr])[:, :3], axis=0), axis=1)
    assert step[0] < step[4] and step[-1] < step[4]  # slow in, slow out
    assert len(transit(a, a, 10)) == 0  # nothing to do


def test_needs_transit_says_whether_transit_has_steps():
    """The demos source asks before building transits; the answer must match building one."""
    a = np.r_[0, 0, 0, yaw_quat(0.0)]
    cases = [
        (np.r_[0.1, 0, 0.05, yaw_quat(0.5)], 10),  # far
        (a.copy(), 10),  # the same pose
        (np.r_[SKIP_POS / 2, 0, 0, yaw_quat(0.0)], 10),  # near in position, same turn
        (np.r_[SKIP_POS / 2, 0, 0, yaw_quat(0.4)], 10),  # near in position, turned
        (np.r_[0.1, 0, 0, yaw_quat(0.0)], 0),  # no steps
        (np.r_[np.nan, 0, 0, yaw_quat(0.0)], 5),  # NaN: never "near"
    ]
    for b, n in cases:
        assert needs_transit(a, b, n) == (len(transit(a, b, n)) > 0), (b, n)
    assert [needs_transit(a, b, n) for b, n in cases] == [True, False, False, True, False, True]


def test_nearest_selection_prefers_close_reference_poses():
    refs = np.array([[x, 0, 0, 1, 0, 0, 0] for x in (0.0, 0.1, 0.2, 0.3, 0.4)])
    rng = np.random.default_rng(0)
    picks = {select("nearest", rng, [0, 1, 2, 3, 4], refs, refs[4], k=2) for _ in range(30)}
    assert picks == {3, 4}
    assert len({select("random", rng, [0, 1, 2, 3, 4]) for _ in range(60)}) == 5
    with pytest.raises(UnknownNameError, match="source.select"):
        select("best", rng, [0])


def test_position_noise():
    p = line(50, 0.1)
    assert np.array_equal(position_noise(p, np.random.default_rng(0), 0.0), p)
    q = position_noise(p, np.random.default_rng(0), 0.01)
    assert 0.005 < np.std(q[:, :3] - p[:, :3]) < 0.015 and np.array_equal(q[:, 3:], p[:, 3:])
    with pytest.raises(ConfigError, match="source.noise"):
        position_noise(p, np.random.default_rng(0), -1)
