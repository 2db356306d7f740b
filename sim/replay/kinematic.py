"""Kinematic playback: mapped joint positions per step on any MJCF (``mj_forward`` only)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from sim.episode import Episode
from sim.errors import ConfigError
from sim.render import CameraRig
from sim.replay.camera import FreeCameraRig, write_replay_video
from sim.replay.mjcf import load_replay_model
from sim.replay.report import ReplayReport
from sim.replay.source import source_joints
from sim.retarget import map_joints

_SCALAR_JOINTS = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def replay_kinematic(
    ep: Episode,
    model: str | Path | mujoco.MjModel,
    joint_map: Mapping[str, str] | None = None,
    camera: str | None = None,
    size: tuple[int, int] = (240, 320),
    video: str | Path | None = None,
    stride: int = 1,
) -> ReplayReport:
    """Play the episode's joint positions on a model kinematically and render a video.

    Source joints (``qpos``, else ``action``) are matched to the model's hinge/slide joints by
    :func:`sim.retarget.map_joints` (or ``joint_map`` src -> dst name); unmatched source joints
    (e.g. hand joints the model lacks) are listed in the report and ignored. Every other joint,
    including a floating base (e.g. the G1's ``floating_base_joint``), stays at ``qpos0``
    (standing height). Only ``mj_forward`` runs: no physics.

    Args:
        camera: MJCF camera name; None uses a free camera looking at the torso.
        size: (height, width) [px]. stride: render every ``stride``-th step (video at fps/stride).
    """
    t0 = time.perf_counter()
    m = load_replay_model(model)
    if stride < 1:
        raise ConfigError(f"replay stride must be >= 1, got {stride}")
    names, values, fld = source_joints(ep)
    dst = [m.joint(j).name for j in range(m.njnt)]
    scalar = {i for i in range(m.njnt) if int(m.jnt_type[i]) in _SCALAR_JOINTS}
    mapping = {s: d for s, d in map_joints(names, dst, joint_map).items() if d in scalar}
    if not mapping:
        raise ConfigError(
            f"no source joint of {ep.meta.source} maps to a hinge/slide joint of "
            "the replay model; pass joint_map"
        )
    src_idx = np.array(list(mapping))
    adr = np.array([m.jnt_qposadr[d] for d in mapping.values()])
    report = ReplayReport(
        mode="kinematic",
        source=ep.meta.source,
        robot=ep.meta.robot,
        task=ep.meta.task or None,
        frames=len(ep),
        fps=float(ep.meta.fps),
        steps=len(ep),
        mapped_joints={names[s]: dst[d] for s, d in mapping.items()},
        unmatched_joints=[n for i, n in enumerate(names) if i not in mapping],
    )
    report.notes.append(f"joint values from episode field {fld!r}; other joints at qpos0")
    data = mujoco.MjData(m)
    rig: Any = None
    if video is not None:
        if camera is None:
            rig = FreeCameraRig(m, size)
        else:
            rig = CameraRig(m, {camera: camera}, *size)
    frames: list[np.ndarray] = []
    try:
        for t in range(len(ep)):
            data.qpos[:] = m.qpos0
            data.qpos[adr] = values[t, src_idx]
            mujoco.mj_forward(m, data)
            if rig is not None and t % stride == 0:
                frames.append(next(iter(rig.render(data).values())))
    finally:
        if rig is not None:
            rig.close()
    write_replay_video(report, frames, video, ep.meta.fps, stride)
    report.seconds = time.perf_counter() - t0
    return report
