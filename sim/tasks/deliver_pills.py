"""deliver_pills (elder_care): take the pill bottle off the shelf and put it on the bedside tray."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import mujoco
import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import held_by_hands, robot_touching, touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import yaw_quat

HALF_H = 0.04  # bottle half height [m]
RADIUS = 0.021  # bottle radius [m]
TRAY_INNER = np.array([0.094, 0.074])  # tray floor half extents inside the rims [m]
TRAY_HALF_T = 0.004  # tray base half thickness [m]
GRASP_DZ = -0.01  # EE height relative to the bottle centre for a top-down grasp [m]
UPRIGHT_DEG = 15.0  # the bottle counts as upright below this tilt [deg]
# Reset ranges per level [m, rad]: bottle offset on the shelf, (lo, hi) in x and y (the shelf's
# front edge bounds y from above); tray offset on the table, +-(x, y); tray yaw +-.
LEVEL_RANGES = {
    "D0": {"bx": (-0.015, 0.015), "by": (-0.015, 0.01), "tray": (0.015, 0.015), "yaw": 0.1},
    "D1": {"bx": (-0.03, 0.03), "by": (-0.03, 0.015), "tray": (0.04, 0.03), "yaw": 0.3},
    "D2": {"bx": (-0.05, 0.04), "by": (-0.06, 0.02), "tray": (0.06, 0.05), "yaw": 0.6},
}
BOTTLE_XY = (0.35, -0.45)  # nominal bottle position on the locker shelf, world [m]
TRAY_XY = (0.01, -0.06)  # nominal tray position relative to the workspace site [m]


@register_task("deliver_pills")
@dataclass
class DeliverPills(Task):
    """Move ``pill_bottle`` from the bedside locker's shelf (z 0.91 m) onto ``pill_tray``.

    Success: the bottle stands upright (tilt < 15°) on the tray floor inside its rims,
    released by the robot and still.
    """

    room: str = "elder_care"
    props: str = "props/deliver_pills.xml"
    objects: tuple[str, ...] = ("pill_bottle", "pill_tray")
    arms: tuple[str, ...] = ("right",)
    instruction: str = "Take the pill bottle from the shelf and put it on the bedside tray."
    graspable: tuple[str, ...] = ("pill_bottle",)  # bodies a weld hand (no fingers) may hold
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))
    symmetry = MappingProxyType({"pill_bottle": 0, "pill_tray": 2})  # z-symmetry order (0 = round)

    def bind(self, scene: Scene) -> None:
        m = scene.model
        self._bottle, self._tray = m.body("pill_bottle").id, m.body("pill_tray").id
        shelf = m.geom("shelf_top").id
        mujoco.mj_kinematics(m, scene.data)  # static geometry: world pose known before any reset
        self._shelf_z = float(scene.data.geom_xpos[shelf][2] + m.geom_size[shelf][2])

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        ws = scene.workspace()
        bxy = np.array(BOTTLE_XY) + [rng.uniform(*r["bx"]), rng.uniform(*r["by"])]
        bpos = np.array([*bxy, self._shelf_z + HALF_H + 1e-4])
        scene.set_free_pose(
            "pill_bottle", np.concatenate([bpos, yaw_quat(rng.uniform(-np.pi, np.pi))])
        )
        txy = ws[:2] + np.array(TRAY_XY) + rng.uniform(-1, 1, 2) * r["tray"]
        tpos = np.array([*txy, ws[2] + TRAY_HALF_T + 1e-4])
        scene.set_free_pose(
            "pill_tray", np.concatenate([tpos, yaw_quat(rng.uniform(-r["yaw"], r["yaw"]))])
        )

    # ------------------------------------------------------------------ physics-judged signals
    def _on_tray(self, scene: Scene) -> bool:
        m, d = scene.model, scene.data
        local = d.xmat[self._tray].reshape(3, 3).T @ (d.xpos[self._bottle] - d.xpos[self._tray])
        inside = np.all(np.abs(local[:2]) <= TRAY_INNER - RADIUS + 0.003)
        upright = d.xmat[self._bottle][8] > np.cos(np.radians(UPRIGHT_DEG))
        resting = abs(local[2] - TRAY_HALF_T - HALF_H) < 0.01  # bottom on the tray floor
        on_floor = resting and touching(m, d, self._bottle, self._tray)
        return bool(inside and upright and on_floor)

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        m, d = scene.model, scene.data
        grasped = any(held_by_hands(m, d, self._bottle, scene.hand_bodies.values()))
        return {"grasped": grasped, "on_tray": self._on_tray(scene)}

    def success(self, scene: Scene) -> bool:
        m, d = scene.model, scene.data
        released = not robot_touching(m, d, self._bottle, scene.robot_root)
        still = np.linalg.norm(d.cvel[self._bottle]) < 0.05
        return bool(self._on_tray(scene) and released and still)

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp the ``pill_bottle`` off the shelf, then place it relative to the ``pill_tray``."""
        arm = "right" if "right" in scene.robot.arms else scene.arms[0]
        return [
            Subtask("grasp", "pill_bottle", "grasped", arm),
            Subtask("place", "pill_tray", None, arm),
        ]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        bottle, tray = scene.body_pose("pill_bottle"), scene.body_pose("pill_tray")
        arm = "right" if "right" in scene.robot.arms else scene.arms[0]
        yaw = float(rng.uniform(0.2, 0.6))  # the bottle is round: any comfortable wrist yaw

        def pose(pos: np.ndarray) -> np.ndarray:
            return np.concatenate([pos, yaw_quat(yaw)])

        grasp = bottle[:3] + np.array([*rng.normal(0, 0.002, 2), GRASP_DZ])
        place = tray[:3] + np.array(
            [*rng.normal(0, 0.006, 2), TRAY_HALF_T + HALF_H + GRASP_DZ + 0.005]
        )
        lift = grasp + np.array([0, 0, rng.uniform(0.05, 0.06)])  # clear the shelf edge
        above = place.copy()
        above[2] = max(place[2] + 0.06, lift[2] - 0.04)
        high = grasp + np.array([0, 0, 0.1])  # pads pass above the bottle cap
        start = scene.ee_pose(arm)[:3]
        rise = np.array([*(0.5 * (start[:2] + high[:2])), high[2]])
        return Plan().add(
            arm,
            Waypoint(pose(rise), 0.8, 1.0, "approach", None),
            Waypoint(pose(high), 0.7, 1.0, "approach", "pill_bottle"),
            Waypoint(pose(grasp), 0.9, 1.0, "grasp", "pill_bottle"),
            Waypoint(pose(grasp), 0.5, 0.0, "grasp", "pill_bottle", grip_at_start=True),
            Waypoint(pose(lift), 0.6, 0.0, "lift", "pill_bottle"),
            Waypoint(pose(above), 1.3, 0.0, "move", "pill_tray"),
            Waypoint(pose(place), 0.8, 0.0, "place", "pill_tray"),
            Waypoint(pose(place), 0.4, 1.0, "release", "pill_tray", grip_at_start=True),
            Waypoint(pose(place + [0, 0, 0.1]), 0.6, 1.0, "retreat", "pill_tray"),
        )
