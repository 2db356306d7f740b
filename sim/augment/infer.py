"""Grasp-frame conventions across robots, and object frames inferred from the EE at the grasp.

Every robot's EE site has a tool-frame convention (:class:`~sim.model.robot.ToolFrame`: approach
and closing axes in the site frame). demoforge's canonical grasp frame approaches along -z and
closes along y. A pose is position [m] + quaternion w,x,y,z, world frame; only the orientation
changes between conventions (the site position is the grasp point on every robot)::

    R_world_canonical = R_world_site @ C        C = ToolFrame.site_from_canonical()

Sources without object poses (joints and images only, e.g. real teleoperation) get their object
frame from the EE pose at gripper closure (:func:`infer_object_track`); what was inferred is
recorded in the episode's provenance under ``"inferred_objects"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.episode import Episode
from sim.errors import ConfigError, SchemaError
from sim.model.robot import ToolFrame
from sim.transforms import (
    mat_to_quat,
    pose_inv,
    pose_mul,
    quat_angle,
    quat_mul,
    quat_normalize,
    quat_to_mat,
)

ToolFrameLike = ToolFrame | Mapping[str, Sequence[float]] | None


def as_tool_frame(conv: ToolFrameLike, where: str = "tool_frame") -> ToolFrame:
    """A ToolFrame from a ToolFrame, ``{"approach": [...], "closing": [...]}`` or None (canonical).

    Raises:
        ConfigError: unknown keys or bad axes, naming ``where``.
    """
    if conv is None:
        return ToolFrame()
    if isinstance(conv, ToolFrame):
        return conv
    if not isinstance(conv, Mapping):
        raise ConfigError(f"{where} must be a ToolFrame or a mapping, got {conv!r}")
    bad = sorted(set(conv) - {"approach", "closing"})
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; expected ['approach', 'closing']")
    try:
        return ToolFrame(**{k: tuple(float(x) for x in v) for k, v in conv.items()})
    except (ConfigError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _conv_quat(conv: ToolFrameLike) -> np.ndarray:
    return mat_to_quat(as_tool_frame(conv).site_from_canonical())


def _check_poses(pose: np.ndarray, what: str) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1:] != (7,):
        raise SchemaError(
            f"{what} must be pose(s) (..., 7) = pos [m] + quat w,x,y,z, got shape {pose.shape}"
        )
    return pose


def to_canonical(pose: np.ndarray, convention: ToolFrameLike) -> np.ndarray:
    """EE site pose(s) (..., 7) in ``convention`` -> canonical grasp-frame pose(s), same point."""
    pose = _check_poses(pose, "to_canonical pose")
    q = quat_mul(pose[..., 3:], np.broadcast_to(_conv_quat(convention), pose[..., 3:].shape))
    return np.concatenate([pose[..., :3], quat_normalize(q)], axis=-1)


def from_canonical(pose: np.ndarray, convention: ToolFrameLike) -> np.ndarray:
    """Canonical grasp-frame pose(s) (..., 7) -> EE site pose(s) of a robot using ``convention``."""
    pose = _check_poses(pose, "from_canonical pose")
    qc = _conv_quat(convention) * np.array([1.0, -1.0, -1.0, -1.0])
    q = quat_mul(pose[..., 3:], np.broadcast_to(qc, pose[..., 3:].shape))
    return np.concatenate([pose[..., :3], quat_normalize(q)], axis=-1)


def convert_tool_frame(pose: np.ndarray, src: ToolFrameLike, dst: ToolFrameLike) -> np.ndarray:
    """EE site pose(s) of a ``src``-convention arm -> the ``dst`` arm's site pose(s)."""
    return from_canonical(to_canonical(pose, src), dst)


#: Half turn about the canonical approach axis (z): the twin of a grasp for symmetric jaws.
HALF_TURN = np.array([0.0, 0.0, 0.0, 1.0])


def jaw_twin(pose: np.ndarray) -> np.ndarray:
    """Canonical pose(s) (..., 7) turned half a turn about the approach axis (same grasp for a
    parallel-jaw gripper or a weld hand: the closing axis' sign is a free choice)."""
    pose = _check_poses(pose, "jaw_twin pose")
    q = quat_mul(pose[..., 3:], np.broadcast_to(HALF_TURN, pose[..., 3:].shape))
    return np.concatenate([pose[..., :3], quat_normalize(q)], axis=-1)


def prefer_jaw_twin(poses: np.ndarray, reference: np.ndarray) -> bool:
    """True when the half-turned twin of canonical ``poses`` (..., 7) is closer, on average, to
    the canonical ``reference`` orientation (quat (4,) or pose (7,)), e.g. the arm's home pose:
    the twin keeps the wrist within its range when a source arm's closing axis points the other
    way."""
    poses = _check_poses(poses, "poses").reshape(-1, 7)
    ref = np.asarray(reference, float)[-4:]
    keep = float(np.mean(quat_angle(poses[:, 3:], np.broadcast_to(ref, poses[:, 3:].shape))))
    twin = jaw_twin(poses)[:, 3:]
    return float(np.mean(quat_angle(twin, np.broadcast_to(ref, twin.shape)))) < keep


def episode_jaw_twins(ep: Episode, reference: Mapping[str, np.ndarray]) -> Episode:
    """``ep`` (canonical-frame or any symmetric-jaw convention) with each arm's EE/target track
    replaced by its jaw twin where that is nearer ``reference[arm]`` (a quat or pose, e.g. the
    target arm's home orientation in the same convention). Recorded in
    ``meta.provenance["jaw_twin"]`` (arms flipped)."""
    ee, target, flipped = dict(ep.ee), dict(ep.target), []
    for arm, ref in reference.items():
        if arm not in ep.ee:
            continue
        if prefer_jaw_twin(np.asarray(ep.ee[arm]), ref):
            ee[arm] = jaw_twin(ep.ee[arm])
            if arm in target:
                target[arm] = jaw_twin(target[arm])
            flipped.append(arm)
    meta = dataclasses.replace(ep.meta, provenance={**ep.meta.provenance, "jaw_twin": flipped})
    return dataclasses.replace(ep, meta=meta, ee=ee, target=target)


def tool_frame_dict(conv: ToolFrameLike) -> dict[str, list[float]]:
    """JSON-able form of a convention (for provenance)."""
    tf = as_tool_frame(conv)
    return {"approach": list(tf.approach), "closing": list(tf.closing)}


def episode_tool_frames(
    ep: Episode,
    src: ToolFrameLike | Mapping[str, ToolFrameLike],
    dst: ToolFrameLike | Mapping[str, ToolFrameLike] = None,
) -> Episode:
    """A copy of ``ep`` whose ``ee`` and ``target`` tracks are in ``dst``'s convention.

    Args:
        ep: source episode; its EE tracks are site poses of an arm using ``src``.
        src: one convention for every arm, or arm -> convention (the source's own arm names).
        dst: the same for the result (default canonical).

    The conventions are recorded in ``meta.provenance["tool_frame"]``.
    """
    ep.require("ee")

    def per_arm(c: Any, arm: str, which: str) -> ToolFrame:
        if isinstance(c, Mapping) and not (set(c) <= {"approach", "closing"} and c):
            if arm not in c:
                raise ConfigError(
                    f"{which} tool frames name arms {sorted(c)}, but the episode "
                    f"({ep.meta.source}) has arm {arm!r}"
                )
            return as_tool_frame(c[arm], f"{which}.{arm}")
        return as_tool_frame(c, which)

    ee, target, record = {}, {}, {}
    for arm in ep.ee:
        s, d = per_arm(src, arm, "source"), per_arm(dst, arm, "target")
        ee[arm] = convert_tool_frame(ep.ee[arm], s, d)
        if arm in ep.target:
            target[arm] = convert_tool_frame(ep.target[arm], s, d)
        record[arm] = {"source": tool_frame_dict(s), "target": tool_frame_dict(d)}
    meta = dataclasses.replace(ep.meta, provenance={**ep.meta.provenance, "tool_frame": record})
    return dataclasses.replace(ep, meta=meta, ee=ee, target={**ep.target, **target})


def trim_approach(ep: Episode, arm: str, obj: str, radius: float = 0.12) -> Episode:
    """``ep`` from the first step where ``arm``'s EE is within ``radius`` [m] of ``obj``.

    A source robot's free-space start (its own home pose, its own base) says nothing about the
    target robot; cutting it leaves the approach to the target's transit into the segment.
    The cut is recorded in ``meta.provenance["trimmed_start"]``.

    Raises:
        SchemaError: the episode lacks the arm/object, or the EE never comes that close.
    """
    if arm not in ep.ee or obj not in ep.objects:
        raise SchemaError(
            f"{ep.meta.source}: trim_approach needs ee[{arm!r}] and "
            f"objects[{obj!r}] (have ee {sorted(ep.ee)}, objects "
            f"{sorted(ep.objects)})"
        )
    d = np.linalg.norm(np.asarray(ep.ee[arm])[:, :3] - np.asarray(ep.objects[obj])[:, :3], axis=1)
    near = np.flatnonzero(d <= radius)
    if not len(near):
        raise SchemaError(
            f"{ep.meta.source}: arm {arm!r} never comes within {radius} m of "
            f"{obj!r} (closest {d.min():.3f} m)"
        )
    k = int(near[0])
    out = ep.slice(k, len(ep)) if k else ep
    prov = {
        **ep.meta.provenance,
        "trimmed_start": {"steps": k, "arm": arm, "object": obj, "radius": float(radius)},
    }
    return dataclasses.replace(out, meta=dataclasses.replace(ep.meta, provenance=prov))


# ------------------------------------------------------------------ object frames at the grasp
@dataclasses.dataclass(frozen=True)
class GraspEvents:
    """The main grasp of one gripper track: closes at step ``close``, opens at ``release``.

    ``release`` is the first open step after the grasp, or T when it never reopens.
    """

    close: int
    release: int
    threshold: float


def grasp_events(
    opening: np.ndarray, threshold: float | None = None, min_steps: int = 3
) -> GraspEvents:
    """Find the main grasp (the longest closed run) in a gripper opening track (T,), 0 = closed.

    Args:
        opening: gripper opening per step in [0, 1] (or any units where lower = more closed).
        threshold: opening below which the gripper counts as closed; default: halfway between
            the track's 10th and 90th percentiles (robust to a hand that never opens fully).
        min_steps: shortest closed run that counts as a grasp.

    Raises:
        SchemaError: no grasp: the track never closes for ``min_steps`` steps.
    """
    g = np.asarray(opening, dtype=np.float64)
    if g.ndim != 1 or len(g) == 0 or not np.all(np.isfinite(g)):
        raise SchemaError(f"gripper opening must be a finite (T,) track, got shape {g.shape}")
    lo, hi = np.percentile(g, [10, 90])
    if threshold is None:
        if hi - lo < 0.05:
            raise SchemaError(
                f"no grasp event: the gripper opening stays within [{lo:.3f}, {hi:.3f}] "
                "(never closes); pass a threshold or give a source with a grasp"
            )
        threshold = float(0.5 * (lo + hi))
    closed = g < threshold
    best, start = (0, 0), None
    for t, c in enumerate([*closed, False]):
        if c and start is None:
            start = t
        elif not c and start is not None:
            if t - start > best[1] - best[0]:
                best = (start, t)
            start = None
    if best[1] - best[0] < min_steps:
        raise SchemaError(
            f"no grasp event: the gripper opening never stays below {threshold:.3f} for "
            f"{min_steps} steps (min {g.min():.3f}, max {g.max():.3f})"
        )
    return GraspEvents(close=int(best[0]), release=int(best[1]), threshold=float(threshold))


ORIENTATIONS = ("world", "yaw", "ee")


def infer_object_frame(
    ee_canonical: np.ndarray,
    depth: float = 0.0,
    orientation: str = "world",
    yaw_offset: float = 0.0,
) -> np.ndarray:
    """Object frame (7,) at a grasp, from the canonical EE pose at gripper closure.

    Args:
        ee_canonical: EE pose at closure in the canonical grasp frame (approach = -z).
        depth: the object's origin lies this far beyond the grasp point along the approach
            axis [m] (0: the grasp point is the object origin).
        orientation: ``"world"``: upright, axes aligned with the world (rotationally symmetric
            or upright objects, e.g. a bottle); ``"yaw"``: upright, x along the horizontal
            approach heading turned by ``-yaw_offset`` [rad] (for an object about its vertical
            axis symmetric, the grasp then arrives at heading ``yaw_offset`` in a scene where
            the object has yaw 0: choose the heading the target arm reaches best);
            ``"ee"``: the EE's full canonical orientation.
    """
    ee = _check_poses(ee_canonical, "EE pose at closure")
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"orientation {orientation!r} unknown; expected one of {ORIENTATIONS}")
    R = quat_to_mat(ee[3:])
    approach = -R[:, 2]
    pos = ee[:3] + depth * approach
    if orientation == "ee":
        quat = quat_normalize(ee[3:])
    elif orientation == "yaw":
        if np.linalg.norm(approach[:2]) < 1e-6:  # straight down: heading from the EE x axis
            h = R[:2, 0]
        else:
            h = approach[:2]
        yaw = float(np.arctan2(h[1], h[0])) - float(yaw_offset)
        quat = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    else:
        quat = np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([pos, quat])


def infer_object_track(
    ee_canonical: np.ndarray,
    opening: np.ndarray,
    depth: float = 0.0,
    orientation: str = "world",
    threshold: float | None = None,
    yaw_offset: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """An object's pose track (T, 7) for a source without object poses.

    Before the grasp the object rests where the EE closes on it (:func:`infer_object_frame`);
    while held it moves rigidly with the EE; after release it stays where it was let go.

    Returns:
        (track, info): ``info`` is JSON-able provenance (close/release steps, threshold, the
        inferred frames, depth, orientation).
    """
    ee = _check_poses(ee_canonical, "EE track")
    if ee.ndim != 2 or len(ee) != len(np.asarray(opening)):
        raise SchemaError(
            f"EE track {ee.shape} and gripper track {np.shape(opening)} must both have T steps"
        )
    ev = grasp_events(opening, threshold)
    at_grasp = infer_object_frame(ee[ev.close], depth, orientation, yaw_offset)
    rel = pose_mul(pose_inv(ee[ev.close]), at_grasp)  # object in the EE frame while held
    track = np.empty_like(ee)
    track[: ev.close] = at_grasp
    track[ev.close : ev.release] = pose_mul(
        ee[ev.close : ev.release], np.broadcast_to(rel, (ev.release - ev.close, 7))
    )
    if ev.release < len(ee):
        track[ev.release :] = track[ev.release - 1]
    info = {
        "method": "ee_at_gripper_closure",
        "close_step": ev.close,
        "release_step": ev.release,
        "threshold": ev.threshold,
        "depth": float(depth),
        "orientation": orientation,
        "yaw_offset": float(yaw_offset),
        "pose_at_grasp": [float(x) for x in at_grasp],
        "pose_at_release": [float(x) for x in track[min(ev.release, len(ee)) - 1]],
    }
    return track, info


def infer_release_frame(
    ee_canonical: np.ndarray,
    opening: np.ndarray,
    threshold: float | None = None,
    orientation: str = "world",
) -> tuple[np.ndarray, dict[str, Any]]:
    """A place target's frame (7,) from the EE pose where the grasp is released.

    For a placement target the source never saw (a mat, a shelf spot); the frame is constant.

    Raises:
        SchemaError: the gripper never reopens after the grasp.
    """
    ee = _check_poses(ee_canonical, "EE track")
    ev = grasp_events(opening, threshold)
    if ev.release >= len(ee):
        raise SchemaError(
            "no release event: the gripper never reopens after the grasp at step "
            f"{ev.close}; a place target cannot be inferred"
        )
    frame = infer_object_frame(ee[ev.release - 1], 0.0, orientation)
    return frame, {
        "method": "ee_at_gripper_release",
        "release_step": ev.release,
        "threshold": ev.threshold,
        "orientation": orientation,
        "pose": [float(x) for x in frame],
    }


# ------------------------------------------------------------------ joint-only sources
@dataclasses.dataclass(frozen=True)
class HeldObject:
    """An object a joint-only source grasps: inferred from ``arm``'s EE at gripper closure.

    ``depth`` [m]: the object's origin lies this far beyond the grasp point along the approach
    axis; ``orientation``: see :func:`infer_object_frame`.
    """

    name: str
    arm: str
    depth: float = 0.0
    orientation: str = "world"
    yaw_offset: float = 0.0


@dataclasses.dataclass(frozen=True)
class SupportObject:
    """Where a held object is set down: ``held``'s position at release, lowered by ``below``
    [m] (e.g. the held object's half height plus the support's half thickness); upright, with
    the held object's frame yaw at the grasp (so grasp and place segments turn together)."""

    name: str
    held: str
    below: float = 0.0


def hand_opening(values: np.ndarray) -> np.ndarray:
    """Opening (T,) in [0, 1] from hand joint readings (T, k) where higher = more open
    (e.g. Inspire hands' normalized finger values): their mean, rescaled between the track's
    1st and 99th percentiles."""
    v = np.asarray(values, float)
    v = v.mean(axis=1) if v.ndim == 2 else v
    lo, hi = np.percentile(v, [1, 99])
    if hi - lo < 1e-6:
        return np.ones(len(v))
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def _resample(values: np.ndarray, t_src: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    v = np.asarray(values, float)
    return np.stack([np.interp(t_new, t_src, v[:, j]) for j in range(v.shape[1])], axis=1)


def ingest_joint_episode(
    ep: Episode,
    scene: Any,
    hands: Mapping[str, Sequence[str]],
    held: Sequence[HeldObject] = (),
    supports: Sequence[SupportObject] = (),
    joint_map: Mapping[str, str] | None = None,
    fps: float | None = None,
) -> Episode:
    """A joint-only source episode (joints and images, no EE or objects) made augmentable.

    The EE tracks come from forward kinematics of the robot that recorded it, mounted in
    ``scene`` (``scene.robot``'s EE sites, in that robot's own tool-frame convention); gripper
    openings from the hand joints; the objects' poses are inferred from the EE at gripper
    closure (and release, for supports) and recorded in ``meta.provenance["inferred_objects"]``.

    Args:
        ep: source episode with ``qpos`` and ``joint_names``.
        scene: a :class:`~sim.model.scene.Scene` holding the recording robot (kinematics only).
        hands: arm -> hand joint names in ``ep.joint_names`` (higher = more open).
        held / supports: objects to infer.
        joint_map: source joint -> scene joint (default: by canonical joint key).
        fps: resample to this rate [Hz] (default: the scene's control rate).

    Raises:
        SchemaError: no joints, a hand joint missing, or a held object's arm never grasps.
    """
    from sim.retarget import fk_poses, map_joints

    ep.require("qpos", "joint_names")
    src = ep.meta.source
    fps = float(fps or 1.0 / scene.control_dt)
    T0 = len(ep)
    t_src = np.arange(T0) / float(ep.meta.fps)
    t_new = np.arange(int(np.floor(t_src[-1] * fps + 1e-9)) + 1) / fps
    q_src = _resample(ep.qpos, t_src, t_new)
    idx = map_joints(ep.joint_names, scene.joint_names, joint_map)
    q = np.tile(scene.home_qpos[scene.qpos_adr], (len(t_new), 1))
    for s, d in idx.items():
        q[:, d] = q_src[:, s]
    sites = {arm: a.ee_site for arm, a in scene.robot.arms.items()}
    ee = fk_poses(scene.model, scene.joint_names, q, sites, base_qpos=scene.home_qpos)
    conv = scene.robot.tool_frames()
    opening, cmd = {}, {}
    for arm, cols in hands.items():
        missing = [c for c in cols if c not in ep.joint_names]
        if missing:
            raise SchemaError(
                f"{src}: hand joint(s) {missing} of arm {arm!r} not in the episode's joint_names"
            )
        cidx = [ep.joint_names.index(c) for c in cols]
        opening[arm] = hand_opening(q_src[:, cidx])
        cmd[arm] = np.ones(len(t_new))
    objects: dict[str, np.ndarray] = {}
    inferred: dict[str, Any] = {}
    events: dict[str, GraspEvents] = {}
    for h in held:
        if h.arm not in opening:
            raise SchemaError(f"{src}: held object {h.name!r} needs hand joints of arm {h.arm!r}")
        track, info = infer_object_track(
            to_canonical(ee[h.arm], conv[h.arm]),
            opening[h.arm],
            h.depth,
            h.orientation,
            yaw_offset=h.yaw_offset,
        )
        objects[h.name] = track
        ev = grasp_events(opening[h.arm])
        events[h.name] = ev
        cmd[h.arm][ev.close : ev.release] = 0.0
        inferred[h.name] = {**info, "arm": h.arm}
    for s in supports:
        if s.held not in objects:
            raise SchemaError(
                f"{src}: support {s.name!r} refers to held object {s.held!r}, which is not inferred"
            )
        ev = events[s.held]
        if ev.release >= len(t_new):
            raise SchemaError(f"{src}: {s.held!r} is never released: no place for {s.name!r}")
        at = objects[s.held][ev.release - 1]
        x = quat_to_mat(objects[s.held][ev.close, 3:])[:, 0]  # the held frame's yaw at grasp
        yaw = float(np.arctan2(x[1], x[0])) if np.linalg.norm(x[:2]) > 1e-6 else 0.0
        frame = np.r_[at[:3] - [0.0, 0.0, s.below], np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        objects[s.name] = np.tile(frame, (len(t_new), 1))
        inferred[s.name] = {
            "method": "held_object_at_release",
            "held": s.held,
            "release_step": ev.release,
            "below": float(s.below),
            "pose": [float(x) for x in frame],
        }
    prov = {
        **ep.meta.provenance,
        "ingest": {
            "method": "forward_kinematics",
            "robot": scene.robot.name,
            "room": scene.room,
            "from_fps": float(ep.meta.fps),
            "fps": fps,
            "source_steps": T0,
            "joint_map": {ep.joint_names[s]: scene.joint_names[d] for s, d in idx.items()},
        },
        "inferred_objects": inferred,
        "tool_frame": {arm: tool_frame_dict(c) for arm, c in conv.items()},
    }
    meta = dataclasses.replace(ep.meta, robot=scene.robot.name, fps=fps, provenance=prov)
    return Episode(
        meta=meta,
        time=t_new,
        joint_names=list(scene.joint_names),
        qpos=q,
        ee=ee,
        gripper=opening,
        gripper_cmd=cmd,
        objects=objects,
        arm_joints={arm: list(a.joints) for arm, a in scene.robot.arms.items()},
    ).validate()
