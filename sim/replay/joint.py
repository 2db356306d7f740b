"""Open-loop joint replay: source joint targets to a scene's position servos, physics stepped."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.episode import Episode
from sim.model.scene import Scene
from sim.replay.camera import write_replay_video
from sim.replay.report import ReplayReport
from sim.replay.source import resample_times, source_joints
from sim.retarget import map_joints
from sim.transforms import interp_linear


def judge(scene: Scene) -> bool | None:
    """Task success judged in physics, None without a task."""
    return bool(scene.task.success(scene)) if scene.task is not None else None


def replay_joint(
    ep: Episode,
    scene: Scene,
    joint_map: Mapping[str, str] | None = None,
    rig: Any = None,
    video: str | Path | None = None,
    settle: float = 0.5,
) -> ReplayReport:
    """Open-loop joint targets: source ``action`` (else ``qpos``) -> ``scene.action_names``.

    Columns are matched by name (gripper columns to ``<arm>_gripper``); scene actions without a
    source column hold their current value. The targets are resampled (linearly) to the scene's
    control rate and held ``settle`` [s] at the end before success is judged. The scene should
    already be reset (object poses as wanted).
    """
    t0 = time.perf_counter()
    names, values, fld = source_joints(ep, prefer="action")
    mapping = map_joints(names, scene.action_names, joint_map)
    t_src, t_dst = resample_times(ep, scene.control_dt)
    cmd = interp_linear(t_src, values, t_dst)
    n_hold = int(round(settle / scene.control_dt))
    cmd = np.concatenate([cmd, np.repeat(cmd[-1:], n_hold, 0)])
    base = scene.current_action()
    n_joint = len(scene.joint_names)
    src_idx = np.array(list(mapping))
    dst_idx = np.array(list(mapping.values()))
    achieved, wanted, frames = [], [], []
    action = base.copy()
    for t in range(len(cmd)):
        action[dst_idx] = cmd[t, src_idx]
        if rig is not None:
            frames.append(next(iter(rig.render(scene.data).values())))
        scene.set_action(action)
        scene.step()
        wanted.append(action[:n_joint].copy())
        achieved.append(scene.joint_qpos())
    err = np.abs(np.array(achieved) - np.array(wanted))
    report = ReplayReport(
        mode="joint",
        source=ep.meta.source,
        robot=scene.robot.name,
        task=getattr(scene.task, "name", None),
        frames=len(ep),
        fps=float(ep.meta.fps),
        steps=len(cmd),
        mapped_joints={names[s]: scene.action_names[d] for s, d in mapping.items()},
        unmatched_joints=[n for i, n in enumerate(names) if i not in mapping],
        success=judge(scene),
    )
    for j in sorted(set(dst_idx.tolist())):
        if j < n_joint:
            e = err[:, j]
            report.joint_err[scene.joint_names[j]] = {
                "rms": float(np.sqrt(np.mean(e**2))),
                "max": float(e.max()),
            }
    report.notes.append(
        f"targets from episode field {fld!r}; error = commanded vs achieved "
        "after one control period"
    )
    write_replay_video(report, frames, video, 1.0 / scene.control_dt, 1)
    report.seconds = time.perf_counter() - t0
    return report
