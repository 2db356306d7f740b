"""Replay a source episode: kinematic playback, open-loop joint targets, or EE tracking via IK.

Three modes, all returning a :class:`ReplayReport` (JSON-serializable):

- :func:`replay_kinematic`: write mapped joint positions per step into any MJCF (no physics,
  ``mj_forward`` only) and render a video, e.g. real Unitree G1 data on the G1 model.
- :func:`replay_joint`: send the source's joint targets to a scene's position servos and step
  physics; reports joint tracking error and task success.
- :func:`replay_ee`: map the source's EE tracks onto the scene's robot (calibrated at the first
  frame, object-relative, or as-is in the world frame), follow them with IK + physics
  (:func:`sim.rollout.track`) and report EE tracking error and task success.

Frames: every pose is in the scene's world frame, pos [m] + quat w,x,y,z.
The ``demoforge-replay`` command (:func:`main`) wires these to Hydra (``conf/replay.yaml``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import hydra
import mujoco
import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sim.control.ik import ArmIK
from sim.control.plan import Targets
from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError, SchemaError, SimError, UnknownNameError
from sim.io.atomic import atomic_write_json
from sim.io.teleop_log import interp_linear, interp_slerp
from sim.model.scene import Scene
from sim.paths import conf_dir
from sim.render import CameraRig, make_renderer, resolve_cameras, write_video
from sim.retarget import ee_calibrated, ee_object_relative, map_joints
from sim.rollout import track
from sim.transforms import quat_angle

MODES = ("ee", "joint", "kinematic")
EE_FRAMES = ("calibrated", "object", "world")
_SCALAR_JOINTS = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
#: bodies a free camera looks at, first found wins (then the first body under the world).
LOOKAT_BODIES = ("torso_link", "torso", "pelvis", "base_link", "base")


@dataclass
class ReplayReport:
    """What a replay did and how well it tracked.

    Attributes:
        mode: "kinematic", "joint" or "ee" (+ ``ee_frame`` for EE replays).
        source: the episode's source string; ``frames`` its length, ``fps`` its rate [Hz].
        steps: replayed steps (after resampling to the scene's control rate) [-].
        ee_pos_err: arm -> {"mean", "max"} distance desired target vs achieved EE [m].
        ee_rot_err: arm -> {"mean", "max"} rotation angle desired vs achieved [rad].
        joint_err: joint -> {"rms", "max"} commanded/source vs achieved position [rad or m].
        success: task success judged by physics; None without a task or physics.
        video: mp4 path, ``video_frames`` its frame count, ``video_size`` (H, W) [px].
    """

    mode: str
    source: str
    robot: str
    task: str | None
    frames: int
    fps: float
    steps: int = 0
    ee_frame: str | None = None
    scale: float = 1.0
    ee_pos_err: dict[str, dict[str, float]] = field(default_factory=dict)
    ee_rot_err: dict[str, dict[str, float]] = field(default_factory=dict)
    joint_err: dict[str, dict[str, float]] = field(default_factory=dict)
    mapped_joints: dict[str, str] = field(default_factory=dict)
    unmatched_joints: list[str] = field(default_factory=list)
    success: bool | None = None
    video: str | None = None
    video_frames: int = 0
    video_size: tuple[int, int] | None = None
    video_stride: int = 1
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ee_pos_err_mean(self) -> float:
        """Mean EE position error over arms [m] (nan if none)."""
        v = [e["mean"] for e in self.ee_pos_err.values()]
        return float(np.mean(v)) if v else float("nan")

    @property
    def ee_rot_err_mean(self) -> float:
        """Mean EE orientation error over arms [rad] (nan if none)."""
        v = [e["mean"] for e in self.ee_rot_err.values()]
        return float(np.mean(v)) if v else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | Path) -> Path:
        """Write the report as JSON, atomically."""
        atomic_write_json(path, self.to_dict())
        return Path(path)


# -------------------------------------------------------------------------------- rendering


def _lookat_body(model: mujoco.MjModel) -> int:
    for name in LOOKAT_BODIES:
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if b >= 0:
            return b
    return 1 if model.nbody > 1 else 0


class FreeCameraRig:
    """Renders one free camera (``mujoco.MjvCamera``) looking at a body; CameraRig-compatible.

    Args:
        model: the model to render.
        size: (height, width) [px].
        body: body to look at (default: torso/pelvis/first body).
        distance: camera distance from the body [m]; azimuth/elevation [deg] (azimuth 150 looks
            at a robot facing +x from its front-left).
    """

    def __init__(self, model: mujoco.MjModel, size: tuple[int, int] = (240, 320),
                 body: str | None = None, distance: float = 1.8, azimuth: float = 150.0,
                 elevation: float = -20.0, name: str = "free"):
        h, w = int(size[0]), int(size[1])
        if h <= 0 or w <= 0:
            raise ConfigError(f"replay video size must be > 0, got {h}x{w}")
        model.vis.global_.offwidth = max(w, model.vis.global_.offwidth)
        model.vis.global_.offheight = max(h, model.vis.global_.offheight)
        self.renderer = make_renderer(model, h, w)
        flags = self.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        if body is not None:
            self.body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            if self.body < 0:
                raise ConfigError(f"camera look-at body {body!r} is not in the model")
        else:
            self.body = _lookat_body(model)
        self.cam = mujoco.MjvCamera()
        self.cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.cam.distance, self.cam.azimuth, self.cam.elevation = distance, azimuth, elevation
        self.name = name

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """One (H, W, 3) uint8 frame of the current state (after mj_forward/kinematics)."""
        self.cam.lookat[:] = data.xpos[self.body]
        self.renderer.update_scene(data, camera=self.cam)
        return {self.name: self.renderer.render().copy()}

    def close(self) -> None:
        self.renderer.close()


def _scene_rig(scene: Scene, camera: str | None, size: tuple[int, int]) -> Any:
    """A free camera (``camera`` None) or one named robot/MJCF camera of the scene."""
    if camera is None:
        return FreeCameraRig(scene.model, size)
    return CameraRig(scene.model, resolve_cameras(scene.robot.cameras, [camera]), *size)


def _write(report: ReplayReport, frames: list[np.ndarray], video: str | Path | None,
           fps: float, stride: int) -> None:
    if video is None or not frames:
        return
    arr = np.stack(frames)
    write_video(arr, video, fps / stride)
    report.video = str(video)
    report.video_frames = int(len(arr))
    report.video_size = (int(arr.shape[1]), int(arr.shape[2]))
    report.video_stride = int(stride)


# -------------------------------------------------------------------------------- helpers


def _load_model(model: str | Path | mujoco.MjModel) -> mujoco.MjModel:
    if isinstance(model, mujoco.MjModel):
        return model
    path = Path(model)
    if not path.is_file():
        raise ConfigError(f"replay model {str(path)!r}: MJCF file not found")
    spec = mujoco.MjSpec.from_file(str(path))
    if not spec.lights:  # a bare robot file: give the video a floor and light to read it by
        tex = spec.add_texture(name="df_grid", type=mujoco.mjtTexture.mjTEXTURE_2D,
                               builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=256, height=256,
                               rgb1=[0.32, 0.34, 0.38], rgb2=[0.26, 0.28, 0.32])
        spec.add_material(name="df_grid", texrepeat=[8, 8]).textures[
            mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
        spec.worldbody.add_geom(name="df_floor", type=mujoco.mjtGeom.mjGEOM_PLANE,
                                size=[4, 4, 0.05], material="df_grid", contype=0, conaffinity=0)
        spec.worldbody.add_light(name="df_key", pos=[1.5, -1.0, 3.0], dir=[-0.4, 0.3, -1.0],
                                 diffuse=[0.8, 0.8, 0.8])
    return spec.compile()


def _source_joints(ep: Episode, prefer: str = "qpos") -> tuple[list[str], np.ndarray, str]:
    """(names, (T, n) values, field) from ``qpos`` or ``action``, whichever is present first."""
    order = ("qpos", "action") if prefer == "qpos" else ("action", "qpos")
    for name in order:
        arr = getattr(ep, name)
        names = ep.joint_names if name == "qpos" else ep.action_names
        if arr is not None and len(names):
            return list(names), np.asarray(arr, np.float64), name
    raise SchemaError(
        f"episode ({ep.meta.source}) has neither 'qpos' nor 'action' with names; joint replay "
        "needs one of them"
    )


def _resample_times(ep: Episode, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Source times (T,) re-based to 0, and the control-rate grid [s] covering them."""
    t_src = np.asarray(ep.time, np.float64) - float(ep.time[0])
    if abs(1.0 / ep.meta.fps - dt) < 1e-9 and len(t_src) > 0:
        return t_src, t_src.copy()
    n = int(np.floor(t_src[-1] / dt + 1e-9)) + 1
    return t_src, np.arange(n) * dt


def _err_stats(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(x)), "max": float(np.max(x))}


def _judge(scene: Scene) -> bool | None:
    return bool(scene.task.success(scene)) if scene.task is not None else None


# -------------------------------------------------------------------------------- kinematic


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
    m = _load_model(model)
    if stride < 1:
        raise ConfigError(f"replay stride must be >= 1, got {stride}")
    names, values, fld = _source_joints(ep)
    dst = [m.joint(j).name for j in range(m.njnt)]
    scalar = {i for i in range(m.njnt) if int(m.jnt_type[i]) in _SCALAR_JOINTS}
    mapping = {s: d for s, d in map_joints(names, dst, joint_map).items() if d in scalar}
    if not mapping:
        raise ConfigError(f"no source joint of {ep.meta.source} maps to a hinge/slide joint of "
                          "the replay model; pass joint_map")
    src_idx = np.array(list(mapping))
    adr = np.array([m.jnt_qposadr[d] for d in mapping.values()])
    report = ReplayReport(
        mode="kinematic", source=ep.meta.source, robot=ep.meta.robot, task=ep.meta.task or None,
        frames=len(ep), fps=float(ep.meta.fps), steps=len(ep),
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
    _write(report, frames, video, ep.meta.fps, stride)
    report.seconds = time.perf_counter() - t0
    return report


# -------------------------------------------------------------------------------- joint


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
    names, values, fld = _source_joints(ep, prefer="action")
    mapping = map_joints(names, scene.action_names, joint_map)
    t_src, t_dst = _resample_times(ep, scene.control_dt)
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
        mode="joint", source=ep.meta.source, robot=scene.robot.name,
        task=getattr(scene.task, "name", None), frames=len(ep), fps=float(ep.meta.fps),
        steps=len(cmd), mapped_joints={names[s]: scene.action_names[d] for s, d in mapping.items()},
        unmatched_joints=[n for i, n in enumerate(names) if i not in mapping],
        success=_judge(scene),
    )
    for j in sorted(set(dst_idx.tolist())):
        if j < n_joint:
            e = err[:, j]
            report.joint_err[scene.joint_names[j]] = {
                "rms": float(np.sqrt(np.mean(e**2))), "max": float(e.max())}
    report.notes.append(f"targets from episode field {fld!r}; error = commanded vs achieved "
                        "after one control period")
    _write(report, frames, video, 1.0 / scene.control_dt, 1)
    report.seconds = time.perf_counter() - t0
    return report


# -------------------------------------------------------------------------------- EE


def _gripper_command(ep: Episode, arm: str) -> np.ndarray | None:
    """Commanded opening (T,) of ``arm``: action column ``<arm>_gripper`` if present, else the
    ``gripper`` track (a measured opening stays > 0 around a grasped object, which would never
    squeeze it, so the command is preferred)."""
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

    Grippers: the action column ``<arm>_gripper`` if present, else ``ep.gripper``, else open.

    Returns:
        (targets, used arm map).
    """
    ep.require("ee")
    if mode not in EE_FRAMES:
        raise UnknownNameError("EE replay mode", mode, EE_FRAMES)
    arm_map = dict(arm_map) if arm_map else {a: a for a in ep.ee if a in scene.arms}
    if not arm_map:
        raise ConfigError(f"no source arm {sorted(ep.ee)} is a scene arm {scene.arms}; "
                          "pass arm_map (source arm -> scene arm)")
    for s, d in arm_map.items():
        if s not in ep.ee:
            raise SchemaError(f"arm_map source arm {s!r} has no EE track; tracks: {sorted(ep.ee)}")
        if d not in scene.arms:
            raise ConfigError(f"arm_map target arm {d!r} is not a scene arm {scene.arms}")
    if mode == "object":
        if not object_map:
            raise ConfigError("EE replay mode 'object' needs object_map {source object: scene "
                              "object}")
        for s, d in object_map.items():
            if s not in ep.objects:
                raise SchemaError(f"object_map source object {s!r} not in the episode "
                                  f"(objects: {sorted(ep.objects)})")
            if mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_BODY, d) < 0:
                raise ConfigError(f"object_map target object {d!r} is not a scene body")
    t_src, t_dst = _resample_times(ep, scene.control_dt)
    n_hold = int(round(settle / scene.control_dt))
    pose, grip, label = {}, {}, {}
    for s, d in arm_map.items():
        src = np.asarray(ep.ee[s], np.float64)
        if mode == "calibrated":
            p = ee_calibrated(src, scene.ee_pose(d), scale=scale)
        elif mode == "object":
            assert object_map is not None
            near = min(object_map, key=lambda o: np.linalg.norm(ep.objects[o][0, :3] - src[0, :3]))
            p = ee_object_relative(src, ep.objects[near][0], scene.body_pose(object_map[near]))
        else:
            p = src
        res = np.concatenate([interp_linear(t_src, p[:, :3], t_dst),
                              interp_slerp(t_src, p[:, 3:], t_dst)], 1)
        g = _gripper_command(ep, s)
        g = np.ones(len(t_dst)) if g is None else np.clip(interp_linear(t_src, g, t_dst), 0, 1)
        pose[d] = np.concatenate([res, np.repeat(res[-1:], n_hold, 0)])
        grip[d] = np.concatenate([g, np.repeat(g[-1:], n_hold)])
        label[d] = ["replay"] * len(t_dst) + ["settle"] * n_hold
    return Targets(pose=pose, gripper=grip, label=label), arm_map


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
    success = _judge(scene)
    meta = EpisodeMeta(
        task=getattr(scene.task, "name", "") or ep.meta.task, robot=scene.robot.name,
        fps=1.0 / scene.control_dt, source=f"replay:{ep.meta.source}", success=success,
        seed=ep.meta.seed, instruction=ep.meta.instruction,
        provenance={"replay": {"mode": "ee", "ee_frame": mode, "scale": scale,
                               "arm_map": used, "object_map": dict(object_map or {})}},
    )
    out = rec.episode(scene, meta)
    report = ReplayReport(
        mode="ee", source=ep.meta.source, robot=scene.robot.name,
        task=getattr(scene.task, "name", None), frames=len(ep), fps=float(ep.meta.fps),
        steps=len(targets), ee_frame=mode, scale=float(scale), success=success,
    )
    for d in used.values():
        achieved = np.concatenate([out.ee[d][1:], scene.ee_pose(d)[None]])
        want = targets.pose[d]
        report.ee_pos_err[d] = _err_stats(np.linalg.norm(achieved[:, :3] - want[:, :3], axis=1))
        report.ee_rot_err[d] = _err_stats(quat_angle(achieved[:, 3:], want[:, 3:]))
    if ep.qpos is not None and set(scene.joint_names) <= set(ep.joint_names) and mode == "world":
        t_src, t_dst = _resample_times(ep, scene.control_dt)
        cols = [ep.joint_names.index(j) for j in scene.joint_names]
        ref = interp_linear(t_src, np.asarray(ep.qpos, np.float64)[:, cols], t_dst)
        got = out.qpos[: len(ref)]
        for i, j in enumerate(scene.joint_names):
            e = np.abs(got[:, i] - ref[:, i])
            report.joint_err[j] = {"rms": float(np.sqrt(np.mean(e**2))), "max": float(e.max())}
    if video is not None and out.images:
        _write(report, list(next(iter(out.images.values()))), video, meta.fps, 1)
    report.seconds = time.perf_counter() - t0
    return out, report


def chain_length(model: mujoco.MjModel, frame: str, root: str) -> float:
    """Sum of link offsets [m] from body ``root`` down to body/site ``frame`` (pose-independent).

    Useful as an arm length for ``scale`` in calibrated EE retargeting.
    """
    total = 0.0
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, frame)
    if sid >= 0:
        total += float(np.linalg.norm(model.site_pos[sid]))
        body = int(model.site_bodyid[sid])
    else:
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, frame)
        if body < 0:
            raise ConfigError(f"chain_length: no site or body named {frame!r}")
    rid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, root)
    if rid < 0:
        raise ConfigError(f"chain_length: no body named {root!r}")
    while body != rid:
        if body == 0:
            raise ConfigError(f"chain_length: {frame!r} is not below body {root!r}")
        total += float(np.linalg.norm(model.body_pos[body]))
        body = int(model.body_parentid[body])
    return total


# -------------------------------------------------------------------------------- command


def _read_one(source: str, format: str, episode: int) -> Episode:
    from sim.io.formats import detect_format, read_episodes

    path = Path(source)
    if not path.exists():
        raise ConfigError(f"replay source {source!r} does not exist")
    name = detect_format(path) if format == "auto" else format
    if name == "lerobot":
        return read_episodes(path, format=name, episodes=[episode])[0]
    eps = read_episodes(path, format=name)
    if not 0 <= episode < len(eps):
        raise ConfigError(f"{source}: no episode {episode}; it has {len(eps)} episodes")
    return eps[episode]


def run_replay(cfg: Mapping[str, Any]) -> ReplayReport:
    """Run one replay from a plain config dict (keys of conf/replay.yaml); write its outputs."""
    from sim.model.robot import load_robot
    from sim.model.scene import build_scene

    mode = cfg["mode"]
    if mode not in MODES:
        raise UnknownNameError("replay mode", mode, MODES)
    out = Path(cfg["output"])
    out.mkdir(parents=True, exist_ok=True)
    video = out / "replay.mp4"
    size = (int(cfg["height"]), int(cfg["width"]))
    ep = _read_one(str(cfg["source"]), cfg["format"], int(cfg["episode"]))
    if mode == "kinematic":
        model = cfg.get("model") or load_robot(cfg["robot"]).mjcf
        report = replay_kinematic(ep, model, cfg.get("joint_map") or None, cfg.get("camera"),
                                  size, video, int(cfg.get("stride", 1)))
    else:
        task, params = cfg.get("task"), {}
        if isinstance(task, Mapping):
            task, params = task.get("name"), dict(task.get("params") or {})
        scene = build_scene(cfg["robot"], task, control_hz=float(cfg["control_hz"]),
                            task_cfg=params)
        seed = cfg.get("seed")
        seed = seed if seed is not None else (ep.meta.seed if ep.meta.seed is not None else 0)
        scene.reset(np.random.default_rng(int(seed)))
        rig = _scene_rig(scene, cfg.get("camera"), size)
        try:
            if mode == "joint":
                report = replay_joint(ep, scene, cfg.get("joint_map") or None, rig, video)
            else:
                frame = cfg.get("ee_frame", "auto")
                if frame == "auto":
                    frame = "world" if ep.meta.robot == scene.robot.name else "calibrated"
                _, report = replay_ee(
                    ep, scene, ArmIK(scene), cfg.get("arm_map") or None, frame,
                    float(cfg["scale"]), cfg.get("object_map") or None, rig, video)
        finally:
            rig.close()
        report.notes.append(f"scene reset with seed {seed}")
    report.to_json(out / "report.json")
    return report


def _fmt_summary(r: ReplayReport) -> str:
    parts = [f"mode={r.mode}", f"steps={r.steps}", f"success={r.success}"]
    if r.ee_pos_err:
        parts.append(f"EE error mean {r.ee_pos_err_mean * 100:.2f} cm / "
                     f"{np.degrees(r.ee_rot_err_mean):.2f} deg")
    if r.video:
        parts.append(f"video {r.video} ({r.video_frames} frames {r.video_size})")
    return ", ".join(parts)


@dataclass
class ReplaySchema:
    """Typed schema of conf/replay.yaml (a typo fails at start-up with the key named)."""

    source: str = MISSING
    format: str = "auto"
    episode: int = 0
    robot: Any = MISSING  # group conf/robot (a robot dict) or a name/YAML path
    task: Any = None  # group conf/task ({name, params}), a task name, or None (~task)
    mode: str = "ee"
    ee_frame: str = "auto"
    model: Optional[str] = None  # noqa: UP045 (OmegaConf needs typing.Optional on 3.10)
    output: str = "replay_out"
    seed: Optional[int] = None  # noqa: UP045
    scale: float = 1.0
    camera: Optional[str] = None  # noqa: UP045
    height: int = 240
    width: int = 320
    stride: int = 1
    control_hz: float = 20.0
    joint_map: dict[str, str] = field(default_factory=dict)
    arm_map: dict[str, str] = field(default_factory=dict)
    object_map: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(name="replay_schema", node=ReplaySchema)


@hydra.main(version_base=None, config_path=str(conf_dir()), config_name="replay")
def main(cfg: DictConfig) -> None:
    """`demoforge-replay`: replay one episode (Hydra; see conf/replay.yaml)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    try:
        report = run_replay(c)
    except SimError as e:
        print(f"demoforge: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"demoforge: replay {_fmt_summary(report)}\ndemoforge: report: "
          f"{Path(c['output']) / 'report.json'}")


__all__: Sequence[str] = (
    "FreeCameraRig", "ReplayReport", "chain_length", "ee_targets", "main", "replay_ee",
    "replay_joint", "replay_kinematic", "run_replay",
)
