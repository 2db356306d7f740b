"""Source episode -> target robot/scene: joint-name maps, FK, EE-space mapping.

EE-space retargeting expresses the source EE trajectory either relative to a source object
(mapped onto the target object's pose) or through a calibration transform fixed at the first
frame (source start pose -> target start pose, optional scaling of translations).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import mujoco
import numpy as np

from sim.errors import ConfigError, SchemaError
from sim.io.fk import frame_poses
from sim.transforms import pose_inv, pose_mul

_SIDE = {"l": "left", "r": "right"}


def joint_key(name: str) -> str:
    """Canonical key: 'kLeftShoulderPitch', 'left_shoulder_pitch_joint' -> 'leftshoulderpitch'."""
    n = re.sub(r"^k(?=[A-Z])", "", name)
    n = re.sub(r"(_joint|joint)$", "", n.lower())
    return re.sub(r"[^a-z0-9]", "", n)


def map_joints(
    src: Sequence[str], dst: Sequence[str], mapping: Mapping[str, str] | None = None
) -> dict[int, int]:
    """Source index -> target index, by explicit ``mapping`` (src -> dst name) else by joint key.

    Raises:
        ConfigError: an explicit name is unknown, or nothing matched at all.
    """
    dst_idx = {n: i for i, n in enumerate(dst)}
    if mapping:
        out = {}
        for s, d in mapping.items():
            if s not in src or d not in dst_idx:
                raise ConfigError(
                    f"joint map {s!r} -> {d!r}: {s!r} in source={s in src}, "
                    f"{d!r} in target={d in dst_idx}"
                )
            out[list(src).index(s)] = dst_idx[d]
        return out
    keys = {joint_key(n): i for i, n in enumerate(dst)}
    out = {i: keys[joint_key(n)] for i, n in enumerate(src) if joint_key(n) in keys}
    if not out:
        raise ConfigError(
            f"no source joint matches a target joint: source {list(src)[:6]}..., "
            f"target {list(dst)[:6]}...; pass an explicit joint map"
        )
    return out


def fk_poses(
    model: mujoco.MjModel,
    joint_names: Sequence[str],
    qpos: np.ndarray,
    frames: Mapping[str, str],
    base_qpos: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """World poses (T, 7) of bodies/sites (``frames``: label -> name) by forward kinematics.

    A thin adapter over :func:`sim.io.fk.frame_poses` (the one FK loop): it places the named
    joint columns into full ``qpos`` vectors.

    Args:
        model: a model holding the named joints (kinematics only; no stepping).
        joint_names: columns of ``qpos``; joints absent from the model raise ConfigError.
        qpos: (T, n) joint values.
        base_qpos: full qpos used for every joint not in ``joint_names`` (default qpos0).
    """
    adr = []
    for j in joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        if jid < 0:
            raise ConfigError(f"joint {j!r} is not in the model")
        adr.append(int(model.jnt_qposadr[jid]))
    for label, name in frames.items():
        if (
            mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name) < 0
            and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) < 0
        ):
            raise ConfigError(f"frame {label!r}: no site or body named {name!r} in the model")
    q = np.asarray(qpos, dtype=np.float64)
    base = np.asarray(model.qpos0 if base_qpos is None else base_qpos, dtype=np.float64)
    full = np.tile(base, (len(q), 1))
    full[:, adr] = q
    return frame_poses(model, full, dict(frames))


def ee_calibrated(
    src: np.ndarray,
    dst_start: np.ndarray,
    scale: float = 1.0,
    calibration: np.ndarray | None = None,
) -> np.ndarray:
    """Map a source EE track (T, 7) onto a target robot.

    With ``calibration`` (a (7,) pose: target world <- source world) poses are mapped directly.
    Otherwise the calibration is fixed at the first frame: the target starts at ``dst_start``
    and follows the source's motion relative to its start (rotations in the world frame,
    translations scaled by ``scale``, e.g. the ratio of arm lengths).
    """
    src = np.asarray(src, float)
    if src.ndim != 2 or src.shape[1] != 7:
        raise SchemaError(f"source EE track must be (T, 7), got {src.shape}")
    if calibration is not None:
        return pose_mul(np.broadcast_to(calibration, src.shape), src)
    out = np.empty_like(src)
    out[:, :3] = dst_start[:3] + scale * (src[:, :3] - src[0, :3])
    # world-frame relative rotation R(t) R(0)^T applied to the target's start orientation
    rel = pose_mul(
        np.concatenate([np.zeros((len(src), 3)), src[:, 3:]], 1),
        np.broadcast_to(pose_inv(np.r_[np.zeros(3), src[0, 3:]]), src.shape),
    )
    out[:, 3:] = pose_mul(rel, np.broadcast_to(np.r_[np.zeros(3), dst_start[3:]], src.shape))[:, 3:]
    return out


def ee_object_relative(src: np.ndarray, src_obj: np.ndarray, dst_obj: np.ndarray) -> np.ndarray:
    """Keep the EE track's pose relative to an object: T_dst_obj · T_src_obj⁻¹ · T_src_ee(t)."""
    T = pose_mul(np.asarray(dst_obj, float), pose_inv(np.asarray(src_obj, float)))
    return pose_mul(np.broadcast_to(T, np.shape(src)), np.asarray(src, float))
