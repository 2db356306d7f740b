"""Source selection per subtask: which source segment to transform into the new scene."""

from __future__ import annotations

import numpy as np

from sim.errors import UnknownNameError
from sim.transforms import quat_angle

MODES = ("random", "nearest")
ANGLE_WEIGHT = 0.1  # [m/rad]: 1 rad of reference-object rotation counts like 10 cm


def pose_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between poses (..., 7): position [m] + ANGLE_WEIGHT * rotation angle [rad]."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.linalg.norm(a[..., :3] - b[..., :3], axis=-1) + ANGLE_WEIGHT * quat_angle(
        a[..., 3:], b[..., 3:]
    )


def select(
    mode: str,
    rng: np.random.Generator,
    candidates: list[int],
    src_refs: np.ndarray | None = None,
    new_ref: np.ndarray | None = None,
    k: int = 3,
) -> int:
    """Pick one of ``candidates`` (source episode indices).

    ``random``: uniform. ``nearest``: uniform among the ``k`` candidates whose reference-object
    pose ``src_refs`` (N, 7) at the segment start is closest to ``new_ref`` ((7,), or (N, 7): one
    symmetry-equivalent frame per candidate) (MimicGen's
    nearest-neighbour selection); without a reference it falls back to uniform.
    """
    if mode not in MODES:
        raise UnknownNameError("source.select", mode, MODES)
    if mode == "random" or src_refs is None or new_ref is None:
        return int(candidates[int(rng.integers(len(candidates)))])
    d = pose_distance(src_refs, np.broadcast_to(new_ref, np.shape(src_refs)))
    order = np.argsort(d, kind="stable")[: max(1, min(k, len(candidates)))]
    return int(candidates[int(order[int(rng.integers(len(order)))])])
