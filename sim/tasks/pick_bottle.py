"""pick_bottle (home): pick up the yellow bottle and set it down upright on the coaster.

Matches the real Unitree G1 teleoperation data in ``../shared/data/g1_pick_bottle`` ("Pick up
the yellow bottle on the table."): the right hand closes on the bottle from its right side, lifts
it and sets it down ~15 cm further right. Nominal poses are those inferred from that data (EE at
gripper closure / release, by G1 forward kinematics in this room).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import held_by_hands, robot_touching, touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import mat_to_quat

RADIUS, HALF_H = 0.03, 0.1  # bottle [m]
COASTER_HALF_T = 0.003  # coaster half thickness [m]
UPRIGHT_COS = np.cos(np.radians(15))
# Nominal xy relative to the workspace site [m]; reset half-widths per level [m].
NOMINAL = {"bottle": (-0.02, -0.06), "coaster": (0.02, -0.17)}
LEVEL_RANGES = {"D0": 0.02, "D1": 0.05, "D2": 0.08}
# Side grasp from the bottle's right, in the canonical grasp frame (approach = -z, closing = y):
# the hand moves toward +y world, the jaws close along world x (across the bottle), the
# canonical x axis points up (the other jaw-symmetric roll is out of the humanoid wrist's range).
SIDE_GRASP = mat_to_quat(np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]))


@register_task("pick_bottle")
@dataclass
class PickBottle(Task):
    """Pick up ``bottle`` and set it down upright on ``coaster`` (both round/square: no yaw)."""

    room: str = "home"
    props: str = "props/pick_bottle.xml"
    objects: tuple[str, ...] = ("bottle", "coaster")
    arms: tuple[str, ...] = ("right",)
    instruction: str = "Pick up the yellow bottle on the table."
    graspable: tuple[str, ...] = ("bottle",)
    min_gap: float = 0.1  # minimum bottle-coaster centre distance at reset [m]
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        ws = scene.workspace()
        for _ in range(100):
            xy = {k: np.array(v) + rng.uniform(-r, r, 2) for k, v in NOMINAL.items()}
            if np.linalg.norm(xy["bottle"] - xy["coaster"]) >= self.min_gap:
                break
        unit = np.array([1.0, 0.0, 0.0, 0.0])
        scene.set_free_pose("coaster", np.r_[ws + [*xy["coaster"], COASTER_HALF_T + 1e-4], unit])
        scene.set_free_pose("bottle", np.r_[ws + [*xy["bottle"], HALF_H + 1e-4], unit])

    def bind(self, scene: Scene) -> None:
        self._bottle = scene.model.body("bottle").id
        self._coaster = scene.model.body("coaster").id

    # ------------------------------------------------------------------ physics-judged signals
    def _held(self, scene: Scene) -> bool:
        if scene.weld is not None:
            return any(scene.weld.held(arm) == "bottle" for arm in scene.gripper_arms)
        return any(held_by_hands(scene.model, scene.data, self._bottle, scene.hand_bodies.values()))

    def _on_coaster(self, scene: Scene) -> bool:
        d = scene.data
        rel = d.xpos[self._bottle] - d.xpos[self._coaster]
        upright = d.xmat[self._bottle][8] > UPRIGHT_COS
        return bool(
            upright
            and np.linalg.norm(rel[:2]) < 0.05 - 0.01
            and abs(rel[2] - COASTER_HALF_T - HALF_H) < 0.01
            and touching(scene.model, d, self._bottle, self._coaster)
        )

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        lifted = scene.data.xpos[self._bottle][2] - scene.workspace()[2] - HALF_H > 0.02
        return {
            "grasped": self._held(scene),
            "lifted": bool(lifted),
            "placed": self._on_coaster(scene),
        }

    def success(self, scene: Scene) -> bool:
        d = scene.data
        released = not robot_touching(scene.model, d, self._bottle, scene.robot_root)
        released = released and not self._held(scene)
        still = np.linalg.norm(d.cvel[self._bottle]) < 0.05
        return bool(self._on_coaster(scene) and released and still)

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp the ``bottle`` (ends when grasped), then place it relative to the ``coaster``."""
        arm = "right" if "right" in scene.robot.arms else scene.arms[0]
        return [Subtask("grasp", "bottle", "grasped", arm), Subtask("place", "coaster", None, arm)]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        """Side grasp from the bottle's right at mid height, lift 6 cm, set down on the coaster.

        Poses are in the canonical grasp frame (a robot whose EE site follows another
        convention maps them through its ``tool_frame``).
        """
        b, c = scene.body_pose("bottle"), scene.body_pose("coaster")
        arm = "right" if "right" in scene.robot.arms else scene.arms[0]

        def pose(p: np.ndarray) -> np.ndarray:
            return np.concatenate([p, SIDE_GRASP])

        grasp = b[:3] + np.array([rng.normal(0, 0.002), 0.0, 0.0])
        pre = grasp + np.array([0.0, -0.08, 0.0])
        lift = grasp + np.array([0, 0, 0.06])
        place = c[:3] + np.array([0.0, 0.0, COASTER_HALF_T + HALF_H + 0.006])
        return Plan().add(
            arm,
            Waypoint(pose(pre), 1.2, 1.0, "approach", "bottle"),
            Waypoint(pose(grasp), 0.8, 1.0, "grasp", "bottle"),
            Waypoint(pose(grasp), 0.6, 0.0, "grasp", "bottle", grip_at_start=True),
            Waypoint(pose(lift), 0.7, 0.0, "lift", "bottle"),
            Waypoint(pose(place + [0, 0, 0.06]), 1.0, 0.0, "move", "coaster"),
            Waypoint(pose(place), 0.6, 0.0, "place", "coaster"),
            Waypoint(pose(place), 0.5, 1.0, "release", "coaster", grip_at_start=True),
            Waypoint(pose(place + [0.0, -0.08, 0.02]), 0.7, 1.0, "retreat", "coaster"),
        )
