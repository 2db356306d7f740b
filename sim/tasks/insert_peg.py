"""insert_peg (assembly_line): pick a square peg off the bench and insert it into a fixture hole.

The peg is 2 x 2 x 10 cm, the fixture's square through-hole 2.6 cm wide and 4 cm deep (3 mm
clearance per side). The demonstrator grasps the peg near its top, aligns it above the hole with
the hole's yaw, descends slowly and lets go; success is judged from the peg's pose and contacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import held_by_hands, robot_touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import yaw_quat

PEG_HALF = (0.01, 0.05)  # peg half width, half length [m]
HOLE_HALF = 0.013  # half width of the fixture's square hole [m]
FIXTURE_H = 0.04  # fixture height above the bench = hole depth [m]
MIN_DEPTH = 0.02  # peg bottom at least this far below the fixture top when inserted [m]
MAX_TILT = np.deg2rad(10.0)  # peg axis vs vertical [rad]
# Per level, relative to the workspace site [m, rad]: half-ranges of peg/fixture xy and yaw,
# and whether the layout may be mirrored (left arm works).
LEVEL_RANGES = {
    "D0": {"xy": 0.015, "yaw": 0.2, "swap": False},
    "D1": {"xy": 0.03, "yaw": 0.5, "swap": False},
    "D2": {"xy": 0.04, "yaw": np.pi / 4, "swap": True},
}
NOMINAL = {"peg": (-0.05, -0.22), "fixture": (-0.03, -0.08)}
FIXTURE_X_MAX = 0.0  # largest fixture-centre x offset [m]: keeps it on the bench (edge at +0.05)
MIN_GAP = 0.11  # minimum peg-fixture centre distance at reset [m]
# Right hand's top-down yaw [rad] (left: negated) in the middle of the range (1.3..3.0) where the
# IK tracks grasp and insertion near the body without hitting the wrist-pitch limit; grasp and
# hole yaws are the square's 90°-equivalents closest to it.
HAND_YAW = 2.15


@register_task("insert_peg")
@dataclass
class InsertPeg(Task):
    """Insert the steel ``peg`` into the orange ``fixture``'s square hole, at least 2 cm deep."""

    room: str = "assembly_line"
    props: str = "props/insert_peg.xml"
    objects: tuple[str, ...] = ("peg", "fixture")
    arms: tuple[str, ...] = ("right", "left")
    instruction: str = "Insert the steel peg into the hole of the orange fixture."
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))
    symmetry = MappingProxyType({"peg": 4, "fixture": 4})  # z-symmetry order (0 = round)

    def bind(self, scene: Scene) -> None:
        self._peg = scene.model.body("peg").id
        self._fix = scene.model.body("fixture").id
        scene.remember_nominal("body_pos", "body_quat")

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        ws = scene.workspace()
        sign = -1.0 if r["swap"] and rng.random() < 0.5 else 1.0  # -1: mirrored, left arm
        fx0, fy0 = NOMINAL["fixture"]
        fx = fx0 + rng.uniform(-r["xy"], min(r["xy"], FIXTURE_X_MAX - fx0))
        fxy = np.array([fx, fy0 + rng.uniform(-r["xy"], r["xy"])])
        for _ in range(100):
            pxy = np.array(NOMINAL["peg"]) + rng.uniform(-r["xy"], r["xy"], 2)
            if np.linalg.norm(pxy - fxy) >= MIN_GAP:
                break
        m = scene.model
        m.body_pos[self._fix] = ws + np.array([fxy[0], sign * fxy[1], 0.0])
        m.body_quat[self._fix] = yaw_quat(rng.uniform(-r["yaw"], r["yaw"]))
        pos = ws + np.array([pxy[0], sign * pxy[1], PEG_HALF[1] + 1e-4])
        yaw = rng.uniform(-r["yaw"], r["yaw"])
        scene.set_free_pose("peg", np.concatenate([pos, yaw_quat(yaw)]))

    # ------------------------------------------------------------------ physics-judged signals
    def _peg_in_fixture(self, scene: Scene) -> tuple[np.ndarray, float]:
        """Peg bottom-centre in the fixture frame [m] and the peg axis tilt from vertical [rad]."""
        d = scene.data
        axis = d.xmat[self._peg].reshape(3, 3)[:, 2]
        bottom = d.xpos[self._peg] - PEG_HALF[1] * axis * np.sign(axis[2] or 1.0)
        local = d.xmat[self._fix].reshape(3, 3).T @ (bottom - d.xpos[self._fix])
        return local, float(np.arccos(np.clip(abs(axis[2]), 0.0, 1.0)))

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        local, tilt = self._peg_in_fixture(scene)
        grasped = any(held_by_hands(scene.model, scene.data, self._peg, scene.hand_bodies.values()))
        aligned = bool(
            tilt < MAX_TILT and np.linalg.norm(local[:2]) < 0.004 and local[2] < FIXTURE_H + 0.03
        )
        return {"grasped": grasped, "aligned": aligned, "inserted": self._inserted(local, tilt)}

    @staticmethod
    def _inserted(local: np.ndarray, tilt: float) -> bool:
        return bool(
            tilt < MAX_TILT
            and np.all(np.abs(local[:2]) < HOLE_HALF)
            and local[2] <= FIXTURE_H - MIN_DEPTH
        )

    def success(self, scene: Scene) -> bool:
        local, tilt = self._peg_in_fixture(scene)
        resting = np.linalg.norm(scene.data.cvel[self._peg]) < 0.05
        released = not robot_touching(scene.model, scene.data, self._peg, scene.robot_root)
        return bool(self._inserted(local, tilt) and resting and released)

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp the ``peg``, then align and insert it relative to the ``fixture``."""
        arm = _work_arm(scene, scene.body_pose("peg"))
        return [Subtask("grasp", "peg", "grasped", arm), Subtask("insert", "fixture", None, arm)]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        peg = scene.body_pose("peg")
        hole = scene.data.xpos[self._fix].copy()
        arm = _work_arm(scene, peg)
        pref = HAND_YAW if arm == "right" else -HAND_YAW

        def pose(xy: np.ndarray, z: float, yaw: float) -> np.ndarray:
            return np.concatenate([xy, [z], yaw_quat(yaw)])

        y_grasp = _near_yaw(_yaw(peg[3:]), pref)
        y_hole = _near_yaw(_yaw(scene.data.xquat[self._fix]), pref)
        bench = hole[2]
        grip_h = 2 * PEG_HALF[1] - rng.uniform(0.02, 0.025)  # EE height above the peg bottom
        z_grasp = peg[2] - PEG_HALF[1] + grip_h
        up = rng.uniform(0.08, 0.1)
        above = z_grasp + up + 0.02  # approach from higher up: the hand arrives tilted
        g_xy = peg[:2] + np.clip(rng.normal(0, 0.0008, 2), -0.0015, 0.0015)  # mm-level aim jitter
        h_xy = hole[:2] + np.clip(rng.normal(0, 0.0008, 2), -0.0015, 0.0015)
        top = bench + FIXTURE_H
        low = bench + 0.004 + grip_h  # EE height with the peg bottom 4 mm above the bench
        return Plan().add(
            arm,
            Waypoint(pose(g_xy, above, y_grasp), 1.3, 1.0, "approach", "peg"),
            Waypoint(pose(g_xy, z_grasp, y_grasp), 0.8, 1.0, "grasp", "peg"),
            Waypoint(pose(g_xy, z_grasp, y_grasp), 0.5, 0.0, "grasp", "peg", grip_at_start=True),
            Waypoint(pose(g_xy, z_grasp + up, y_grasp), 0.7, 0.0, "lift", "peg"),
            Waypoint(pose(h_xy, top + 0.03 + grip_h, y_hole), 1.2, 0.0, "move", "fixture"),
            Waypoint(pose(h_xy, top + 0.008 + grip_h, y_hole), 0.6, 0.0, "align", "fixture"),
            Waypoint(pose(h_xy, top + 0.008 + grip_h, y_hole), 0.3, 0.0, "align", "fixture"),
            Waypoint(pose(h_xy, low, y_hole), 1.4, 0.0, "insert", "fixture"),
            Waypoint(pose(h_xy, low, y_hole), 0.4, 1.0, "release", "fixture", grip_at_start=True),
            Waypoint(pose(h_xy, top + 0.05 + grip_h, y_hole), 0.6, 1.0, "retreat", "fixture"),
        )


def _work_arm(scene: Scene, peg: np.ndarray) -> str:
    """The arm on the peg's side of the workspace (the robot's first arm if it lacks it)."""
    arm = "right" if peg[1] < scene.workspace()[1] else "left"
    return arm if arm in scene.robot.arms else scene.arms[0]


def _yaw(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _near_yaw(yaw: float, pref: float) -> float:
    """The yaw equivalent to ``yaw`` under the square's 90° symmetry that is closest to ``pref``."""
    return float(pref + (yaw - pref + np.pi / 4) % (np.pi / 2) - np.pi / 4)
