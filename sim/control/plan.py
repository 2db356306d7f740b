"""Waypoint plans and their time parameterization (minimum jerk).

A plan lists, per arm, EE waypoints in the world frame with a gripper opening and a duration.
Augmentation transforms plans (object-centric segments carry ``ref``); the executor turns a
plan into per-control-step targets with :func:`plan_targets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.errors import SchemaError
from sim.transforms import quat_normalize, slerp


@dataclass(frozen=True)
class Waypoint:
    """Reach ``pose`` (world frame: pos [m] + quat w,x,y,z) after ``duration`` [s].

    ``gripper`` is the commanded opening in [0, 1] (0 = closed), applied from the start of the
    segment when ``grip_at_start`` else at its end. ``label`` names the subtask segment;
    ``ref`` the object the pose is relative to (None = world/robot motion).
    """

    pose: np.ndarray
    duration: float
    gripper: float
    label: str = ""
    ref: str | None = None
    grip_at_start: bool = False


@dataclass
class Plan:
    """Per-arm waypoint sequences; arms move concurrently, each on its own timeline."""

    arms: dict[str, list[Waypoint]] = field(default_factory=dict)
    settle: float = 0.5  # hold the last targets this long [s] before judging success

    def add(self, arm: str, *wps: Waypoint) -> Plan:
        self.arms.setdefault(arm, []).extend(wps)
        return self

    def duration(self) -> float:
        return max((sum(w.duration for w in wps) for wps in self.arms.values()), default=0.0)


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling: 10s^3 - 15s^4 + 6s^5 for s in [0, 1]."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


@dataclass
class Targets:
    """Per-control-step targets of one attempt, what every plan source returns.

    Attributes:
        pose: arm -> (T, 7) EE target, world frame: pos [m] + quat w,x,y,z.
        gripper: arm -> (T,) commanded opening in [0, 1] (0 = closed).
        label: arm -> T segment labels ('' = none).
        ref: arm -> T reference objects of the segments ('' = world/robot motion).
        provenance: what the source did (source episodes, segments, transforms), JSON-able.
    """

    pose: dict[str, np.ndarray]
    gripper: dict[str, np.ndarray]
    label: dict[str, list[str]]
    ref: dict[str, list[str]] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.pose.values()))) if self.pose else 0


def plan_targets(
    plan: Plan, start: dict[str, np.ndarray], start_grip: dict[str, float], dt: float
) -> Targets:
    """Sample a plan at the control period ``dt`` [s], starting from the current EE poses.

    Each segment is interpolated with minimum-jerk timing (positions linear in the scaled time,
    orientations by slerp). Arms that finish early hold their last waypoint.
    """
    total = plan.duration() + plan.settle
    T = int(np.ceil(total / dt - 1e-9)) + 1
    t = np.arange(T) * dt
    pose, grip, label, ref = {}, {}, {}, {}
    for arm, wps in plan.arms.items():
        if arm not in start:
            raise SchemaError(f"plan moves arm {arm!r}, which the robot lacks ({sorted(start)})")
        p = np.empty((T, 7))
        g = np.empty(T)
        lab = [""] * T
        refs = [""] * T
        prev, prev_g, t0 = np.asarray(start[arm], float), float(start_grip.get(arm, 1.0)), 0.0
        p[:] = prev
        g[:] = prev_g
        for w in wps:
            if w.duration <= 0:
                raise SchemaError(f"waypoint {w.label!r} of arm {arm!r} has duration <= 0")
            t1 = t0 + w.duration
            sel = (t > t0 - 1e-9) & (t <= t1 + 1e-9)
            s = min_jerk((t[sel] - t0) / w.duration)
            target = np.asarray(w.pose, float)
            p[sel, :3] = prev[:3] + s[:, None] * (target[:3] - prev[:3])
            p[sel, 3:] = slerp(prev[3:], target[3:], s)
            g[sel] = w.gripper if w.grip_at_start else np.where(s >= 1.0 - 1e-9, w.gripper, prev_g)
            for i in np.flatnonzero(sel):
                lab[i] = w.label
                refs[i] = w.ref or ""
            after = t > t1 + 1e-9
            p[after] = target
            g[after] = w.gripper
            prev, prev_g, t0 = target, w.gripper, t1
        p[:, 3:] = quat_normalize(p[:, 3:])
        pose[arm], grip[arm], label[arm], ref[arm] = p, g, lab, refs
    return Targets(pose=pose, gripper=grip, label=label, ref=ref)
