"""One replay from a :class:`~sim.replay.config.ReplayConfig`: read, build the scene, replay,
write ``report.json`` (+ ``replay.mp4``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.replay.camera import scene_rig
from sim.replay.config import ReplayConfig
from sim.replay.ee import replay_ee
from sim.replay.joint import replay_joint
from sim.replay.kinematic import replay_kinematic
from sim.replay.report import ReplayReport
from sim.replay.source import read_one


def run_replay(cfg: ReplayConfig | Mapping[str, Any]) -> ReplayReport:
    """Run one replay and write its outputs into ``cfg.output``.

    Raises:
        SimError: bad config (checked before reading or writing), unreadable source, ...
    """
    from sim.control.ik import ArmIK
    from sim.model.robot import load_robot
    from sim.tasks import build_scene

    c = ReplayConfig.from_mapping(cfg).validate()
    size = (int(c.height), int(c.width))
    ep = read_one(str(c.source), c.format, int(c.episode))
    out = Path(c.output)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "replay.mp4"
    if c.mode == "kinematic":
        model = c.model or load_robot(c.robot).mjcf
        report = replay_kinematic(
            ep, model, dict(c.joint_map) or None, c.camera, size, video, int(c.stride)
        )
    else:
        task, params = c.task, {}
        if isinstance(task, Mapping):
            task, params = task.get("name"), dict(task.get("params") or {})
        scene = build_scene(c.robot, task, control_hz=float(c.control_hz), task_cfg=params)
        note = reset_like_source(scene, ep, c.seed)
        rig = scene_rig(scene, c.camera, size)
        try:
            if c.mode == "joint":
                report = replay_joint(ep, scene, dict(c.joint_map) or None, rig, video)
            else:
                frame = c.ee_frame
                if frame == "auto":
                    frame = "world" if ep.meta.robot == scene.robot.name else "calibrated"
                _, report = replay_ee(
                    ep,
                    scene,
                    ArmIK.for_scene(scene),
                    dict(c.arm_map) or None,
                    frame,
                    float(c.scale),
                    dict(c.object_map) or None,
                    rig,
                    video,
                )
        finally:
            rig.close()
        report.notes.append(note)
    report.to_json(out / "report.json")
    return report


def reset_like_source(scene: Any, ep: Any, seed: int | None = None) -> str:
    """Reset the scene as the source episode's was; return a note saying how.

    An explicit ``seed`` wins. Generated episodes record their reset stream's seed
    (``provenance["streams"]["reset"]``, with ``level``): the same objects poses come back.
    Otherwise the episode's ``meta.seed``, else 0.
    """
    prov = ep.meta.provenance or {}
    streams = prov.get("streams") if isinstance(prov.get("streams"), dict) else {}
    if seed is None and "reset" in streams:
        level = prov.get("level")
        scene.reset(np.random.default_rng(int(streams["reset"])), level)
        return f"scene reset with the source's reset stream {streams['reset']} (level {level})"
    if seed is None:
        seed = ep.meta.seed if ep.meta.seed is not None else 0
    scene.reset(np.random.default_rng(int(seed)))
    return f"scene reset with seed {seed}"


def summary(r: ReplayReport) -> str:
    """One line: mode, steps, success, EE error, video."""
    parts = [f"mode={r.mode}", f"steps={r.steps}", f"success={r.success}"]
    if r.ee_pos_err:
        parts.append(
            f"EE error mean {r.ee_pos_err_mean * 100:.2f} cm / "
            f"{np.degrees(r.ee_rot_err_mean):.2f} deg"
        )
    if r.video:
        parts.append(f"video {r.video} ({r.video_frames} frames {r.video_size})")
    return ", ".join(parts)
