"""The ``demos`` plan source: MimicGen-style augmentation of recorded source episodes.

For every attempt: the task's subtask spec for the new scene (per arm, with sync groups) ->
for each subtask one source segment (selected per subtask, so segments may mix source episodes)
-> its EE poses kept fixed relative to the reference object and mapped to that object's pose in
the new scene -> a minimum-jerk transit from the current EE pose into the segment's first pose
-> the source's gripper commands -> stitched per-step targets, retimed under EE speed and
acceleration caps and a realistic gripper speed. Synchronized subtasks (bimanual carry/fold)
take one source episode and one transform for both arms. The task's planner is never called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.augment.annotations import check_annotation, load_annotations
from sim.augment.noise import position_noise
from sim.augment.retime import (
    GRIPPER_STROKE_S,
    MAX_ACCEL,
    MAX_ANGULAR,
    MAX_SPEED,
    capped_times,
    check_range,
    rate_limit,
    resample,
    warp_times,
)
from sim.augment.segment import (
    Segment,
    active_arms,
    close_events,
    segment_episode,
    source_track,
)
from sim.augment.select import MODES, select
from sim.augment.stitch import Track, clear_transit, needs_transit, transit
from sim.augment.transform import (
    apply_transform,
    mats_to_poses,
    mirror,
    poses_to_mats,
    segment_transform,
    symmetric_frame,
    symmetric_frames,
)
from sim.control.plan import Targets
from sim.errors import ConfigError, PlanError, SimError, UnknownNameError
from sim.sources import register_source
from sim.tasks.base import Subtask, default_subtasks, ref_pose

if TYPE_CHECKING:
    from sim.episode import Episode
    from sim.model.scene import Scene
    from sim.tasks.base import Task

COORDINATION = ("independent", "synchronized")
SETTLE_S = 0.5  # hold the last targets this long before success is judged [s]
MOVING = 0.01  # objects faster than this [m/s] are predicted at constant velocity


def _free_velocity(scene: Scene, body: str) -> np.ndarray:
    """Linear velocity [m/s] (3,) of a free-joint body (zeros for other bodies)."""
    import mujoco

    m = scene.model
    b = m.body(body).id
    j = m.body_jntadr[b]
    if j < 0 or int(m.jnt_type[j]) != int(mujoco.mjtJoint.mjJNT_FREE):
        return np.zeros(3)
    v = scene.data.qvel[m.jnt_dofadr[j] : m.jnt_dofadr[j] + 3].copy()
    return v if np.linalg.norm(v) > MOVING else np.zeros(3)


def default_object_map(src: Sequence[str], task: Sequence[str]) -> dict[str, str]:
    """Task object -> source object: same names first, the rest paired in order."""
    out = {o: o for o in task if o in src}
    rest_src = [s for s in src if s not in out.values()]
    for o, s in zip([o for o in task if o not in out], rest_src, strict=False):
        out[o] = s
    return out


@dataclass
class DemosSource:
    """Plan source that transforms segments of ``episodes`` into each new scene.

    Attributes mirror the factory's parameters (see :func:`make_demos`); ``segments`` caches
    the segmentation per (episode, spec); ``skipped`` maps unusable source episodes to why.
    """

    task: Task
    episodes: list[Episode]
    dataset: str
    dt: float
    object_maps: list[dict[str, str]]  # per episode: task object -> source object
    arm_map: dict[str, str]  # source arm -> target arm (explicit part)
    select: str = "nearest"
    transit_steps: int = 10
    noise: float = 0.0
    time_warp: tuple[float, float] = (1.0, 1.0)
    max_speed: float = MAX_SPEED
    max_accel: float = MAX_ACCEL
    max_angular: float = MAX_ANGULAR
    gripper_stroke: dict[str, float] = field(default_factory=dict)
    annotations: dict[int, dict[str, int]] = field(default_factory=dict)
    annotations_path: str = ""
    coordination: str | None = None
    retime: bool = True
    transit_clearance: float | None = None
    object_radius: dict[str, float] = field(default_factory=dict)
    base: np.ndarray = field(default_factory=lambda: np.array([0, 0, 0, 1.0, 0, 0, 0]))
    name: str = "demos"
    skipped: dict[int, str] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ segmentation
    def _spec(self, scene: Scene) -> list[Subtask]:
        spec = default_subtasks(self.task, scene)
        if self.coordination == "independent":
            spec = [dataclasses.replace(s, sync=None) for s in spec]
        return spec

    def _arms_for(self, i: int, spec: Sequence[Subtask]) -> dict[str, str]:
        """Target arm -> source arm for episode ``i``: the explicit map, else by name (a one-arm
        source drives every arm), then matched by role: a target arm whose subtasks grasp takes
        a source arm that closes its gripper, and the reverse (mirrored layouts, where the other
        hand did the work in the source)."""
        ep = self.episodes[i]
        inv = {t: s for s, t in self.arm_map.items()}
        src_arms = list(ep.ee)
        grasps = {a: bool(close_events(source_track(ep, a)[1])) for a in src_arms}
        active = set(active_arms(ep))
        needs = {
            t: any(s.signal is not None for s in spec if s.arm == t)
            for t in dict.fromkeys(s.arm for s in spec)
        }
        out: dict[str, str] = {}
        for tarm in needs:
            if tarm in inv:
                out[tarm] = inv[tarm]
            elif tarm in src_arms:
                out[tarm] = tarm
            elif len(src_arms) == 1:
                out[tarm] = src_arms[0]
            else:
                raise PlanError(
                    f"{ep.meta.source}: no source arm for target arm {tarm!r} (source arms "
                    f"{src_arms}); give source.arm_map",
                    cause="arm_mismatch",
                )
        if len(src_arms) == 1:
            return out

        def fits(t: str, a: str) -> bool:
            return grasps[a] == needs[t] and (a in active or not needs[t])

        for t in [t for t in out if t not in inv and not fits(t, out[t])]:
            if fits(t, out[t]):  # fixed by an earlier swap
                continue
            for a in src_arms:
                if fits(t, a):
                    other = next((u for u, b in out.items() if b == a and u != t), None)
                    if other is None:
                        out[t] = a
                        break
                    if other not in inv and fits(other, out[t]):
                        out[t], out[other] = a, out[t]
                        break
        return out

    def segments(self, i: int, spec: Sequence[Subtask]) -> list[Segment]:
        """Segmentation of source episode ``i`` for ``spec`` (cached; raises PlanError)."""
        key = (i, tuple(spec))
        if key not in self._cache:
            ep = self.episodes[i]
            marks = self.annotations.get(i)
            if marks is not None:
                where = f"annotation file {self.annotations_path} episode {i}"
                check_annotation(marks, len(ep), where, {s.label for s in spec})
            try:
                self._cache[key] = segment_episode(
                    ep, spec, self._arms_for(i, spec), self.object_maps[i], i, marks
                )
            except PlanError as e:
                self._cache[key] = e
        got = self._cache[key]
        if isinstance(got, PlanError):
            raise got
        return got

    def usable(self, spec: Sequence[Subtask]) -> list[int]:
        """Source episodes that segment for ``spec``; raise the first error if none does."""
        ok, first = [], None
        for i in range(len(self.episodes)):
            if i in self.skipped:
                continue
            try:
                self.segments(i, spec)
                ok.append(i)
            except PlanError as e:
                if e.cause == "annotation_out_of_range":  # a bad file is the user's to fix
                    raise
                first = first or e
        if not ok:
            if first is not None:
                raise PlanError(f"no usable source episode in {self.dataset}: {first}", first.cause)
            raise PlanError(f"no usable source episode in {self.dataset}", "no_source")
        return ok

    def _src_objects(self, i: int, frame: int) -> dict[str, np.ndarray]:
        """Object poses of source episode ``i`` at ``frame``, under task object names."""
        ep = self.episodes[i]
        return {t: np.asarray(ep.objects[s][frame]) for t, s in self.object_maps[i].items()}

    # ------------------------------------------------------------------ planning
    def plan(self, scene: Scene, rng: np.random.Generator) -> Targets:
        spec = self._spec(scene)
        cands = self.usable(spec)
        now = {o: scene.body_pose(o) for o in self.task.objects}
        vel = {o: _free_velocity(scene, o) for o in self.task.objects}
        per_arm: dict[str, list[Subtask]] = {}
        for st in spec:
            per_arm.setdefault(st.arm, []).append(st)
        for arm in per_arm:
            if arm not in scene.arms:
                raise PlanError(
                    f"subtask spec moves arm {arm!r}, which robot {scene.robot.name!r} lacks",
                    cause="arm_mismatch",
                )
        tracks = {
            arm: Track(
                scene.ee_pose(arm),
                scene.gripper_opening(arm) if arm in scene.gripper_arms else 1.0,
            )
            for arm in per_arm
        }
        groups: list[list[tuple[str, int]]] = []
        seen: dict[Any, int] = {}
        for k in range(max(len(v) for v in per_arm.values())):
            for arm, subs in per_arm.items():
                if k >= len(subs):
                    continue
                key = subs[k].sync if subs[k].sync is not None else (arm, k)
                if key not in seen:
                    seen[key] = len(groups)
                    groups.append([])
                groups[seen[key]].append((arm, k))
        prov: list[dict] = []
        last: dict[str, tuple] = {}  # arm -> (ref, source episode, transform) of its last segment
        for members in groups:
            prov.extend(
                self._add_group(scene, rng, spec, per_arm, members, cands, now, vel, tracks, last)
            )
        T = max(len(t) for t in tracks.values()) + int(round(SETTLE_S / self.dt))
        pose, grip, label, ref = {}, {}, {}, {}
        for arm, tr in tracks.items():
            tr.hold(T - len(tr), "settle")
            p, g, lab, r = tr.arrays()
            stroke = self.gripper_stroke.get(arm, GRIPPER_STROKE_S)
            pose[arm], grip[arm], label[arm], ref[arm] = p, rate_limit(g, self.dt, stroke), lab, r
        return Targets(
            pose=pose,
            gripper=grip,
            label=label,
            ref=ref,
            provenance={
                "source": "demos",
                "dataset": self.dataset,
                "select": self.select,
                "coordination": self.coordination or "spec",
                "transit_steps": self.transit_steps,
                "noise": self.noise,
                "time_warp": list(self.time_warp),
                "retime": {"max_speed": self.max_speed, "max_accel": self.max_accel}
                if self.retime
                else None,
                "segments": prov,
                "skipped_sources": {str(k): v for k, v in self.skipped.items()},
            },
        )

    def _add_group(
        self,
        scene: Scene,
        rng: np.random.Generator,
        spec: list[Subtask],
        per_arm: dict[str, list[Subtask]],
        members: list[tuple[str, int]],
        cands: list[int],
        now: dict[str, np.ndarray],
        vel: dict[str, np.ndarray],
        tracks: dict[str, Track],
        last: dict[str, tuple],
    ) -> list[dict]:
        """Append one subtask group (one arm, or a sync group of arms) to the tracks.

        A subtask on the same reference as the arm's previous one (grasp the handle, then pull
        the drawer) continues it: same source episode, same transform, no transit, since the
        robot has moved that object since reset and its reset pose no longer anchors it.
        """
        arm0, k0 = members[0]
        st0 = per_arm[arm0][k0]
        cont = all(
            k > 0
            and a in last
            and per_arm[a][k].ref is not None
            and last[a][0] == per_arm[a][k].ref
            for a, k in members
        )
        seg_of = {i: self._seg(i, spec, arm0, k0) for i in cands}
        new_ref = self._predict(st0.ref, now, vel, max(len(tracks[a]) for a, _ in members))
        src_refs = None
        if st0.ref is not None:
            src_refs = np.array([self._src_ref(i, seg_of[i], st0.ref) for i in cands])
            new_ref = self._symmetric_many(st0.ref, src_refs, new_ref)
        e = select(self.select, rng, cands, src_refs, new_ref)
        warp = float(rng.uniform(*self.time_warp))
        t0 = max(len(tracks[a]) for a, _ in members)
        keep = None
        if cont:
            e = last[arm0][1]
            keep = {a: last[a][2] for a, _ in members}
        pieces, prov = self._pieces(
            e, spec, per_arm, members, now, vel, tracks, t0, warp, rng, keep=keep
        )
        refs = [per_arm[a][k].ref for a, k in members]
        if any(r is not None and np.any(vel[r]) for r in refs if r in vel):
            # a moving reference (belt): predict it where the segment really starts
            n_transit = max(p[3] for p in pieces.values())
            pieces, prov = self._pieces(
                e, spec, per_arm, members, now, vel, tracks, t0, warp, rng, t0 + n_transit, keep
            )
        for arm, (p, g, labels, _n) in pieces.items():
            tr = tracks[arm]
            tr.hold(t0 - len(tr), "wait")
            st = per_arm[arm][[k for a, k in members if a == arm][0]]
            for lab in dict.fromkeys(labels):
                sel = [i for i, x in enumerate(labels) if x == lab]
                tr.add(p[sel], g[sel], lab, st.ref)
        for d in prov:
            last[d["target_arm"]] = (d["ref"], e, np.asarray(d["transform"]))
        return prov

    def _follow(self, e, seg, ref, p, g, now, vel, step, warp):
        """Per-step transforms for a moving reference (a part on a belt): until the grasp (the
        first closed gripper command) each source frame maps through the object's recorded pose
        at that frame and its predicted pose at the matching new step; afterwards the object
        moves with the hand and the transform at the grasp is kept. Returns (poses, first M)."""
        closed = np.flatnonzero(np.asarray(g) < 0.5)
        kg = int(closed[0]) if len(closed) else len(p) - 1
        ms = []
        for j in range(len(p)):
            jj = min(j, kg)
            src = self._src_ref(e, dataclasses.replace(seg, start=seg.start + jj), ref)
            new = self._symmetric(ref, src, self._predict(ref, now, vel, step + jj * warp))
            ms.append(segment_transform(src, new))
        ms = np.array(ms)
        return mats_to_poses(ms @ poses_to_mats(p)), ms[0]

    def _mirrored(self, seg: Segment) -> bool:
        """A left-hand segment driving the right hand (or the reverse): mirror it."""
        return seg.arm != seg.target_arm and {seg.arm, seg.target_arm} == {"left", "right"}

    def _src_ref(self, i: int, seg: Segment, ref: str) -> np.ndarray:
        """Reference frame of source episode ``i`` at the segment's start (mirrored with it)."""
        objs = self._src_objects(i, seg.start)
        if self._mirrored(seg):
            objs = {k: mirror(v[None], self.base)[0] for k, v in objs.items()}
        return ref_pose(self.task, ref, objs)

    def _symmetric(self, ref: str, src: np.ndarray, new: np.ndarray) -> np.ndarray:
        """``new`` turned to the symmetry-equivalent frame closest to ``src`` (task symmetry)."""
        order = getattr(self.task, "symmetry", {}).get(ref)
        return new if order is None else symmetric_frame(src, new, int(order))

    def _symmetric_many(self, ref: str, srcs: np.ndarray, new: np.ndarray) -> np.ndarray:
        """:meth:`_symmetric` of ``new`` against each of ``srcs`` (N, 7), as (N, 7)."""
        order = getattr(self.task, "symmetry", {}).get(ref)
        if order is None:
            return np.tile(np.asarray(new, float), (len(srcs), 1))
        return symmetric_frames(srcs, new, int(order))

    def _seg(self, i: int, spec: list[Subtask], arm: str, k: int) -> Segment:
        return [s for s in self.segments(i, spec) if s.target_arm == arm][k]

    def _predict(self, ref: str | None, now: dict, vel: dict, step: float) -> np.ndarray | None:
        """Reference frame pose in the new scene at control step ``step`` (objects moving at
        reset, like parts on a belt, extrapolated at constant velocity)."""
        if ref is None:
            return None
        objs = {o: p.copy() for o, p in now.items()}
        for o in objs:
            objs[o][:3] += vel[o] * step * self.dt
        return ref_pose(self.task, ref, objs)

    def _transit(
        self,
        start: np.ndarray,
        goal: np.ndarray,
        n: int,
        subtasks: Sequence[Subtask],
        now: Mapping[str, np.ndarray],
    ) -> tuple[np.ndarray, list[str]]:
        """Transit into a segment; with ``transit_clearance`` it passes over the task objects
        other than the segment's reference and those the arm already handled (held)."""
        if self.transit_clearance is None:
            return transit(start, goal, n), []
        skip = {st.ref for st in subtasks if st.ref is not None}
        names = [o for o in self.object_radius if o not in skip and o in now]
        obstacles = [(np.asarray(now[o], float)[:3], self.object_radius[o]) for o in names]
        path, hit = clear_transit(start, goal, n, obstacles, self.transit_clearance)
        return path, [names[i] for i in hit]

    def _pieces(
        self, e, spec, per_arm, members, now, vel, tracks, t0, warp, rng, t_pred=None, keep=None
    ):
        """Transit + transformed segment per member arm, retimed together (sync kept).

        ``keep`` (arm -> transform) continues the arms' previous segments: that transform and
        no transit."""
        raw: dict[str, tuple] = {}
        prov = []
        shared: np.ndarray | None = None
        for arm, k in members:
            st = per_arm[arm][k]
            seg = self._seg(e, spec, arm, k)
            pose_src, grip_src = source_track(self.episodes[e], seg.arm)
            p, g = pose_src[seg.start : seg.stop], grip_src[seg.start : seg.stop]
            if self._mirrored(seg):
                p = mirror(p, self.base)
            step = t0 + self.transit_steps if t_pred is None else t_pred
            if keep is not None:
                M = keep[arm]
                q = apply_transform(M, p)
            elif st.ref is None:
                M = np.eye(4)
                q = p
            elif shared is not None and st.sync is not None:
                M = shared
                q = apply_transform(M, p)
            elif np.any(vel.get(st.ref, 0.0)):
                q, M = self._follow(e, seg, st.ref, p, g, now, vel, step, warp)
            else:
                ref_src = self._src_ref(e, seg, st.ref)
                ref_new = self._symmetric(st.ref, ref_src, self._predict(st.ref, now, vel, step))
                M = segment_transform(ref_src, ref_new)
                if st.sync is not None:
                    shared = M
                q = apply_transform(M, p)
            if warp != 1.0:
                q, g, _ = resample(q, g, warp_times(len(q), self.dt, warp), self.dt)
            q = position_noise(q, rng, self.noise)
            raw[arm] = (q, g, st, seg, M)
        n = self.transit_steps
        starts = {a: tracks[a].last_pose for a in raw}
        need = keep is None and any(needs_transit(starts[a], raw[a][0][0], n) for a in raw)
        pieces = {}
        ks = dict(members)
        for arm, (q, g, st, seg, M) in raw.items():
            tr = tracks[arm]
            tp, avoided = np.empty((0, 7)), []
            if need:
                tp, avoided = self._transit(tr.last_pose, q[0], n, per_arm[arm][: ks[arm] + 1], now)
            if need and not len(tp):  # synchronized partner moves: wait in place as long
                tp = np.repeat(tr.last_pose[None], n, 0)
            tp = tp if len(tp) else np.empty((0, 7))
            P = np.concatenate([tp, q])
            G = np.concatenate([np.full(len(tp), tr.last_grip), g])
            L = ["transit"] * len(tp) + [st.label] * len(q)
            pieces[arm] = [P, G, L, len(tp)]
            prov.append(
                {
                    **seg.to_dict(),
                    "source_id": self.episodes[e].meta.source,
                    "transform": np.round(M, 9).tolist(),
                    "selection": self.select,
                    "transit_steps": len(tp),
                    "transit_avoided": avoided,
                    "time_warp": round(warp, 6),
                    "step_start": t0,
                }
            )
        if self.retime:
            lens = {len(v[0]) for v in pieces.values()}
            if len(lens) == 1:
                times = capped_times(
                    [v[0] for v in pieces.values()],
                    self.dt,
                    self.max_speed,
                    self.max_accel,
                    self.max_angular,
                )
                for arm, v in pieces.items():
                    P, G, src = resample(v[0], v[1], times, self.dt)
                    pieces[arm] = [P, G, [v[2][i] for i in src], v[3]]
        for d in prov:
            d["step_stop"] = t0 + len(pieces[d["target_arm"]][0])
        return {a: tuple(v) for a, v in pieces.items()}, prov


def _episode_convention(ep: Episode, given: Any, scene: Scene) -> Any:
    """The source arm(s)' tool-frame convention for ``ep`` (see ``source_tool_frame``)."""
    from sim.model.robot import known_robots, load_robot

    if isinstance(given, str) and given != "auto":
        if given not in known_robots():
            raise UnknownNameError("source.source_tool_frame robot", given, known_robots())
        return load_robot(given).tool_frames()
    if given != "auto":
        return given
    recorded = ep.meta.provenance.get("tool_frame") if ep.meta.provenance else None
    if recorded:
        return recorded
    if ep.meta.robot and ep.meta.robot != scene.robot.name and ep.meta.robot in known_robots():
        return load_robot(ep.meta.robot).tool_frames()
    return None  # same convention as this robot


def _map_tool_frames(
    scene: Scene, eps: list[Episode], given: Any, trim: float | None
) -> list[Episode]:
    """Source episodes with EE/target tracks in this robot's tool-frame convention."""
    from sim.augment.infer import (
        as_tool_frame,
        episode_jaw_twins,
        episode_tool_frames,
        to_canonical,
        trim_approach,
    )

    target = scene.robot.tool_frames()
    first = target[scene.arms[0]]
    home = None
    out = []
    obj = None  # the first subtask's object: where a trimmed episode starts
    if trim is not None:
        obj = next((st.ref for st in scene.task.subtask_spec(scene) if st.ref), None)
    for ep in eps:
        if trim is not None and ep.ee:
            if obj is not None and obj in ep.objects:
                arm = max(ep.ee, key=lambda a: float(np.ptp(np.asarray(ep.ee[a])[:, :3], 0).sum()))
                ep = trim_approach(ep, arm, obj, float(trim))
        conv = _episode_convention(ep, given, scene) if ep.ee else None
        if conv is None:
            out.append(ep)
            continue
        per_arm = isinstance(conv, Mapping) and not set(conv) <= {"approach", "closing"}
        src = {
            a: as_tool_frame(conv[a] if per_arm else conv)
            for a in ep.ee
            if not per_arm or a in conv
        }
        dst = {a: target.get(a, first) for a in ep.ee}
        if len(src) == len(ep.ee) and all(_same_frame(src[a], dst[a]) for a in ep.ee):
            out.append(ep)  # already this robot's convention: leave the poses untouched
            continue
        if home is None:
            scene.reset(np.random.default_rng(0))  # home pose (every attempt resets again)
            home = {a: to_canonical(scene.ee_pose(a), target[a]) for a in scene.arms}
        can = episode_tool_frames(ep, conv, None)
        record = can.meta.provenance["tool_frame"]
        can = episode_jaw_twins(can, {a: home.get(a, home[scene.arms[0]]) for a in can.ee})
        mapped = episode_tool_frames(can, None, dst)
        for a, r in mapped.meta.provenance["tool_frame"].items():
            r["source"] = record[a]["source"]
        out.append(mapped)
    return out


def _object_radius(scene: Scene, name: str) -> float:
    """Radius [m] of a sphere about body ``name``'s origin bounding its visible geoms."""
    import mujoco

    m = scene.model
    bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
    if bid < 0:
        return 0.0
    from sim.model.contacts import subtree_bodies

    bodies = set(subtree_bodies(m, bid).tolist())
    d = mujoco.MjData(m)  # at qpos0: geom offsets within the object do not depend on its pose
    mujoco.mj_kinematics(m, d)
    r = 0.0
    for g in range(m.ngeom):
        if int(m.geom_bodyid[g]) in bodies:
            off = d.geom_xpos[g] - d.xpos[bid]
            r = max(r, float(np.linalg.norm(off)) + float(m.geom_rbound[g]))
    return r


def _same_frame(a: Any, b: Any) -> bool:
    return bool(
        np.allclose(a.approach, b.approach, atol=1e-9)
        and np.allclose(a.closing, b.closing, atol=1e-9)
    )


def _load(path: str | Path) -> list[Episode]:
    from sim.io import read_episodes

    return list(read_episodes(path))


@register_source("demos")
def make_demos(
    scene: Scene,
    path: str | Path | None = None,
    episodes: Sequence[Episode] | None = None,
    arm_map: Mapping[str, str] | None = None,
    object_map: Mapping[str, str] | None = None,
    select: str = "nearest",
    transit_steps: int = 10,
    noise: float = 0.0,
    time_warp: Sequence[float] = (1.0, 1.0),
    max_speed: float = MAX_SPEED,
    max_accel: float = MAX_ACCEL,
    max_angular: float = MAX_ANGULAR,
    retime: bool = True,
    annotations: str | Path | None = None,
    coordination: str | None = None,
    only_successful: bool = True,
    source_tool_frame: Any = "auto",
    trim_approach: float | None = None,
    transit_clearance: float | None = None,
) -> DemosSource:
    """Build the ``demos`` source for ``scene``'s task.

    Args:
        path: a dataset in any format :func:`sim.io.read_episodes` reads; or
        episodes: source episodes in memory (tests).
        arm_map: source arm -> target arm (default: same names; a one-arm source drives the
            task's arm; an idle mapped arm is swapped for the source's active one).
        object_map: source object -> task object (default: same names, then in order).
        select: ``nearest`` (reference-object pose, top 3) or ``random``, per subtask.
        transit_steps: minimum-jerk transit length into each segment [control steps].
        noise: std of Gaussian EE position noise [m] (0 = none).
        time_warp: (lo, hi) playback-duration factor per subtask (1 = source timing).
        max_speed, max_accel, max_angular: retime caps [m/s], [m/s^2], [rad/s].
        retime: apply the caps (steps only get slower).
        annotations: annotation file overriding the segmentation (see sim.augment.annotations).
        coordination: ``independent`` or ``synchronized``; default: the task spec's sync groups.
        only_successful: skip source episodes whose recorded success is False.
        source_tool_frame: the tool-frame convention of the arm that recorded the source (EE
            site axes: ``{approach: [x, y, z], closing: [x, y, z]}``, one per source arm as
            ``{arm: {...}}``, or a robot name whose YAML declares it). ``auto``: what each
            episode recorded (``provenance.tool_frame``), else its robot's YAML when that robot
            is known, else this robot's. Source EE poses are mapped through the canonical grasp
            frame into this robot's convention (choosing the jaw-symmetric twin nearer its home
            orientation); nothing is mapped when the conventions already agree.
        transit_clearance: collision-aware transit: route over task objects (bounding spheres)
            that the straight transit would pass within this distance [m] of, e.g. 0.03;
            None = straight minimum-jerk transits.
        trim_approach: radius [m]; cut each source episode's start before its active EE first
            comes within it of the first subtask's object (the other robot's own home pose and
            base would otherwise become a transit). None = keep everything.
    """
    task = scene.task
    if task is None:
        raise ConfigError("the demos source needs a scene with a task")
    if (path is None) == (episodes is None):
        raise ConfigError("source 'demos' needs exactly one of 'path' (dataset) or 'episodes'")
    if select not in MODES:
        raise UnknownNameError("source.select", select, MODES)
    if coordination is not None and coordination not in COORDINATION:
        raise UnknownNameError("source.coordination", coordination, COORDINATION)
    if int(transit_steps) < 0:
        raise ConfigError(f"source.transit_steps must be >= 0, got {transit_steps}")
    if transit_clearance is not None and not float(transit_clearance) >= 0:
        raise ConfigError(f"source.transit_clearance must be >= 0 [m], got {transit_clearance}")
    if len(time_warp) != 2:
        raise ConfigError(f"source.time_warp must be (lo, hi), got {time_warp!r}")
    warp = check_range("source.time_warp", *time_warp)
    eps = _load(path) if path is not None else list(episodes or [])
    if not eps:
        raise ConfigError(f"source 'demos': no episodes in {path or 'episodes'}")
    eps = _map_tool_frames(scene, eps, source_tool_frame, trim_approach)
    dataset = str(path) if path is not None else "<memory>"
    ann = load_annotations(annotations) if annotations is not None else {}
    for idx in ann:
        if not 0 <= idx < len(eps):
            raise PlanError(
                f"annotation file {annotations}: episode {idx} out of range (the source has "
                f"{len(eps)} episodes)",
                cause="annotation_out_of_range",
            )
    object_maps = []
    for ep in eps:
        src_objs = list(ep.objects)
        if object_map:
            missing = [s for s in object_map if s not in ep.objects]
            if missing:
                raise PlanError(
                    f"{ep.meta.source}: object_map names source object(s) {missing} that the "
                    f"source lacks (objects: {sorted(ep.objects)})",
                    cause="object_mismatch",
                )
            bad = [t for t in object_map.values() if t not in task.objects]
            if bad:
                raise PlanError(
                    f"object_map maps to {bad}, not objects of task {task.name!r} "
                    f"({list(task.objects)})",
                    cause="object_mismatch",
                )
            m = {t: s for s, t in object_map.items()}
            rest = [s for s in src_objs if s not in object_map]
            m.update(
                {k: v for k, v in default_object_map(rest, task.objects).items() if k not in m}
            )
        else:
            m = default_object_map(src_objs, task.objects)
        object_maps.append(m)
    strokes = {}
    for arm, a in scene.robot.arms.items():
        g = a.gripper
        strokes[arm] = float(getattr(g, "stroke_time", GRIPPER_STROKE_S)) if g else 0.0
    src = DemosSource(
        task=task,
        episodes=eps,
        dataset=dataset,
        dt=scene.control_dt,
        object_maps=object_maps,
        arm_map=dict(arm_map or {}),
        select=select,
        transit_steps=int(transit_steps),
        noise=float(noise),
        time_warp=warp,
        max_speed=float(max_speed),
        max_accel=float(max_accel),
        max_angular=float(max_angular),
        gripper_stroke=strokes,
        annotations=ann,
        annotations_path=str(annotations or ""),
        coordination=coordination,
        retime=bool(retime),
        transit_clearance=None if transit_clearance is None else float(transit_clearance),
        object_radius={o: _object_radius(scene, o) for o in task.objects},
        base=_mount_pose(scene),
    )
    if only_successful:
        for i, ep in enumerate(eps):
            if ep.meta.success is False:
                src.skipped[i] = "source episode failed"
    _check_refs(src, scene)
    return src


def _mount_pose(scene: Scene) -> np.ndarray:
    """World pose (7,) of the robot's mount: the mirror plane for swapping hands."""
    import mujoco

    sid = mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_SITE, "robot_mount")
    if sid < 0:
        return np.array([0, 0, 0, 1.0, 0, 0, 0])
    mujoco.mj_kinematics(scene.model, scene.data)
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, scene.data.site_xmat[sid])
    return np.concatenate([scene.data.site_xpos[sid], q])


def _check_refs(src: DemosSource, scene: Scene) -> None:
    """Fail early, naming the object, when a reference object of the spec is in no source."""
    try:
        spec = src._spec(scene)
    except (SimError, KeyError, ValueError, AttributeError):
        return  # the spec needs a reset scene: checked per attempt instead
    refs = {s.ref for s in spec if s.ref is not None}
    for ref in sorted(refs):
        if all(
            ref not in m or m[ref] not in ep.objects
            for m, ep in zip(src.object_maps, src.episodes, strict=True)
        ):
            have = sorted(src.episodes[0].objects)
            raise PlanError(
                f"source {src.dataset}: task {src.task.name!r} object {ref!r} is missing from "
                f"the source episodes (source objects: {have}); give source.object_map",
                cause="object_mismatch",
            )
