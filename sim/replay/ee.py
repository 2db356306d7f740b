"""EE replay: source EE tracks mapped onto the scene's robot and followed by IK + physics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from sim.control.ik import ArmIK
from sim.control.plan import Targets
from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError, SchemaError, UnknownNameError
from sim.model.scene import Scene
from sim.replay.camera import write_replay_video
from sim.replay.joint import judge
from sim.replay.report import ReplayReport, err_stats
from sim.replay.source import resample_times
from sim.retarget import ee_calibrated, ee_object_relative
from sim.rollout import track
from sim.transforms import interp_linear, interp_slerp, quat_angle

EE_FRAMES = ("calibrated", "object", "world")


def gripper_command(ep: Episode, arm: str) -> np.ndarray | None:
    """Commanded opening (T,) of ``arm`` in [0, 1]: ``gripper_cmd[arm]`` (schema 1.1), else the
    action column ``<arm>_gripper``, else the measured ``gripper`` track (a measured opening
    stays > 0 around a grasped object, which would never squeeze it, so commands come first)."""
    if arm in ep.gripper_cmd:
        return np.asarray(ep.gripper_cmd[arm], np.float64)
    col = f"{arm}_gripper"
    if ep.action is not None and col in ep.action_names:
        return np.asarray(ep.action, np.float64)[:, ep.action_names.index(col)]
    g = ep.gripper.get(arm)
    return None if g is None else np.asarray(g, np.float64)


def ee_targets(
    ep: Episode,
    scene: Scene,
    arm_map: Mapping[str, str] | None = None,
    mode: str = "calibrated",
    scale: float = 1.0,
    object_map: Mapping[str, str] | None = None,
    settle: float = 0.5,
) -> tuple[Targets, dict[str, str]]:
    """Per-control-step EE targets (world frame) for the scene's robot from the source EE tracks.

    Args:
        arm_map: source arm -> scene arm (default: same names, arms both sides have).
        mode: "calibrated" (source motion relative to its first frame, applied from the robot's
            current EE pose, translations times ``scale``), "object" (pose relative to the nearest
            mapped object, ``object_map`` src -> scene object, source object pose at frame 0),
            or "world" (poses as-is).
        settle: hold the last target this long [s].

    Grippers: :func:`gripper_command` of each source arm, else open.

    Returns:
        (targets, used arm map).
    """
    ep.require("ee")
    if mode not in EE_FRAMES:
        raise UnknownNameError("EE replay mode", mode, EE_FRAMES)
    arm_map = dict(arm_map) if arm_map else {a: a for a in ep.ee if a in scene.arms}
    if not arm_map:
        raise ConfigError(
            f"no source arm {sorted(ep.ee)} is a scene arm {scene.arms}; "
            "pass arm_map (source arm -> scene arm)"
        )
    for s, d in arm_map.items():
        if s not in ep.ee:
            raise SchemaError(f"arm_map source arm {s!r} has no EE track; tracks: {sorted(ep.ee)}")
        if d not in scene.arms:
            raise ConfigError(f"arm_map target arm {d!r} is not a scene arm {scene.arms}")
    if mode == "object":
        if not object_map:
            raise ConfigError(
                "EE replay mode 'object' needs object_map {source object: scene object}"
            )
        for s, d in object_map.items():
            if s not in ep.objects:
                raise SchemaError(
                    f"object_map source object {s!r} not in the episode "
                    f"(objects: {sorted(ep.objects)})"
                )
            if mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_BODY, d) < 0:
                raise ConfigError(f"object_map target object {d!r} is not a scene body")
    t_src, t_dst = resample_times(ep, scene.control_dt)
    n_hold = int(round(settle / scene.control_dt))
    anchored = _segment_anchored(ep, scene, arm_map, object_map) if mode == "object" else None
    pose, grip, label = {}, {}, {}
    for s, d in arm_map.items():
        src = np.asarray(ep.ee[s], np.float64)
        if mode == "calibrated":
            p = ee_calibrated(src, scene.ee_pose(d), scale=scale)
        elif anchored is not None:
            p = anchored[s]
        elif mode == "object":
            assert object_map is not None
            near = min(object_map, key=lambda o: np.linalg.norm(ep.objects[o][0, :3] - src[0, :3]))
            p = ee_object_relative(src, ep.objects[near][0], scene.body_pose(object_map[near]))
        else:
            p = src
        res = np.concatenate(
            [interp_linear(t_src, p[:, :3], t_dst), interp_slerp(t_src, p[:, 3:], t_dst)], 1
        )
        g = gripper_command(ep, s)
        g = np.ones(len(t_dst)) if g is None else np.clip(interp_linear(t_src, g, t_dst), 0, 1)
        pose[d] = np.concatenate([res, np.repeat(res[-1:], n_hold, 0)])
        grip[d] = np.concatenate([g, np.repeat(g[-1:], n_hold)])
        label[d] = ["replay"] * len(t_dst) + ["settle"] * n_hold
    return Targets(pose=pose, gripper=grip, label=label), arm_map


def _segment_anchored(
    ep: Episode, scene: Scene, arm_map: Mapping[str, str], object_map: Mapping[str, str] | None
) -> dict[str, np.ndarray] | None:
    """Object mode with the ``demos`` source's anchor rule: the episode cut into the task's
    subtasks (signals, else gripper/distance heuristics) and each segment's EE poses kept
    relative to *its* reference object (grasp: the picked object; place: the target), mapped to
    that object's pose in the scene. None when the scene has no task or the episode cannot be
    segmented (then the nearest object at frame 0 anchors the whole track)."""
    import dataclasses

    from sim.augment.segment import segment_episode
    from sim.augment.transform import object_anchored_targets
    from sim.errors import PlanError
    from sim.tasks.base import ref_pose

    task = scene.task
    if task is None or not object_map:
        return None
    to_src = {d: s for s, d in object_map.items()}  # task object -> source object
    targets = set(arm_map.values())
    spec = []
    for st in task.subtask_spec(scene):
        if st.arm not in targets and len(targets) == 1:  # the task's choice of arm -> ours
            st = dataclasses.replace(st, arm=next(iter(targets)))
        if st.arm in targets and (st.ref is None or st.ref in to_src):
            spec.append(st)
    if not spec:
        return None
    try:
        segs = segment_episode(ep, spec, {d: s for s, d in arm_map.items()}, to_src)
    except PlanError:
        return None

    def frame(name: str, poses: Mapping[str, np.ndarray]) -> np.ndarray:
        if name in object_map:  # a source object: its poses by task name
            return ref_pose(
                task, object_map[name], {object_map.get(k, k): v for k, v in poses.items()}
            )
        return ref_pose(task, name, poses)

    scene_objects = {o: scene.body_pose(o) for o in task.objects}
    return object_anchored_targets(ep, scene_objects, segs, frame)


def replay_ee(
    ep: Episode,
    scene: Scene,
    ik: ArmIK,
    arm_map: Mapping[str, str] | None = None,
    mode: str = "calibrated",
    scale: float = 1.0,
    object_map: Mapping[str, str] | None = None,
    rig: Any = None,
    video: str | Path | None = None,
    settle: float = 0.5,
) -> tuple[Episode, ReplayReport]:
    """Follow the source EE tracks on the scene's robot with IK + physics (see :func:`ee_targets`).

    The scene should already be reset (e.g. same seed as the source for ``mode="world"``).
    Errors compare the desired target of step t with the EE pose reached after that step's
    control period (position [m], orientation [rad]); joint errors are reported when the source
    has ``qpos`` for the scene's joints. ``rig`` (CameraRig or :class:`FreeCameraRig`) renders
    each step; its first camera is written to ``video`` if given.

    Returns:
        (the replayed Episode recorded in physics, report).
    """
    t0 = time.perf_counter()
    targets, used = ee_targets(ep, scene, arm_map, mode, scale, object_map, settle)
    rec = track(scene, ik, targets, rig)
    success = judge(scene)
    meta = EpisodeMeta(
        task=getattr(scene.task, "name", "") or ep.meta.task,
        robot=scene.robot.name,
        fps=1.0 / scene.control_dt,
        source=f"replay:{ep.meta.source}",
        success=success,
        seed=ep.meta.seed,
        instruction=ep.meta.instruction,
        provenance={
            "replay": {
                "mode": "ee",
                "ee_frame": mode,
                "scale": scale,
                "arm_map": used,
                "object_map": dict(object_map or {}),
            }
        },
    )
    out = rec.episode(scene, meta)
    report = ReplayReport(
        mode="ee",
        source=ep.meta.source,
        robot=scene.robot.name,
        task=getattr(scene.task, "name", None),
        frames=len(ep),
        fps=float(ep.meta.fps),
        steps=len(targets),
        ee_frame=mode,
        scale=float(scale),
        success=success,
    )
    for d in used.values():
        achieved = np.concatenate([out.ee[d][1:], scene.ee_pose(d)[None]])
        want = targets.pose[d]
        report.ee_pos_err[d] = err_stats(np.linalg.norm(achieved[:, :3] - want[:, :3], axis=1))
        report.ee_rot_err[d] = err_stats(quat_angle(achieved[:, 3:], want[:, 3:]))
    if ep.qpos is not None and set(scene.joint_names) <= set(ep.joint_names) and mode == "world":
        t_src, t_dst = resample_times(ep, scene.control_dt)
        cols = [ep.joint_names.index(j) for j in scene.joint_names]
        ref = interp_linear(t_src, np.asarray(ep.qpos, np.float64)[:, cols], t_dst)
        got = out.qpos[: len(ref)]
        for i, j in enumerate(scene.joint_names):
            e = np.abs(got[:, i] - ref[:, i])
            report.joint_err[j] = {"rms": float(np.sqrt(np.mean(e**2))), "max": float(e.max())}
    if video is not None and out.images:
        write_replay_video(report, list(next(iter(out.images.values()))), video, meta.fps, 1)
    report.seconds = time.perf_counter() - t0
    return out, report
