"""handover_cup (elder_care): carry a mug of tea upright into the seated resident's hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import held_by_hands, num_touching_geoms, robot_touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import yaw_quat

HALF_H = 0.045  # mug half height [m]
GRASP_DZ = -0.01  # EE height relative to the mug centre for a top-down grasp [m]
UPRIGHT_DEG = 15.0  # tilt limit: at the end, and never exceeded during the episode [deg]
# Reset ranges per level, relative to the nominal mug position on the table [m, rad].
LEVEL_RANGES = {
    "D0": {"xy": 0.02, "yaw": 0.3},
    "D1": {"xy": 0.05, "yaw": 1.0},
    "D2": {"xy": 0.08, "yaw": np.pi},
}
NOMINAL = (0.02, 0.1)  # mug centre relative to the workspace site (table top) [m]


def tilt_deg(scene: Scene, body: int) -> float:
    """Angle between a body's z axis and world z [deg]."""
    return float(np.degrees(np.arccos(np.clip(scene.data.xmat[body][8], -1.0, 1.0))))


@register_task("handover_cup")
@dataclass
class HandoverCup(Task):
    """Pick the mug from the over-bed table and hand it, upright, to the seated resident.

    Success: the mug rests on the resident's palm inside the ``hand_zone`` box, upright
    (tilt < 15°), released by the robot and still, and it never tilted 15° or more during the
    episode (tracked in :meth:`subtasks`, which the executor calls every control step).
    """

    room: str = "elder_care"
    props: str = "props/handover_cup.xml"
    objects: tuple[str, ...] = ("cup",)
    arms: tuple[str, ...] = ("left",)
    instruction: str = "Hand the cup of tea to the resident without spilling it."
    graspable: tuple[str, ...] = ("cup",)  # bodies a weld hand (no fingers) may hold
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))
    symmetry = MappingProxyType({"cup": 2})  # z-symmetry order (0 = round)
    max_tilt: float = field(default=0.0, init=False)  # largest tilt seen this episode [deg]

    def bind(self, scene: Scene) -> None:
        m = scene.model
        self._cup = m.body("cup").id
        self._zone = m.site("hand_zone").id
        self._palm = m.geom("resident_palm").id

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        xy = np.array(NOMINAL) + rng.uniform(-r["xy"], r["xy"], size=2)
        pos = scene.workspace() + np.array([xy[0], xy[1], HALF_H + 1e-4])
        scene.set_free_pose(
            "cup", np.concatenate([pos, yaw_quat(rng.uniform(-r["yaw"], r["yaw"]))])
        )
        self.max_tilt = 0.0

    # ------------------------------------------------------------------ physics-judged signals
    def _tilt(self, scene: Scene) -> float:
        tilt = tilt_deg(scene, self._cup)
        self.max_tilt = max(self.max_tilt, tilt)
        return tilt

    def _in_zone(self, scene: Scene) -> bool:
        d = scene.data
        local = d.site_xmat[self._zone].reshape(3, 3).T @ (
            d.xpos[self._cup] - d.site_xpos[self._zone]
        )
        return bool(np.all(np.abs(local) <= scene.model.site_size[self._zone]))

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        m, d = scene.model, scene.data
        grasped = any(held_by_hands(m, d, self._cup, scene.hand_bodies.values()))
        return {
            "grasped": grasped,
            "upright": self._tilt(scene) < UPRIGHT_DEG,
            "in_hand_zone": self._in_zone(scene),
        }

    def success(self, scene: Scene) -> bool:
        m, d = scene.model, scene.data
        upright = self._tilt(scene) < UPRIGHT_DEG and self.max_tilt < UPRIGHT_DEG
        on_palm = num_touching_geoms(m, d, self._cup, m.geom_bodyid[self._palm]) > 0
        released = not robot_touching(m, d, self._cup, scene.robot_root)
        still = np.linalg.norm(d.cvel[self._cup]) < 0.05
        return bool(upright and self._in_zone(scene) and on_palm and released and still)

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp the ``cup``, then carry it to the resident's hand (fixed: world frame)."""
        arm = "left" if "left" in scene.robot.arms else scene.arms[0]
        return [Subtask("grasp", "cup", "grasped", arm), Subtask("handover", None, None, arm)]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        cup = scene.body_pose("cup")
        arm = "left" if "left" in scene.robot.arms else scene.arms[0]
        w, x, y, z = cup[3:]
        handle_yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        yaw = float((handle_yaw + np.pi / 2) % np.pi - np.pi / 2)  # hand x along the handle

        def pose(pos: np.ndarray) -> np.ndarray:
            return np.concatenate([pos, yaw_quat(yaw)])

        grasp = cup[:3] + np.array([*rng.normal(0, 0.002, 2), GRASP_DZ])
        zone = scene.data.site_xpos[self._zone]
        palm_top = scene.data.geom_xpos[self._palm][2] + scene.model.geom_size[self._palm][2]
        place = np.array(
            [*(zone[:2] + rng.normal(0, 0.004, 2)), palm_top + HALF_H + GRASP_DZ + 0.004]
        )
        lift = grasp + np.array([0, 0, rng.uniform(0.11, 0.13)])
        above = place + np.array([0, 0, rng.uniform(0.05, 0.07)])
        start = scene.ee_pose(arm)
        rise = np.concatenate([start[:3] + [0, 0, 0.08], start[3:]])  # pads clear the mug first
        return Plan().add(
            arm,
            Waypoint(rise, 0.6, 1.0, "approach", None),
            Waypoint(pose(grasp + [0, 0, 0.12]), 1.0, 1.0, "approach", "cup"),
            Waypoint(pose(grasp), 0.9, 1.0, "grasp", "cup"),
            Waypoint(pose(grasp), 0.5, 0.0, "grasp", "cup", grip_at_start=True),
            Waypoint(pose(lift), 0.8, 0.0, "lift", "cup"),
            Waypoint(pose(above), 1.5, 0.0, "carry", None),
            Waypoint(pose(place), 0.9, 0.0, "place", None),
            Waypoint(pose(place), 0.5, 1.0, "release", None, grip_at_start=True),
            Waypoint(pose(place + [0, 0, 0.1]), 0.7, 1.0, "retreat", None),
        )
