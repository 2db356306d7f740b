"""Object-centric SE(3) segment transforms: pure-function properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from sim.augment.segment import Segment
from sim.augment.transform import (
    apply_transform,
    mats_to_poses,
    object_anchored_targets,
    poses_to_mats,
    relative,
    segment_transform,
    transform_segment,
)
from sim.episode import Episode, EpisodeMeta

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def random_poses(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    q = Rotation.random(n, random_state=int(rng.integers(2**31))).as_quat()[:, [3, 0, 1, 2]]
    return np.concatenate([rng.uniform(-scale, scale, (n, 3)), q], axis=1)


def same_pose(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> bool:
    pos = np.abs(a[..., :3] - b[..., :3]).max() < tol
    dots = np.abs(np.sum(a[..., 3:] * b[..., 3:], axis=-1))
    return bool(pos and np.all(dots > 1 - tol))


@settings(max_examples=60, deadline=None)
@given(seeds)
def test_object_relative_pose_is_preserved(seed):
    rng = np.random.default_rng(seed)
    obj_src, obj_new = random_poses(rng, 2)
    ee = random_poses(rng, 7, scale=0.5)
    out = transform_segment(ee, obj_src, obj_new)
    assert same_pose(relative(obj_new, out), relative(obj_src, ee), 1e-9)
    # the transform maps the source object onto the new one
    assert same_pose(
        apply_transform(segment_transform(obj_src, obj_new), obj_src[None])[0], obj_new
    )


@settings(max_examples=40, deadline=None)
@given(seeds)
def test_identity_and_composition(seed):
    rng = np.random.default_rng(seed)
    a, b, c = random_poses(rng, 3)
    ee = random_poses(rng, 4)
    assert same_pose(transform_segment(ee, a, a), ee)
    two = transform_segment(transform_segment(ee, a, b), b, c)
    assert same_pose(two, transform_segment(ee, a, c), 1e-8)
    assert same_pose(mats_to_poses(poses_to_mats(ee)), ee, 1e-12)


def test_object_anchored_targets_per_segment():
    rng = np.random.default_rng(3)
    T = 20
    ee = random_poses(rng, T, 0.3)
    a0, b0 = random_poses(rng, 2)
    ep = Episode(
        meta=EpisodeMeta(task="t", robot="r", fps=20.0),
        time=np.arange(T) / 20.0,
        ee={"right": ee},
        objects={"a": np.repeat(a0[None], T, 0), "b": np.repeat(b0[None], T, 0)},
    )
    segs = [
        Segment(0, "right", "right", "grasp", "a", "a", 0, 8),
        Segment(0, "right", "right", "place", "b", "b", 8, 15),
    ]
    a1, b1 = random_poses(rng, 2)
    out = object_anchored_targets(ep, {"a": a1, "b": b1}, segs)["right"]
    assert same_pose(relative(a1, out[:8]), relative(a0, ee[:8]), 1e-9)
    assert same_pose(relative(b1, out[8:15]), relative(b0, ee[8:15]), 1e-9)
    assert same_pose(out[15:], ee[15:])  # outside every segment: world frame


@settings(max_examples=40, deadline=None)
@given(seeds, st.sampled_from([0, 2, 4]))
def test_symmetric_frame_is_equivalent_and_closest(seed, order):
    from sim.augment.transform import symmetric_frame
    from sim.transforms import quat_angle, yaw_quat

    rng = np.random.default_rng(seed)
    src = np.r_[rng.uniform(-1, 1, 3), yaw_quat(rng.uniform(-0.3, 0.3))]
    new = np.r_[rng.uniform(-1, 1, 3), yaw_quat(rng.uniform(-np.pi, np.pi))]
    out = symmetric_frame(src, new, order)
    assert np.allclose(out[:3], new[:3])
    turn = relative(new, out[None])[0]  # a pure rotation about the object's own z
    assert np.allclose(turn[:3], 0, atol=1e-9) and abs(turn[4]) < 1e-9 and abs(turn[5]) < 1e-9
    yaw = 2 * np.arctan2(turn[6], turn[3])
    if order:
        k = yaw / (2 * np.pi / order)
        assert abs(k - round(k)) < 1e-6
        assert quat_angle(src[3:], out[3:]) <= np.pi / order + 1e-9
    else:
        assert quat_angle(src[3:], out[3:]) < 1e-6


@settings(max_examples=40, deadline=None)
@given(seeds, st.sampled_from([0, 1, 2, 4]))
def test_symmetric_frames_equal_one_call_per_source(seed, order):
    """The batched form (every candidate source of a subtask at once) gives the same bytes."""
    from sim.augment.transform import symmetric_frame, symmetric_frames

    rng = np.random.default_rng(seed)
    srcs, new = random_poses(rng, 12), random_poses(rng, 1)[0]
    one = np.array([symmetric_frame(s, new, order) for s in srcs])
    assert np.array_equal(symmetric_frames(srcs, new, order), one)


@settings(max_examples=30, deadline=None)
@given(seeds)
def test_mirror_is_a_proper_involution_through_the_base_plane(seed):
    from sim.augment.transform import mirror
    from sim.transforms import yaw_quat

    rng = np.random.default_rng(seed)
    base = np.r_[rng.uniform(-1, 1, 3), yaw_quat(rng.uniform(-np.pi, np.pi))]
    p = random_poses(rng, 5)
    m = mirror(p, base)
    assert same_pose(mirror(m, base), p, 1e-9)
    assert np.allclose(np.linalg.det(poses_to_mats(m)[:, :3, :3]), 1.0)
    lp, lm = relative(base, p), relative(base, m)  # base frame: y flips, x and z stay
    assert np.allclose(lm[:, [0, 2]], lp[:, [0, 2]]) and np.allclose(lm[:, 1], -lp[:, 1])
    top_down = np.r_[base[:3], yaw_quat(0.4)][None]
    flat = np.r_[0, 0, 0, 1, 0, 0, 0.0]
    assert same_pose(mirror(top_down, flat), np.r_[base[:3] * [1, -1, 1], yaw_quat(-0.4)][None])
