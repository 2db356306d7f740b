"""Object-centric SE(3) segment transforms (MimicGen): pure functions on pose arrays.

A pose is pos [m] + quat w,x,y,z in the world frame; a transform is a 4x4 homogeneous matrix.
A source segment's EE poses are kept fixed relative to its reference object and mapped to that
object's pose in the new scene: ``T_ee_new = T_obj_new · T_obj_src⁻¹ · T_ee_src``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sim.transforms import quats_to_rots, rots_to_quats

if TYPE_CHECKING:
    from sim.augment.segment import Segment
    from sim.episode import Episode


def poses_to_mats(poses: np.ndarray) -> np.ndarray:
    """(..., 7) poses -> (..., 4, 4) homogeneous matrices."""
    p = np.asarray(poses, float)
    flat = p.reshape(-1, 7)
    out = np.zeros((len(flat), 4, 4))
    out[:, :3, :3] = quats_to_rots(flat[:, 3:])
    out[:, :3, 3] = flat[:, :3]
    out[:, 3, 3] = 1.0
    return out.reshape(*p.shape[:-1], 4, 4)


def mats_to_poses(mats: np.ndarray) -> np.ndarray:
    """(..., 4, 4) homogeneous matrices -> (..., 7) poses (quat w >= 0)."""
    m = np.asarray(mats, float)
    flat = m.reshape(-1, 4, 4)
    q = rots_to_quats(flat[:, :3, :3])
    out = np.concatenate([flat[:, :3, 3], q], axis=1)
    return out.reshape(*m.shape[:-2], 7)


def inverse(mat: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (4, 4)."""
    r, t = mat[:3, :3], mat[:3, 3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ t
    return out


def segment_transform(obj_src: np.ndarray, obj_new: np.ndarray) -> np.ndarray:
    """The world-frame transform ``T_obj_new · T_obj_src⁻¹`` (4, 4) of one segment."""
    return poses_to_mats(obj_new) @ inverse(poses_to_mats(obj_src))


def apply_transform(mat: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Left-multiply poses (N, 7) by a world-frame transform (4, 4)."""
    return mats_to_poses(np.asarray(mat, float) @ poses_to_mats(poses))


def transform_segment(ee_src: np.ndarray, obj_src: np.ndarray, obj_new: np.ndarray) -> np.ndarray:
    """Map source EE poses (N, 7) rigidly with the reference object: src pose -> new pose."""
    return apply_transform(segment_transform(obj_src, obj_new), ee_src)


def symmetric_frame(src: np.ndarray, new: np.ndarray, order: int) -> np.ndarray:
    """The frame equivalent to ``new`` (7,) under an ``order``-fold symmetry about its z axis
    (0 = round) that is closest in rotation to ``src`` (7,).

    A cube (order 4) turned 80° in the new scene is then treated as turned -10°, so a segment
    recorded at a small yaw keeps a comfortable wrist instead of turning the hand 80°.
    """
    if order == 1:
        return np.asarray(new, float).copy()
    m_src, m_new = poses_to_mats(src), poses_to_mats(new)
    rel = m_new[:3, :3].T @ m_src[:3, :3]
    theta = float(np.arctan2(rel[1, 0], rel[0, 0]))
    if order > 1:
        step = 2 * np.pi / order
        theta = step * round(theta / step)
    return _turned(m_new, theta)


def symmetric_frames(srcs: np.ndarray, new: np.ndarray, order: int) -> np.ndarray:
    """:func:`symmetric_frame` of one ``new`` (7,) for each of ``srcs`` (N, 7), e.g. every
    candidate source episode of a subtask: the turns are found for all at once and each
    distinct turn's frame is built once (the same values as one call per source)."""
    srcs = np.asarray(srcs, float).reshape(-1, 7)
    if order < 2:  # nothing shared: order 1 copies, a round object turns continuously
        return np.array([symmetric_frame(s_, new, order) for s_ in srcs]).reshape(-1, 7)
    m_new = poses_to_mats(new)
    r_src = poses_to_mats(srcs)[:, :3, :3]
    rel = np.einsum("ji,njk->nik", m_new[:3, :3], r_src)  # m_new^T @ m_src per source
    step = 2 * np.pi / order
    turns = np.round(np.arctan2(rel[:, 1, 0], rel[:, 0, 0]) / step).astype(int)
    frames = {k: _turned(m_new, step * k) for k in set(turns.tolist())}
    return np.array([frames[k] for k in turns.tolist()]).reshape(-1, 7)


def _turned(m_new: np.ndarray, theta: float) -> np.ndarray:
    """Pose of frame ``m_new`` (4, 4) turned by ``theta`` [rad] about its own z axis."""
    c, s_ = np.cos(theta), np.sin(theta)
    rz = np.eye(4)
    rz[:2, :2] = [[c, -s_], [s_, c]]
    return mats_to_poses(m_new @ rz)


def mirror(poses: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Poses (N, 7) reflected through the xz plane of frame ``base`` (7,) (a robot's sagittal
    plane): what the other hand does in the mirrored layout. Positions flip their base-frame y;
    orientations become S·R·S with S = diag(1, -1, 1) (proper rotations: a right hand's
    top-down yaw ψ becomes -ψ)."""
    b = poses_to_mats(base)
    local = inverse(b) @ poses_to_mats(poses)
    s = np.diag([1.0, -1.0, 1.0, 1.0])
    return mats_to_poses(b @ (s @ local @ s))


def relative(obj: np.ndarray, ee: np.ndarray) -> np.ndarray:
    """EE poses (N, 7) in the frame of object pose ``obj`` (7,): ``T_obj⁻¹ · T_ee``."""
    return mats_to_poses(inverse(poses_to_mats(obj)) @ poses_to_mats(ee))


def object_anchored_targets(
    episode: Episode,
    scene_objects: Mapping[str, np.ndarray],
    segments: Sequence[Segment],
    ref_frame=None,
) -> dict[str, np.ndarray]:
    """Per-arm EE targets (T, 7) of ``episode`` re-anchored segment by segment.

    Each segment's EE poses keep their pose relative to the segment's reference object at the
    segment's first frame and follow that object to its pose in ``scene_objects`` (name -> (7,),
    world frame); segments without a reference, and frames outside every segment, stay in the
    world frame. ``ref_frame(name, poses)`` builds a reference frame from object poses (a task's
    :meth:`~sim.tasks.base.Task.ref_frame`; default: the object's own pose). This is the anchor
    rule of the ``demos`` source, for ``demoforge-replay`` object mode.
    """
    from sim.augment.segment import source_track

    out = {arm: source_track(episode, arm)[0].copy() for arm in episode.ee}
    frame = ref_frame or (lambda name, poses: np.asarray(poses[name], float))
    for seg in segments:
        if seg.src_ref is None or seg.arm not in out:
            continue
        src_objs = {k: np.asarray(v)[seg.start] for k, v in episode.objects.items()}
        new_objs = dict(scene_objects)
        if seg.ref not in new_objs:
            continue
        obj_src = frame(seg.src_ref, src_objs)
        obj_new = frame(seg.ref, new_objs)
        out[seg.arm][seg.start : seg.stop] = transform_segment(
            out[seg.arm][seg.start : seg.stop], obj_src, obj_new
        )
    return out
