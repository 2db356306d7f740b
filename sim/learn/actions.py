"""The end-effector action space of BC policies.

A policy action is, per arm in ``arms``: the commanded EE position minus a reference EE
position (world frame, [m]), then the rotation from the reference EE orientation to the
commanded one as a rotation vector (world frame, ``q_cmd = exp(r) * q_ref``, [rad]); then per
arm in ``gripper_arms`` the absolute gripper command (opening, [0, 1]). The reference is the EE
pose observed at the episode's first frame (``reset``: after the scene reset, so actions are
absolute targets in a frame that does not drift and rotations stay small) or at the query frame
(``query``: deltas from the current pose, which re-base on the tracking error at every query).
The commanded targets are the dataset's ``target.ee_pose.<arm>`` / ``target.gripper.<arm>``
columns (what the generator fed to IK), so executing decoded actions through ``ArmIK``
reproduces the generator's control path (:func:`sim.rollout.execute`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from sim.errors import SchemaError
from sim.transforms import quat_conj, quat_mul, quat_normalize, wxyz_to_xyzw, xyzw_to_wxyz

TARGET = "target.ee_pose."
GRIPPER = "target.gripper."
EE = "observation.ee_pose."
SPACES = ("ee", "joint")
REFERENCES = ("reset", "query")


def rotvec(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) w,x,y,z -> rotation vectors (..., 3) [rad]."""
    flat = np.asarray(q, np.float64).reshape(-1, 4)
    return Rotation.from_quat(wxyz_to_xyzw(flat)).as_rotvec().reshape(q.shape[:-1] + (3,))


def rotvec_quat(r: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) [rad] -> unit quaternions (..., 4) w,x,y,z."""
    flat = np.asarray(r, np.float64).reshape(-1, 3)
    return xyzw_to_wxyz(Rotation.from_rotvec(flat).as_quat()).reshape(r.shape[:-1] + (4,))


@dataclass(frozen=True)
class EEActionSpace:
    """Layout of EE actions: 6 columns per arm in ``arms``, 1 per arm in ``gripper_arms``."""

    arms: tuple[str, ...]
    gripper_arms: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        out = [f"{a}.{c}" for a in self.arms for c in ("dx", "dy", "dz", "rx", "ry", "rz")]
        return out + [f"{a}_gripper" for a in self.gripper_arms]

    @property
    def dim(self) -> int:
        return 6 * len(self.arms) + len(self.gripper_arms)

    @classmethod
    def from_features(cls, features: dict | list, where: str) -> EEActionSpace:
        """The arms of a dataset's ``target.ee_pose.*`` / ``target.gripper.*`` columns."""
        arms = tuple(sorted(k[len(TARGET) :] for k in features if k.startswith(TARGET)))
        grips = tuple(sorted(k[len(GRIPPER) :] for k in features if k.startswith(GRIPPER)))
        if not arms:
            raise SchemaError(
                f"{where}: the EE action space needs features 'target.ee_pose.<arm>' (commanded "
                "EE targets, demoforge schema >= 1.1) but the dataset has none; use "
                "learn.policy.action_space=joint"
            )
        return cls(arms, grips)

    def encode(
        self,
        ref: dict[str, np.ndarray],
        target: dict[str, np.ndarray],
        grip: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Commanded targets -> actions relative to reference EE poses.

        Args:
            ref: arm -> (N, 7) reference EE pose of each query frame (world, pos + wxyz).
            target: arm -> (N, C, 7) commanded EE poses of the C steps from the query on.
            grip: gripper arm -> (N, C) commanded openings.

        Returns:
            (N, C, dim) float32 actions.
        """
        parts = []
        for a in self.arms:
            now, tgt = np.asarray(ref[a], np.float64), np.asarray(target[a], np.float64)
            dpos = tgt[..., :3] - now[:, None, :3]
            qrel = quat_mul(tgt[..., 3:], quat_conj(now[:, None, 3:]))
            parts += [dpos, rotvec(quat_normalize(qrel))]
        parts += [np.asarray(grip[a], np.float64)[..., None] for a in self.gripper_arms]
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def decode(
        self, ref: dict[str, np.ndarray], actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Actions (C, dim) and reference EE poses arm -> (7,) -> (arm -> (C, 7) commanded poses,
        (C, len(gripper_arms)) gripper openings)."""
        actions = np.asarray(actions, np.float64)
        poses = {}
        for i, a in enumerate(self.arms):
            now = np.asarray(ref[a], np.float64)
            blk = actions[:, 6 * i : 6 * i + 6]
            q = quat_mul(rotvec_quat(blk[:, 3:]), now[None, 3:])
            poses[a] = np.concatenate([now[None, :3] + blk[:, :3], quat_normalize(q)], axis=1)
        return poses, actions[:, 6 * len(self.arms) :]


def mean_pose(poses: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mean of (K, 7) poses: positions averaged, quaternions sign-aligned to the first,
    averaged and normalized (the temporal ensemble of EE chunks)."""
    w = np.asarray(w, np.float64) / np.sum(w)
    q = poses[:, 3:] * np.sign(np.sum(poses[:, 3:] * poses[:1, 3:], axis=1, keepdims=True) + 1e-12)
    return np.concatenate(
        [(w[:, None] * poses[:, :3]).sum(0), quat_normalize((w[:, None] * q).sum(0))]
    )
