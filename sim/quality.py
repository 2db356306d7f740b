"""Quality measures of a generation run: failure causes, pose-space coverage, smoothness.

Pure functions on arrays (the plots at the end are the only I/O). Used by :mod:`sim.generate` to
write ``meta/demoforge_report.json`` and ``meta/quality.png``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Failure causes the report counts (a source or check may add its own).
CAUSES = (
    "grasp_missed",
    "object_dropped",
    "collision",
    "timeout",
    "physics_unstable",
    "unreachable",
    "ik_failed",
    "task_failed",
)

#: Subtask signals that mean "an object is held" in the task files.
_GRASP_SIGNALS = ("grasped", "holding", "lifted", "picked")


@dataclass(frozen=True)
class StabilityLimits:
    """Bounds a physically plausible episode stays within (checked on the recorded data).

    Attributes:
        max_joint_speed: |qvel| bound for every robot joint [rad/s or m/s].
        max_joint_accel: |dqvel/dt| bound between control steps [rad/s^2]; catches chattering
            joints (a joint flipping between +-5 rad/s every 50 ms step gives 200 rad/s^2).
        max_object_speed: bound on task-object speed [m/s] (objects flung by a contact blow-up).
    """

    max_joint_speed: float = 8.0
    max_joint_accel: float = 150.0
    max_object_speed: float = 3.0


def stability_violation(
    qvel: np.ndarray,
    objects: Mapping[str, np.ndarray],
    dt: float,
    joint_names: Sequence[str],
    limits: StabilityLimits,
) -> str | None:
    """Describe the first violated bound (joint/object named, step, value), or None."""
    qvel = np.asarray(qvel)
    if qvel.size:
        speed = np.abs(qvel)
        if speed.max() > limits.max_joint_speed:
            t, j = np.unravel_index(int(speed.argmax()), speed.shape)
            return (
                f"joint {joint_names[j]!r} moves at {speed[t, j]:.1f} rad/s at step {t} "
                f"(limit {limits.max_joint_speed})"
            )
        if len(qvel) > 1:
            acc = np.abs(np.diff(qvel, axis=0)) / dt
            if acc.max() > limits.max_joint_accel:
                t, j = np.unravel_index(int(acc.argmax()), acc.shape)
                return (
                    f"joint {joint_names[j]!r} accelerates at {acc[t, j]:.0f} rad/s^2 at "
                    f"step {t + 1} (limit {limits.max_joint_accel}; chattering?)"
                )
    for name, pose in objects.items():
        pose = np.asarray(pose)
        if len(pose) > 1:
            v = np.linalg.norm(np.diff(pose[:, :3], axis=0), axis=1) / dt
            if v.max() > limits.max_object_speed:
                t = int(v.argmax())
                return (
                    f"object {name!r} moves at {v[t]:.1f} m/s at step {t + 1} "
                    f"(limit {limits.max_object_speed})"
                )
    return None


def classify_failure(subtasks: Mapping[str, np.ndarray]) -> str:
    """Cause of a physically stable attempt that did not succeed, from its subtask signals.

    Never held the object -> ``grasp_missed``; held it but not at the end -> ``object_dropped``;
    otherwise (held to the end, or a task without a grasp signal) -> ``timeout``.
    """
    held = [
        np.asarray(v, bool)
        for k, v in subtasks.items()
        if any(s in k.lower() for s in _GRASP_SIGNALS)
    ]
    if held:
        ever = any(h.any() for h in held)
        at_end = any(h[-1] for h in held if len(h))
        if not ever:
            return "grasp_missed"
        if not at_end:
            return "object_dropped"
    return "timeout"


def smoothness(qvel: np.ndarray, dt: float, jump_accel: float = 50.0) -> dict[str, float]:
    """Max joint speed [rad/s], max jerk [rad/s^3] and the number of flagged jumps.

    A jump is a control step whose joint acceleration exceeds ``jump_accel`` [rad/s^2].
    """
    qvel = np.asarray(qvel)
    if len(qvel) < 3:
        return {
            "max_joint_speed": float(np.abs(qvel).max(initial=0.0)),
            "max_joint_jerk": 0.0,
            "jumps": 0,
        }
    acc = np.diff(qvel, axis=0) / dt
    jerk = np.diff(acc, axis=0) / dt
    return {
        "max_joint_speed": float(np.abs(qvel).max()),
        "max_joint_jerk": float(np.abs(jerk).max()),
        "jumps": int((np.abs(acc) > jump_accel).any(axis=1).sum()),
    }


def coverage(sampled: np.ndarray, success: np.ndarray, bins: int = 8) -> dict[str, Any]:
    """Share of object-pose bins reached by successes vs by all sampled resets.

    Args:
        sampled: (N, 2) object position at reset (x, y) [m, world], one row per attempt.
        success: (N,) bool, whether the attempt succeeded.
        bins: bins per axis over the sampled range.

    Returns:
        ``{"bins_sampled", "bins_succeeded", "share", "range"}``; share is succeeded/sampled.
    """
    sampled = np.asarray(sampled, float).reshape(-1, 2)
    success = np.asarray(success, bool)
    if len(sampled) == 0:
        return {"bins_sampled": 0, "bins_succeeded": 0, "share": 0.0, "range": []}
    lo, hi = sampled.min(axis=0), sampled.max(axis=0)
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
    idx = np.minimum(((sampled - lo) / span * bins).astype(int), bins - 1)
    keys = idx[:, 0] * bins + idx[:, 1]
    all_bins, ok_bins = set(keys.tolist()), set(keys[success].tolist())
    return {
        "bins_sampled": len(all_bins),
        "bins_succeeded": len(ok_bins),
        "share": len(ok_bins) / max(len(all_bins), 1),
        "range": [lo.tolist(), hi.tolist()],
    }


def plot_quality(
    report: Mapping[str, Any], sampled: np.ndarray, success: np.ndarray, path: str | Path
) -> Path:
    """Failure causes, reset-pose coverage and smoothness in one PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.8))
    ax = fig.subplots(1, 3)
    fails = dict(report.get("failures", {}))
    ax[0].barh(list(fails) or ["none"], list(fails.values()) or [0], color="tab:red")
    ax[0].tick_params(axis="y", labelsize=8)
    ax[0].set_title(
        f"failures ({report.get('attempts', 0)} attempts, DGR {report.get('success_rate', 0):.0%})"
    )
    s = np.asarray(sampled, float).reshape(-1, 2)
    ok = np.asarray(success, bool)
    if len(s):
        ax[1].scatter(s[~ok, 0], s[~ok, 1], c="tab:red", s=12, label="failed")
        ax[1].scatter(s[ok, 0], s[ok, 1], c="tab:green", s=12, label="succeeded")
        ax[1].legend(fontsize=7)
    ax[1].set_title("first object at reset (x, y) [m]")
    ax[1].set_aspect("equal", adjustable="datalim")
    sm = report.get("quality", {}).get("smoothness", {})
    vals = sm.get("max_joint_speed_per_episode", [])
    ax[2].hist(vals or [0], bins=20, color="tab:blue")
    ax[2].set_title("max joint speed per episode [rad/s]")
    # fixed margins: tight_layout measured every text box and cost 0.4 s per dataset
    fig.subplots_adjust(left=0.13, right=0.99, bottom=0.12, top=0.91, wspace=0.3)
    path = Path(path)
    fig.savefig(path, dpi=80)
    return path
