"""Transit interpolation and stitching of transformed segments into per-step targets."""

from __future__ import annotations

import numpy as np

from sim.control.plan import min_jerk
from sim.transforms import quat_angle, quat_normalize, slerp

#: Transits shorter than this are skipped (the segment continues where the last one ended).
SKIP_POS, SKIP_ANGLE = 1e-3, np.deg2rad(1.0)  # [m], [rad]


def transit(start: np.ndarray, goal: np.ndarray, steps: int) -> np.ndarray:
    """Minimum-jerk interpolation from pose ``start`` to ``goal`` (7,) over ``steps`` steps.

    Returns (steps, 7) poses at s = min_jerk(k / steps), k = 1..steps (the last equals
    ``goal``); an empty array when ``steps`` <= 0 or the two poses (nearly) coincide.
    """
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    if not needs_transit(start, goal, steps):
        return np.empty((0, 7))
    s = min_jerk(np.arange(1, steps + 1) / steps)
    out = np.empty((steps, 7))
    out[:, :3] = start[:3] + s[:, None] * (goal[:3] - start[:3])
    out[:, 3:] = quat_normalize(slerp(start[3:], goal[3:], s))
    return out


def needs_transit(start: np.ndarray, goal: np.ndarray, steps: int) -> bool:
    """Whether :func:`transit` from ``start`` to ``goal`` (7,) over ``steps`` has any step (not
    when ``steps`` <= 0 or the poses nearly coincide)."""
    if steps <= 0:
        return False
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    if not np.linalg.norm(goal[:3] - start[:3]) < SKIP_POS:  # NaN: not near
        return True
    return not float(quat_angle(start[3:], goal[3:])) < SKIP_ANGLE


def clear_transit(
    start: np.ndarray,
    goal: np.ndarray,
    steps: int,
    obstacles: list[tuple[np.ndarray, float]],
    clearance: float,
) -> tuple[np.ndarray, list[int]]:
    """:func:`transit` that passes over obstacles instead of through them.

    Obstacles are spheres (center (3,) [m, world], radius [m]) bounding objects the hand must
    not sweep through. When the straight transit comes within ``radius + clearance`` of any,
    the hand rises at the start to ``clearance`` above the highest one hit, crosses at that
    height, then descends onto ``goal`` (three minimum-jerk legs sharing ``steps`` in
    proportion to their lengths; orientation turns during the crossing). Returns (poses,
    indices of the obstacles avoided).
    """
    path = transit(start, goal, steps)
    if not len(path) or not obstacles or steps < 3:
        return path, []
    hit = [
        i
        for i, (c, r) in enumerate(obstacles)
        if np.min(np.linalg.norm(path[:, :3] - np.asarray(c, float), axis=1)) < r + clearance
    ]
    if not hit:
        return path, []
    start, goal = np.asarray(start, float), np.asarray(goal, float)
    top = max(float(obstacles[i][0][2]) + obstacles[i][1] for i in hit) + clearance
    h = max(top, start[2], goal[2])
    up, over = start.copy(), goal.copy()
    up[2] = over[2] = h
    legs = [(start, up), (up, over), (over, goal)]
    lengths = np.array([np.linalg.norm(b[:3] - a[:3]) for a, b in legs]) + 1e-9
    n = np.maximum(1, np.round(steps * lengths / lengths.sum()).astype(int))
    n[1] += steps - n.sum()  # exact total
    if n[1] < 1:
        return path, []
    parts = []
    for (a, b), k in zip(legs, n, strict=True):
        leg = transit(a, b, int(k))
        parts.append(leg if len(leg) else np.repeat(b[None], int(k), 0))
    return np.concatenate(parts), hit


class Track:
    """Per-arm accumulator of stitched targets: pose, gripper command, label, ref per step."""

    def __init__(self, pose: np.ndarray, grip: float):
        self.pose: list[np.ndarray] = []
        self.grip: list[float] = []
        self.label: list[str] = []
        self.ref: list[str] = []
        self.last_pose = np.asarray(pose, float)
        self.last_grip = float(grip)

    def __len__(self) -> int:
        return len(self.pose)

    def add(self, pose: np.ndarray, grip: np.ndarray, label: str, ref: str | None) -> None:
        """Append steps (N, 7) with gripper commands (N,) under one label/ref."""
        for p, g in zip(pose, grip, strict=True):
            self.pose.append(np.asarray(p, float))
            self.grip.append(float(g))
            self.label.append(label)
            self.ref.append(ref or "")
        if len(pose):
            self.last_pose, self.last_grip = np.asarray(pose[-1], float), float(grip[-1])

    def hold(self, n: int, label: str = "hold") -> None:
        """Hold the last pose and gripper command for ``n`` steps."""
        if n > 0:
            self.add(np.repeat(self.last_pose[None], n, 0), np.full(n, self.last_grip), label, "")

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
        return np.array(self.pose), np.array(self.grip), list(self.label), list(self.ref)
