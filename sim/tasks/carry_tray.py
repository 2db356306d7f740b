"""carry_tray (elder_care, bimanual): carry a tray with two beakers to the placemat, level."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import held_by_hands, robot_touching, touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import quat_mul, quat_to_mat, yaw_quat

TRAY_HALF_T = 0.004  # base-plate half thickness [m]
TRAY_INNER = np.array([0.084, 0.124])  # floor half extents inside the rims [m]
HANDLE = (0.16, 0.02)  # handle centre in the tray frame: |y|, z [m]
BEAKER = (0.026, 0.035)  # beaker radius, half height [m]
LEVEL_DEG = 10.0  # the tray counts as level below this tilt [deg]
TARGET_TOL = 0.04  # tray centre within this distance (x and y) of the placemat centre [m]
CARRY = 0.16  # nominal carry distance toward the robot (-x) [m]
# Reset ranges per level [m, rad]: tray position and yaw, placemat offset, beakers on the tray.
LEVEL_RANGES = {
    "D0": {"xy": 0.015, "yaw": 0.05, "target": 0.01, "beaker": 0.01},
    "D1": {"xy": 0.03, "yaw": 0.15, "target": 0.02, "beaker": 0.02},
    "D2": {"xy": 0.05, "yaw": 0.3, "target": 0.03, "beaker": 0.03},
}
NOMINAL = (0.06, 0.0)  # tray centre relative to the workspace site (table top) [m]


def tilt_deg(scene: Scene, body: int) -> float:
    """Angle between a body's z axis and world z [deg]."""
    return float(np.degrees(np.arccos(np.clip(scene.data.xmat[body][8], -1.0, 1.0))))


@register_task("carry_tray")
@dataclass
class CarryTray(Task):
    """Grasp the tray by both handles (one hand each), lift, carry ~16 cm and set it down.

    Success: the tray rests on the table over the placemat (centre within 4 cm), level
    (tilt < 10°), both beakers still standing on it, released by both hands, and still.
    """

    room: str = "elder_care"
    props: str = "props/carry_tray.xml"
    objects: tuple[str, ...] = ("serving_tray", "beaker_a", "beaker_b", "tray_target")
    arms: tuple[str, ...] = ("left", "right")
    instruction: str = "Carry the tray with both hands to the placemat, keeping it level."
    graspable: tuple[str, ...] = ("serving_tray",)  # bodies a weld hand (no fingers) may hold
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))

    def bind(self, scene: Scene) -> None:
        m = scene.model
        self._tray = m.body("serving_tray").id
        self._beakers = [m.body("beaker_a").id, m.body("beaker_b").id]
        self._table = m.body("overbed_table").id
        self._mocap = int(m.body("tray_target").mocapid[0])

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        ws = scene.workspace()
        xy = ws[:2] + np.array(NOMINAL) + rng.uniform(-r["xy"], r["xy"], 2)
        q = yaw_quat(rng.uniform(-r["yaw"], r["yaw"]))
        pos = np.array([*xy, ws[2] + TRAY_HALF_T + 1e-4])
        scene.set_free_pose("serving_tray", np.concatenate([pos, q]))
        rot = quat_to_mat(q)
        for i, name in enumerate(("beaker_a", "beaker_b")):
            local = np.array([0.0, 0.06 if i == 0 else -0.06, TRAY_HALF_T + BEAKER[1] + 1e-4])
            local[:2] += rng.uniform(-r["beaker"], r["beaker"], 2)
            bq = quat_mul(q, yaw_quat(rng.uniform(-np.pi, np.pi)))
            scene.set_free_pose(name, np.concatenate([pos + rot @ local, bq]))
        target = xy + np.array([-CARRY, 0.0]) + rng.uniform(-r["target"], r["target"], 2)
        scene.data.mocap_pos[self._mocap] = [*target, ws[2] + 0.0011]
        scene.data.mocap_quat[self._mocap] = q

    # ------------------------------------------------------------------ physics-judged signals
    def _items_on(self, scene: Scene) -> bool:
        d = scene.data
        rot = d.xmat[self._tray].reshape(3, 3)
        for b in self._beakers:
            local = rot.T @ (d.xpos[b] - d.xpos[self._tray])
            inside = np.all(np.abs(local[:2]) <= TRAY_INNER - BEAKER[0] + 0.003)
            standing = abs(local[2] - TRAY_HALF_T - BEAKER[1]) < 0.01 and tilt_deg(scene, b) < 20
            if not (inside and standing and touching(scene.model, d, b, self._tray)):
                return False
        return True

    def _on_target(self, scene: Scene) -> bool:
        d = scene.data
        off = d.xpos[self._tray][:2] - d.mocap_pos[self._mocap][:2]
        return bool(
            np.all(np.abs(off) <= TARGET_TOL) and touching(scene.model, d, self._tray, self._table)
        )

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        m, d = scene.model, scene.data
        held = held_by_hands(m, d, self._tray, scene.hand_bodies.values())
        return {
            "grasped": bool(all(held)),
            "lifted": bool(d.xpos[self._tray][2] - TRAY_HALF_T > scene.workspace()[2] + 0.015),
            "on_target": self._on_target(scene),
            "items_on_tray": self._items_on(scene),
        }

    def success(self, scene: Scene) -> bool:
        m, d = scene.model, scene.data
        level = tilt_deg(scene, self._tray) < LEVEL_DEG
        released = not robot_touching(m, d, self._tray, scene.robot_root)
        still = np.linalg.norm(d.cvel[self._tray]) < 0.05
        return bool(
            level and released and still and self._on_target(scene) and self._items_on(scene)
        )

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Both hands grasp the tray's handles (ends when both hold it), then carry it to the
        placemat; synchronized: both arms share one transform per subtask."""
        return [
            Subtask(label, ref, signal, arm, sync=label)
            for label, ref, signal in (
                ("grasp", "serving_tray", "grasped"),
                ("carry", "tray_target", None),
            )
            for arm in ("left", "right")
        ]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        tray = scene.body_pose("serving_tray")
        rot, d = quat_to_mat(tray[3:]), scene.data
        w, x, y, z = tray[3:]
        psi = float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
        shift = np.append(d.mocap_pos[self._mocap][:2] - tray[:2], 0.0)
        lift = np.array([0, 0, rng.uniform(0.07, 0.09)])
        durs = [0.6, 1.0, 0.8, 0.5, 0.9, 1.5, 0.9, 0.5, 0.7]  # [s], both arms in lockstep
        plan = Plan()
        for arm, side in (("left", 1.0), ("right", -1.0)):
            grasp = tray[:3] + rot @ np.array([0.0, side * HANDLE[0], HANDLE[1] + 0.002])
            grasp[:2] += rng.normal(0, 0.002, 2)
            q = yaw_quat(psi + side * np.pi / 2)  # fingers close along the tray's x axis

            def pose(pos: np.ndarray, q: np.ndarray = q) -> np.ndarray:
                return np.concatenate([pos, q])

            put = grasp + shift + np.array([0, 0, 0.003])
            start = scene.ee_pose(arm)
            rise = np.concatenate([start[:3] + [0, 0, 0.06], start[3:]])  # raise, then turn
            plan.add(
                arm,
                Waypoint(rise, durs[0], 1.0, "approach", None),
                Waypoint(pose(grasp + [0, 0, 0.08]), durs[1], 1.0, "approach", "serving_tray"),
                Waypoint(pose(grasp), durs[2], 1.0, "grasp", "serving_tray"),
                Waypoint(pose(grasp), durs[3], 0.0, "grasp", "serving_tray", grip_at_start=True),
                Waypoint(pose(grasp + lift), durs[4], 0.0, "lift", "serving_tray"),
                Waypoint(pose(put + lift), durs[5], 0.0, "carry", "tray_target"),
                Waypoint(pose(put), durs[6], 0.0, "place", "tray_target"),
                Waypoint(pose(put), durs[7], 1.0, "release", "tray_target", grip_at_start=True),
                Waypoint(pose(put + [0, 0, 0.08]), durs[8], 1.0, "retreat", "tray_target"),
            )
        return plan
