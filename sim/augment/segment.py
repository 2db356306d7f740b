"""Segmentation of source episodes into object-centric subtasks (MimicGen, per arm).

Boundaries come, in order of precedence, from an annotation file (frame indices per subtask,
:mod:`sim.augment.annotations`), from the task's subtask signals recorded in the episode, or
from heuristics (gripper close events near the reference object, EE speed minima). A subtask
that ends at a signal is a grasp: its boundary moves past the grasp to the end of the lift (the
first EE speed minimum once the hand has moved ``LIFT`` away), so that the transit into the next
segment happens in free space, not while the fingers close.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import PlanError

if TYPE_CHECKING:
    from sim.episode import Episode
    from sim.tasks.base import Subtask

LIFT = 0.02  # EE displacement after the grasp before the boundary may fall on a speed min [m]
LIFT_MAX = 0.05  # boundary at the latest once the EE has moved this far [m]
STILL = 0.01  # EE speed counting as a stop [m/s]
GRASP_DIST = 0.15  # EE within this distance of the reference object at a grasp [m]
OPEN = 0.5  # gripper command threshold: below = closed


@dataclass(frozen=True)
class Segment:
    """Frames [start, stop) of one source episode that perform one subtask with one arm.

    Attributes:
        episode: index of the source episode in the source's list.
        arm: source arm whose EE track the segment follows.
        target_arm: arm of the target robot that executes it.
        label: subtask label; ref: reference object in the task (None = world frame);
        src_ref: the same object's name in the source episode.
        start, stop: frame range; sync: synchronization group (None = independent).
        how: where the boundary came from: ``annotation``, ``signal``, ``heuristic`` or ``end``.
    """

    episode: int
    arm: str
    target_arm: str
    label: str
    ref: str | None
    src_ref: str | None
    start: int
    stop: int
    sync: str | None = None
    how: str = "signal"

    def to_dict(self) -> dict:
        return {
            "episode": self.episode,
            "arm": self.arm,
            "target_arm": self.target_arm,
            "label": self.label,
            "ref": self.ref,
            "src_ref": self.src_ref,
            "start": self.start,
            "stop": self.stop,
            "sync": self.sync,
            "boundary": self.how,
        }


def source_track(ep: Episode, arm: str) -> tuple[np.ndarray, np.ndarray]:
    """(EE poses (T, 7), gripper commands (T,)) of a source arm: commanded targets when the
    episode has them (schema 1.1), else the measured EE; gripper command from ``gripper_cmd``,
    the action column ``<arm>_gripper``, or the measured opening."""
    pose = ep.target.get(arm) if ep.target else None
    if pose is None:
        pose = ep.ee[arm]
    pose = np.asarray(pose, float)
    grip = ep.gripper_cmd.get(arm) if ep.gripper_cmd else None
    if grip is None and ep.action is not None and f"{arm}_gripper" in ep.action_names:
        grip = np.asarray(ep.action)[:, ep.action_names.index(f"{arm}_gripper")]
    if grip is None:
        grip = ep.gripper.get(arm, np.ones(len(pose)))
    return pose, np.asarray(grip, float)


def ee_speed(pose: np.ndarray, fps: float) -> np.ndarray:
    """EE linear speed per step [m/s] (T,), the first step copying the second."""
    v = np.linalg.norm(np.diff(pose[:, :3], axis=0), axis=1) * fps
    return np.concatenate([v[:1], v]) if len(v) else np.zeros(len(pose))


def lift_end(pose: np.ndarray, k: int, fps: float) -> int:
    """First frame after ``k`` where the EE, having moved >= LIFT from its pose at ``k``, stops
    (speed minimum), or has moved LIFT_MAX; the episode end if neither happens."""
    T = len(pose)
    d = np.linalg.norm(pose[:, :3] - pose[k, :3], axis=1)
    v = ee_speed(pose, fps)
    for i in range(k + 1, T - 1):
        if d[i] >= LIFT_MAX:
            return i
        if d[i] >= LIFT and (v[i] <= STILL or (v[i] <= v[i - 1] and v[i] <= v[i + 1])):
            return i
    return T - 1


def close_events(grip: np.ndarray, start: int = 0) -> list[int]:
    """Frames >= start where the gripper command goes from open to closed."""
    closed = np.asarray(grip) < OPEN
    return [int(i) for i in range(max(start, 1), len(closed)) if closed[i] and not closed[i - 1]]


def heuristic_grasp(
    ep: Episode, arm: str, ref_pose: np.ndarray | None, start: int, src: str
) -> int:
    """Frame of the grasp after ``start``: the first close event with the EE within
    GRASP_DIST of the reference object, plus the stroke time until the measured fingers stop.

    Raises:
        PlanError(cause='no_grasp'): the arm never closes its gripper near the object.
    """
    pose, grip = source_track(ep, arm)
    meas = ep.gripper.get(arm)
    for k in close_events(grip, start):
        if ref_pose is not None and np.linalg.norm(pose[k, :3] - ref_pose[k, :3]) > GRASP_DIST:
            continue
        if meas is None:
            return min(k + int(round(0.3 * ep.meta.fps)), len(pose) - 1)
        m = np.asarray(meas, float)
        for i in range(k + 1, len(m)):
            if abs(m[i] - m[i - 1]) < 0.005:
                return i
        return len(m) - 1
    where = "" if ref_pose is None else " near the reference object"
    raise PlanError(
        f"{src}: arm {arm!r} has no gripper close event{where} after frame {start} "
        f"(no grasp to segment at)",
        cause="no_grasp",
    )


def segment_episode(
    ep: Episode,
    spec: Sequence[Subtask],
    arms: Mapping[str, str],
    objects: Mapping[str, str],
    index: int = 0,
    annotation: Mapping[str, int] | None = None,
    use_signals: bool = True,
) -> list[Segment]:
    """Segments of one source episode, one per entry of ``spec`` (same order).

    Args:
        ep: the source episode (poses in its world frame).
        spec: the task's subtask spec (target arms, task object names).
        arms: target arm -> source arm.
        objects: task object -> source object name.
        index: the episode's index in the source list (recorded in each segment).
        annotation: ``label`` or ``arm:label`` -> end frame (exclusive) of that subtask,
            overriding signals and heuristics.
        use_signals: read the task's subtask signals when the episode has them.

    Raises:
        PlanError: ``object_mismatch`` (a reference object missing from the source),
            ``no_grasp`` (no grasp event), ``no_signal`` (a signal never turns true).
    """
    src = ep.meta.source
    T = len(ep)
    out: list[Segment] = []
    per_arm: dict[str, list[Subtask]] = {}
    for st in spec:
        per_arm.setdefault(st.arm, []).append(st)
    for tarm, subs in per_arm.items():
        sarm = arms[tarm]
        if sarm not in ep.ee:
            raise PlanError(
                f"{src}: source has no arm {sarm!r} (arms: {sorted(ep.ee)})", "arm_mismatch"
            )
        pose, _ = source_track(ep, sarm)
        start = 0
        for k, st in enumerate(subs):
            src_ref = objects.get(st.ref) if st.ref is not None else None
            if st.ref is not None and src_ref not in ep.objects:
                raise PlanError(
                    f"{src}: reference object {st.ref!r} of subtask {st.label!r} is not in the "
                    f"source (objects: {sorted(ep.objects)}); give source.object_map",
                    cause="object_mismatch",
                )
            key = f"{tarm}:{st.label}"
            if k == len(subs) - 1:
                stop, how = T, "end"
            elif annotation is not None and (key in annotation or st.label in annotation):
                stop, how = int(annotation.get(key, annotation.get(st.label))), "annotation"
            elif use_signals and st.signal is not None and st.signal in ep.subtasks:
                sig = np.asarray(ep.subtasks[st.signal], bool)
                hits = np.flatnonzero(sig[start:])
                if not len(hits):
                    raise PlanError(
                        f"{src}: signal {st.signal!r} of subtask {st.label!r} never turns true "
                        f"after frame {start}",
                        cause="no_grasp",
                    )
                stop, how = lift_end(pose, start + int(hits[0]), ep.meta.fps), "signal"
            else:
                ref = np.asarray(ep.objects[src_ref]) if src_ref is not None else None
                g = heuristic_grasp(ep, sarm, ref, start, src)
                stop, how = lift_end(pose, g, ep.meta.fps), "heuristic"
            stop = int(np.clip(stop, start + 1, T))
            out.append(
                Segment(index, sarm, tarm, st.label, st.ref, src_ref, start, stop, st.sync, how)
            )
            start = stop
    return _sync_bounds(out, T)


def _sync_bounds(segs: list[Segment], T: int) -> list[Segment]:
    """Give the segments of one sync group the same frames (latest boundary of the group)."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(segs):
        if s.sync is not None:
            groups.setdefault(s.sync, []).append(i)
    if not groups:
        return segs
    stop = {g: max(segs[i].stop for i in idx) for g, idx in groups.items()}
    fixed: list[Segment] = []
    prev: dict[str, int] = {}
    for s in segs:
        start = prev.get(s.target_arm, 0)
        end = stop[s.sync] if s.sync is not None else s.stop
        end = int(np.clip(end, start + 1, T))
        fixed.append(dataclasses.replace(s, start=start, stop=end))
        prev[s.target_arm] = end
    return fixed


def active_arms(ep: Episode, min_path: float = 0.05) -> list[str]:
    """Source arms whose EE travels at least ``min_path`` [m] or closes its gripper."""
    out = []
    for arm in ep.ee:
        pose, grip = source_track(ep, arm)
        path = float(np.sum(np.linalg.norm(np.diff(pose[:, :3], axis=0), axis=1)))
        if path >= min_path or close_events(grip):
            out.append(arm)
    return out
