"""Grasping with hands that have no fingers (e.g. the Unitree G1's rubber hands).

At build time :func:`add_grasp_welds` adds one inactive weld equality per (arm, graspable
object) to the scene spec. At run time :class:`WeldGrasp` plays the gripper: a commanded opening
below the gripper's ``threshold`` while a collision geom of the hand touches (or is within
``distance`` of) an object activates that object's weld with the current hand-object pose, so
the object is held where it is; an opening above ``threshold`` releases it. The measured opening
is 0 while an object is welded and 1 otherwise, like a finger gripper closed on an object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from sim.errors import ConfigError
from sim.model.contacts import subtree_bodies
from sim.model.robot import ArmSpec, GripperSpec, RobotSpec

if TYPE_CHECKING:
    from sim.tasks.base import Task


def weld_arms(robot: RobotSpec) -> list[str]:
    """Arms whose gripper is a weld (hands without fingers), in RobotSpec order."""
    return [arm for arm, a in robot.arms.items() if a.gripper is not None and a.gripper.weld]


def graspable_objects(task: Task | Any | None) -> tuple[str, ...]:
    """Bodies a weld hand may hold: the task's ``graspable`` if it has one, else its ``objects``."""
    if task is None:
        return ()
    return tuple(getattr(task, "graspable", None) or task.objects)


def weld_name(arm: str, obj: str) -> str:
    """Name of the weld equality between ``arm``'s hand and body ``obj``."""
    return f"grasp_weld_{arm}_{obj}"


def hand_body_name(spec: mujoco.MjSpec, arm: str, a: ArmSpec) -> str:
    """The body welded to objects: ``gripper.body``, else the EE site's body."""
    assert a.gripper is not None
    if a.gripper.body:
        return a.gripper.body
    if a.ee_body:
        return a.ee_body
    site = spec.site(a.ee_site)
    if site is None:
        raise ConfigError(f"arms.{arm}.ee_site {a.ee_site!r} not in the composed scene")
    return site.parent.name


def add_grasp_welds(spec: mujoco.MjSpec, robot: RobotSpec, objects: tuple[str, ...]) -> None:
    """Add an inactive weld (hand body -> object body) per weld-gripper arm and object."""
    for arm in weld_arms(robot):
        a = robot.arms[arm]
        assert a.gripper is not None
        hand = hand_body_name(spec, arm, a)
        if spec.body(hand) is None:
            raise ConfigError(f"{robot.source}: arms.{arm}.gripper.body {hand!r} not in the scene")
        for obj in objects:
            if spec.body(obj) is None:
                raise ConfigError(f"graspable object {obj!r} is not a body of the scene")
            eq = spec.add_equality(
                name=weld_name(arm, obj),
                type=mujoco.mjtEq.mjEQ_WELD,
                objtype=mujoco.mjtObj.mjOBJ_BODY,
                name1=hand,
                name2=obj,
                active=False,
            )
            eq.solref = list(a.gripper.solref)


def _collision_geoms(model: mujoco.MjModel, bodies: np.ndarray) -> np.ndarray:
    """Geoms of ``bodies`` that take part in collisions (contype or conaffinity set)."""
    sel = np.isin(model.geom_bodyid, bodies) & (
        (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    )
    return np.flatnonzero(sel)


def _point_geom_distance(
    model: mujoco.MjModel, data: mujoco.MjData, point: np.ndarray, geom: int
) -> float:
    """Distance [m] from a world point to a geom's bounding box (exact for boxes)."""
    rot = data.geom_xmat[geom].reshape(3, 3)
    local = rot.T @ (point - data.geom_xpos[geom]) - model.geom_aabb[geom, :3]
    return float(np.linalg.norm(np.maximum(np.abs(local) - model.geom_aabb[geom, 3:], 0.0)))


def _rigid_geoms(model: mujoco.MjModel, body: int) -> np.ndarray:
    """Collision geoms moving rigidly with ``body`` (same weld body; a door's handle, not the
    door of a cabinet: each part is grasped as itself)."""
    bodies = np.flatnonzero(model.body_weldid == model.body_weldid[body])
    return _collision_geoms(model, bodies)


@dataclass
class _ArmWeld:
    gripper: GripperSpec
    hand: int  # body id
    site: int  # EE site id
    hand_geoms: np.ndarray
    eq: dict[int, int]  # object body id -> equality id
    obj_geoms: dict[int, np.ndarray]


@dataclass
class WeldGrasp:
    """Run-time weld grippers of a compiled scene (see module docstring).

    Attributes:
        commanded: arm -> last commanded opening in [0, 1].
        attached: arm -> body id of the held object, or None.
    """

    model: mujoco.MjModel
    arms: dict[str, _ArmWeld]
    commanded: dict[str, float] = field(default_factory=dict)
    attached: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def build(cls, model: mujoco.MjModel, robot: RobotSpec, objects: tuple[str, ...]) -> WeldGrasp:
        """Index the welds :func:`add_grasp_welds` added; static objects are never grasped."""
        arms = {}
        for arm in weld_arms(robot):
            g = robot.arms[arm].gripper
            assert g is not None
            eq_of: dict[int, int] = {}
            for obj in objects:
                e = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_EQUALITY, weld_name(arm, obj))
                b = model.body(obj).id
                if e >= 0 and model.body_weldid[b] != 0:  # weldid 0: fixed to the world
                    eq_of[b] = e
            a = robot.arms[arm]
            name = g.body or a.ee_body
            hand = model.body(name).id if name else int(model.site_bodyid[model.site(a.ee_site).id])
            hand_geoms = _collision_geoms(model, subtree_bodies(model, hand))
            if len(hand_geoms) == 0:
                raise ConfigError(
                    f"{robot.source}: weld gripper of arm {arm!r}: hand body "
                    f"{model.body(hand).name!r} has no collision geoms (add some with add_geoms)"
                )
            arms[arm] = _ArmWeld(
                gripper=g,
                hand=hand,
                site=model.site(a.ee_site).id,
                hand_geoms=hand_geoms,
                eq=eq_of,
                obj_geoms={b: _rigid_geoms(model, b) for b in eq_of},
            )
        out = cls(model=model, arms=arms)
        out.commanded = {arm: 1.0 for arm in arms}
        out.attached = {arm: None for arm in arms}
        return out

    def reset(self, data: mujoco.MjData) -> None:
        """Release everything (call after mj_resetData)."""
        for arm, w in self.arms.items():
            for e in w.eq.values():
                data.eq_active[e] = 0
            self.commanded[arm] = 1.0
            self.attached[arm] = None

    def opening(self, arm: str) -> float:
        """Measured opening: 0 while holding an object, 1 otherwise."""
        return 0.0 if self.attached[arm] is not None else 1.0

    def held(self, arm: str) -> str | None:
        """Name of the body ``arm`` holds, or None."""
        b = self.attached[arm]
        return None if b is None else self.model.body(b).name

    def command(self, data: mujoco.MjData, arm: str, opening: float) -> None:
        """Apply a commanded opening in [0, 1]: grasp a touching object or release."""
        w = self.arms[arm]
        self.commanded[arm] = opening
        if opening > w.gripper.threshold and self.attached[arm] is not None:
            data.eq_active[w.eq[self.attached[arm]]] = 0
            self.attached[arm] = None
        elif opening < w.gripper.threshold and self.attached[arm] is None:
            obj = self.touching(data, arm)
            if obj is not None:
                self._attach(data, arm, obj)

    def touching(self, data: mujoco.MjData, arm: str) -> int | None:
        """The graspable body the hand holds if it closed now, or None.

        Candidates are objects within ``distance`` [m] of a hand collision geom; among them the
        one nearest to the EE site (the grasp centre) wins, so fingertips brushing a neighbour
        do not steal the grasp.
        """
        w = self.arms[arm]
        best, best_d = None, np.inf
        for b, geoms in w.obj_geoms.items():
            if not any(
                mujoco.mj_geomDistance(self.model, data, int(g1), int(g2), w.gripper.distance, None)
                < w.gripper.distance
                for g2 in geoms
                for g1 in w.hand_geoms
            ):
                continue
            d = min(
                _point_geom_distance(self.model, data, data.site_xpos[w.site], g) for g in geoms
            )
            if d < best_d:
                best, best_d = b, d
        return best

    def _attach(self, data: mujoco.MjData, arm: str, obj: int) -> None:
        """Activate the weld hand -> obj with their current relative pose."""
        w = self.arms[arm]
        e = w.eq[obj]
        rot = data.xmat[w.hand].reshape(3, 3)
        relpos = rot.T @ (data.xpos[obj] - data.xpos[w.hand])
        q_inv, relquat = np.empty(4), np.empty(4)
        mujoco.mju_negQuat(q_inv, data.xquat[w.hand])
        mujoco.mju_mulQuat(relquat, q_inv, data.xquat[obj])
        ed = self.model.eq_data[e]
        ed[0:3] = 0.0  # anchor at the object's origin
        ed[3:6] = relpos
        ed[6:10] = relquat
        ed[10] = 1.0  # torque scale
        data.eq_active[e] = 1
        self.attached[arm] = obj
