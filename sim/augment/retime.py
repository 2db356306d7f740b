"""Timing of plans and per-step trajectories: human-like time warp, speed/acceleration caps.

Pure functions on plans and arrays. Poses are world-frame pos [m] + quat w,x,y,z; ``dt`` is the
control period [s].
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sim.control.plan import Plan
from sim.errors import ConfigError
from sim.transforms import quat_angle, quat_normalize

#: Human-like timing variation of the scripted demonstrators: each waypoint's duration is scaled
#: by a factor drawn uniformly from this range (slower more often than faster).
HUMAN_WARP = (0.9, 1.15)
#: Default full-stroke time of a gripper [s] when the robot declares none (a parallel gripper
#: closes in ~0.3 s; grippers that jump in one 50 ms frame are flagged by dataset linters).
GRIPPER_STROKE_S = 0.3
#: Default caps of the retime: EE linear speed [m/s], acceleration [m/s^2], angular speed [rad/s].
MAX_SPEED, MAX_ACCEL, MAX_ANGULAR = 0.6, 4.0, 2.5


def check_range(name: str, lo: float, hi: float) -> tuple[float, float]:
    """Validate a (lo, hi) factor range: 0 < lo <= hi (raise ConfigError naming ``name``)."""
    lo, hi = float(lo), float(hi)
    if not (0.0 < lo <= hi):
        raise ConfigError(f"{name} must be a range (lo, hi) with 0 < lo <= hi, got ({lo}, {hi})")
    return lo, hi


def warp_plan(
    plan: Plan,
    rng: np.random.Generator,
    lo: float = HUMAN_WARP[0],
    hi: float = HUMAN_WARP[1],
    keep: tuple[str, ...] = (),
) -> Plan:
    """Scale each waypoint duration by a random factor in [lo, hi] (human-like variation).

    The k-th waypoint of every arm shares one factor, so arms planned in lockstep (bimanual
    carry/fold) stay synchronized. Waypoints whose label is in ``keep`` keep their duration
    (timed against moving objects). One factor is drawn per waypoint index whether or not it is
    used, so the draws do not depend on the labels.
    """
    lo, hi = check_range("time_warp", lo, hi)
    n = max((len(w) for w in plan.arms.values()), default=0)
    f = rng.uniform(lo, hi, size=n)
    arms = {
        arm: [
            w if w.label in keep else dataclasses.replace(w, duration=w.duration * f[k])
            for k, w in enumerate(wps)
        ]
        for arm, wps in plan.arms.items()
    }
    return Plan(arms=arms, settle=plan.settle)


def resample(
    pose: np.ndarray, grip: np.ndarray, times: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample a trajectory given at increasing ``times`` [s] on the grid 0, dt, 2dt, ...

    Positions are interpolated linearly, orientations by slerp, gripper commands by the most
    recent sample (a command is a step input). Returns (pose (T', 7), grip (T',), src (T',)):
    ``src`` the source index each new step comes from (its segment label/ref).
    """
    pose, grip, times = np.asarray(pose, float), np.asarray(grip, float), np.asarray(times, float)
    if len(times) == 1:
        return pose.copy(), grip.copy(), np.zeros(1, int)
    n = int(np.ceil(times[-1] / dt - 1e-9)) + 1  # the last step lands on the end pose
    t = np.minimum(np.arange(n) * dt, times[-1])
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = times[i + 1] - times[i]
    s = np.where(span > 0, (t - times[i]) / np.where(span > 0, span, 1.0), 0.0)
    s = np.clip(s, 0.0, 1.0)
    out = np.empty((n, 7))
    out[:, :3] = pose[i, :3] + s[:, None] * (pose[i + 1, :3] - pose[i, :3])
    out[:, 3:] = slerp_pairs(pose[i, 3:], pose[i + 1, 3:], s)
    src = np.where(s >= 1.0 - 1e-9, i + 1, i)
    return out, grip[src], src


def slerp_pairs(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Row-wise shortest-arc slerp between unit quaternions a, b (N, 4) at fractions s (N,)."""
    a, b = quat_normalize(np.asarray(a, float)), quat_normalize(np.asarray(b, float))
    d = np.sum(a * b, axis=1)
    b = np.where(d[:, None] < 0, -b, b)
    d = np.clip(np.abs(d), -1.0, 1.0)
    th = np.arccos(d)
    sin = np.sin(th)
    small = sin < 1e-6
    w0 = np.where(small, 1.0 - s, np.sin((1.0 - s) * th) / np.where(small, 1.0, sin))
    w1 = np.where(small, s, np.sin(s * th) / np.where(small, 1.0, sin))
    return quat_normalize(w0[:, None] * a + w1[:, None] * b)


def warp_times(n: int, dt: float, factor: float) -> np.ndarray:
    """Sample times [s] of ``n`` steps played ``factor`` times slower (factor > 0)."""
    return np.arange(n) * dt * float(factor)


def capped_times(
    poses: list[np.ndarray],
    dt: float,
    max_speed: float = MAX_SPEED,
    max_accel: float = MAX_ACCEL,
    max_angular: float = MAX_ANGULAR,
) -> np.ndarray:
    """Sample times [s] for step sequences that keep EE speed and acceleration under the caps.

    ``poses`` holds one (T, 7) trajectory per arm, all the same length and sampled at ``dt``
    (arms are retimed together, so synchronized arms stay synchronized). Steps only ever get
    slower: each interval lasts max(dt, distance / allowed speed), where the allowed speed
    follows a forward/backward pass that bounds its change per step by ``max_accel``.
    """
    if max_speed <= 0 or max_accel <= 0 or max_angular <= 0:
        raise ConfigError(
            f"retime caps must be > 0, got max_speed={max_speed}, max_accel={max_accel}, "
            f"max_angular={max_angular}"
        )
    T = len(poses[0])
    if T < 2:
        return np.zeros(T)
    # per-interval need: time so that linear and angular speed stay under the caps
    need = np.full(T - 1, dt)
    lin = np.zeros(T - 1)
    for p in poses:
        d = np.linalg.norm(np.diff(p[:, :3], axis=0), axis=1)
        a = quat_angle(p[:-1, 3:], p[1:, 3:])
        need = np.maximum(need, np.maximum(d / max_speed, a / max_angular))
        lin = np.maximum(lin, d)
    v = lin / need  # speed per interval [m/s] after the speed cap
    # acceleration: the speed may change by at most max_accel * dt per interval
    for k in range(1, len(v)):
        v[k] = min(v[k], v[k - 1] + max_accel * need[k - 1]) if v[k] > 0 else v[k]
    for k in range(len(v) - 2, -1, -1):
        v[k] = min(v[k], v[k + 1] + max_accel * need[k + 1]) if v[k] > 0 else v[k]
    v0 = min(max_accel * dt, v[0]) if len(v) else 0.0  # start from rest
    if len(v):
        v[0] = max(v0, 1e-9) if lin[0] > 0 else v[0]
    dur = np.where(lin > 0, np.maximum(need, lin / np.maximum(v, 1e-9)), need)
    return np.concatenate([[0.0], np.cumsum(dur)])


def rate_limit(grip: np.ndarray, dt: float, stroke_s: float = GRIPPER_STROKE_S) -> np.ndarray:
    """Gripper command (T,) in [0, 1] moving at most one full stroke per ``stroke_s`` [s]."""
    if stroke_s <= 0:
        return np.asarray(grip, float).copy()
    step = dt / stroke_s
    out = np.asarray(grip, float).copy()
    for k in range(1, len(out)):
        out[k] = out[k - 1] + np.clip(out[k] - out[k - 1], -step, step)
    return out
