"""Pose and quaternion helpers. Quaternions are MuJoCo order **w, x, y, z** everywhere in the core.

Conversions to x, y, z, w (scipy/robomimic) happen only at reader/writer edges.
A pose is a length-7 array: position [m] then quaternion (w, x, y, z).
"""

from __future__ import annotations

import numpy as np


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """Reorder quaternions (..., 4) from w,x,y,z to x,y,z,w."""
    q = np.asarray(q)
    return np.concatenate([q[..., 1:4], q[..., :1]], axis=-1)


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    """Reorder quaternions (..., 4) from x,y,z,w to w,x,y,z."""
    q = np.asarray(q)
    return np.concatenate([q[..., 3:4], q[..., :3]], axis=-1)


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions with a non-negative w (canonical sign), shape preserved."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quats_to_rots(q: np.ndarray) -> np.ndarray:
    """(N, 4) quaternions w,x,y,z (normalized here) -> (N, 3, 3) rotation matrices."""
    q = np.asarray(q, float)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    r = np.empty((len(q), 3, 3))
    r[:, 0, 0] = 1 - 2 * (y * y + z * z)
    r[:, 0, 1] = 2 * (x * y - w * z)
    r[:, 0, 2] = 2 * (x * z + w * y)
    r[:, 1, 0] = 2 * (x * y + w * z)
    r[:, 1, 1] = 1 - 2 * (x * x + z * z)
    r[:, 1, 2] = 2 * (y * z - w * x)
    r[:, 2, 0] = 2 * (x * z - w * y)
    r[:, 2, 1] = 2 * (y * z + w * x)
    r[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def rots_to_quats(r: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices -> (N, 4) unit quaternions w,x,y,z with w >= 0.

    Shepperd's method: each row uses the largest of 1 + trace and 1 + 2 R_ii - trace, so the
    square root never nears zero.
    """
    r = np.asarray(r, float)
    t = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    cand = np.stack([t, r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((len(r), 4))
    for i in range(4):
        sel = k == i
        if not sel.any():
            continue
        m = r[sel]
        if i == 0:
            s = 2.0 * np.sqrt(1.0 + t[sel])
            q[sel] = np.stack(
                [
                    0.25 * s,
                    (m[:, 2, 1] - m[:, 1, 2]) / s,
                    (m[:, 0, 2] - m[:, 2, 0]) / s,
                    (m[:, 1, 0] - m[:, 0, 1]) / s,
                ],
                axis=1,
            )
            continue
        a, b, c = (i - 1, i % 3, (i + 1) % 3)  # the dominant axis and the two others
        s = 2.0 * np.sqrt(1.0 + m[:, a, a] - m[:, b, b] - m[:, c, c])
        qi = np.empty((len(m), 4))
        qi[:, 0] = (m[:, c, b] - m[:, b, c]) / s
        qi[:, 1 + a] = 0.25 * s
        qi[:, 1 + b] = (m[:, b, a] + m[:, a, b]) / s
        qi[:, 1 + c] = (m[:, c, a] + m[:, a, c]) / s
        q[sel] = qi
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) w,x,y,z with w >= 0."""
    mat = np.asarray(mat, dtype=np.float64)
    flat = mat.reshape(-1, 3, 3)
    if not len(flat):
        return np.zeros(mat.shape[:-2] + (4,))
    return rots_to_quats(flat).reshape(mat.shape[:-2] + (4,))


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) w,x,y,z -> rotation matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    flat = q.reshape(-1, 4)
    if not len(flat):
        return np.zeros(q.shape[:-1] + (3, 3))
    return quats_to_rots(flat).reshape(q.shape[:-1] + (3, 3))


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b of w,x,y,z quaternions (broadcasting)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (inverse for unit quaternions), w,x,y,z."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w,x,y,z) for a rotation of `yaw` [rad] about world z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def pose_to_mat(pose: np.ndarray) -> np.ndarray:
    """Poses (..., 7) -> homogeneous transforms (..., 4, 4)."""
    pose = np.asarray(pose, dtype=np.float64)
    out = np.zeros(pose.shape[:-1] + (4, 4))
    out[..., :3, :3] = quat_to_mat(pose[..., 3:])
    out[..., :3, 3] = pose[..., :3]
    out[..., 3, 3] = 1.0
    return out


def mat_to_pose(mat: np.ndarray) -> np.ndarray:
    """Homogeneous transforms (..., 4, 4) -> poses (..., 7)."""
    mat = np.asarray(mat, dtype=np.float64)
    return np.concatenate([mat[..., :3, 3], mat_to_quat(mat[..., :3, :3])], axis=-1)


def pose_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compose poses: a ∘ b (b expressed in a's frame), shapes (..., 7)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pos = a[..., :3] + np.einsum("...ij,...j->...i", quat_to_mat(a[..., 3:]), b[..., :3])
    return np.concatenate([pos, quat_normalize(quat_mul(a[..., 3:], b[..., 3:]))], axis=-1)


def pose_inv(a: np.ndarray) -> np.ndarray:
    """Inverse pose, shape (..., 7)."""
    a = np.asarray(a, dtype=np.float64)
    qi = quat_conj(a[..., 3:])
    pos = -np.einsum("...ij,...j->...i", quat_to_mat(qi), a[..., :3])
    return np.concatenate([pos, qi], axis=-1)


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle [rad] between unit quaternions a and b (..., 4)."""
    d = np.abs(np.sum(quat_normalize(a) * quat_normalize(b), axis=-1))
    return 2.0 * np.arccos(np.clip(d, 0.0, 1.0))


def _rotations(q: np.ndarray):
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat(wxyz_to_xyzw(quat_normalize(q)))


def _align(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Flip each quaternion of ``out`` into the hemisphere of ``ref`` (same rotation)."""
    return np.where(np.sum(out * ref, axis=-1, keepdims=True) < 0, -out, out)


def slerp(a: np.ndarray, b: np.ndarray, s: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation (shortest arc) between unit quaternions a, b (4,), w,x,y,z.

    Args:
        a, b: end quaternions; s: fraction(s) in [0, 1] (scalar or (N,)).

    Returns:
        (4,) for a scalar ``s``, else (N, 4); signs follow ``a``'s hemisphere.
    """
    from scipy.spatial.transform import Slerp

    a = quat_normalize(a)
    s_arr = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    rots = _rotations(np.stack([a, np.asarray(b, dtype=np.float64)]))
    out = xyzw_to_wxyz(Slerp([0.0, 1.0], rots)(s_arr.reshape(-1)).as_quat())
    out = _align(out, a)
    return out[0] if s_arr.ndim == 0 else out.reshape(s_arr.shape + (4,))


def slerp_pairs(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Row-wise shortest-arc slerp between unit quaternions a, b (N, 4) at fractions s (N,).

    Returns (N, 4) w,x,y,z with w >= 0 (canonical sign, as :func:`quat_normalize`).
    """
    from scipy.spatial.transform import Rotation

    ra, rb = _rotations(np.atleast_2d(a)), _rotations(np.atleast_2d(b))
    rel = (rb * ra.inv()).as_rotvec()  # shortest arc: |angle| <= pi
    frac = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0).reshape(-1, 1)
    out = Rotation.from_rotvec(frac * rel) * ra
    return quat_normalize(xyzw_to_wxyz(out.as_quat()))


def interp_linear(t_src: np.ndarray, values: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    """Linear interpolation of (N,) or (N, k) ``values`` sampled at ``t_src`` onto ``t_dst``.

    Outside the source range the end values are held.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        return np.interp(t_dst, t_src, values)
    return np.stack([np.interp(t_dst, t_src, values[:, j]) for j in range(values.shape[1])], 1)


def interp_slerp(t_src: np.ndarray, quats: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    """Slerp (shortest arc) of (N, 4) unit quaternions w,x,y,z sampled at ``t_src`` onto ``t_dst``.

    Vectorized on ``scipy.spatial.transform.Slerp``. At a source time the source quaternion is
    returned (up to rounding, same sign); outside the source range the end values are held.
    """
    from scipy.spatial.transform import Slerp

    t_src = np.asarray(t_src, dtype=np.float64)
    t_dst = np.asarray(t_dst, dtype=np.float64)
    q = np.asarray(quats, dtype=np.float64) / np.linalg.norm(quats, axis=-1, keepdims=True)
    if len(t_src) == 1:
        return np.repeat(q, len(t_dst), axis=0)
    tq = np.clip(t_dst, t_src[0], t_src[-1])
    out = xyzw_to_wxyz(Slerp(t_src, _rotations(q))(tq).as_quat())
    i = np.clip(np.searchsorted(t_src, tq, side="right") - 1, 0, len(t_src) - 1)
    return _align(out, q[i])
