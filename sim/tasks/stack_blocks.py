"""stack_blocks (home): pick the red block and stack it on the green one."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import held_by_hands, robot_touching, touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import yaw_quat

HALF = 0.025  # block half size [m]
# Reset ranges per level around NOMINAL (relative to the workspace site): half-widths [m, rad].
LEVEL_RANGES = {
    "D0": {"xy": 0.03, "yaw": 0.2, "swap": False},
    "D1": {"xy": 0.06, "yaw": 0.6, "swap": False},
    "D2": {"xy": 0.09, "yaw": np.pi / 2, "swap": True},
}
NOMINAL = {"block_a": (0.0, -0.13), "block_b": (0.0, 0.02), "block_c": (0.11, 0.16)}


@register_task("stack_blocks")
@dataclass
class StackBlocks(Task):
    """Pick ``block_a`` (red) and place it on ``block_b`` (green); ``block_c`` is a distractor."""

    room: str = "home"
    props: str = "props/stack_blocks.xml"
    objects: tuple[str, ...] = ("block_a", "block_b", "block_c")
    arms: tuple[str, ...] = ("right", "left")
    instruction: str = "Stack the red block on the green block."
    min_gap: float = 0.085  # minimum centre distance between blocks at reset [m]
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))
    symmetry = MappingProxyType({"block_a": 4, "block_b": 4})  # z-symmetry order (0 = round)

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        ws = scene.workspace()
        nominal = dict(NOMINAL)
        if r["swap"] and rng.random() < 0.5:  # mirror the layout: the left arm does the work
            nominal = {k: (x, -y) for k, (x, y) in nominal.items()}
        placed: list[np.ndarray] = []
        for name, (x0, y0) in nominal.items():
            for _ in range(100):
                xy = np.array([x0, y0]) + rng.uniform(-r["xy"], r["xy"], size=2)
                if all(np.linalg.norm(xy - p) >= self.min_gap for p in placed):
                    break
            placed.append(xy)
            yaw = rng.uniform(-r["yaw"], r["yaw"])
            pos = ws + np.array([xy[0], xy[1], HALF + 1e-4])
            scene.set_free_pose(name, np.concatenate([pos, yaw_quat(yaw)]))

    # ------------------------------------------------------------------ physics-judged signals
    def _ids(self, scene: Scene) -> tuple[int, int]:
        return scene.body_id("block_a"), scene.body_id("block_b")

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        a, _ = self._ids(scene)
        grasped = any(held_by_hands(scene.model, scene.data, a, scene.hand_bodies.values()))
        return {"grasped": grasped, "placed": self._on_top(scene)}

    def _on_top(self, scene: Scene) -> bool:
        a, b = self._ids(scene)
        pa, pb = scene.data.xpos[a], scene.data.xpos[b]
        return bool(
            touching(scene.model, scene.data, a, b)
            and np.linalg.norm(pa[:2] - pb[:2]) < 0.03
            and abs(pa[2] - pb[2] - 2 * HALF) < 0.01
        )

    def success(self, scene: Scene) -> bool:
        a, _ = self._ids(scene)
        resting = np.linalg.norm(scene.data.cvel[a]) < 0.05
        released = not robot_touching(scene.model, scene.data, a, scene.robot_root)
        return bool(self._on_top(scene) and resting and released)

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp ``block_a`` (ends when grasped), then place it relative to ``block_b``."""
        arm = _work_arm(scene, scene.body_pose("block_a"))
        return [
            Subtask("grasp", "block_a", "grasped", arm),
            Subtask("place", "block_b", None, arm),
        ]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        a, b = scene.body_pose("block_a"), scene.body_pose("block_b")
        arm = _work_arm(scene, a)

        def down(pos: np.ndarray, yaw: float) -> np.ndarray:
            return np.concatenate([pos, yaw_quat(yaw)])

        ya, yb = _grasp_yaw(a[3:]), _grasp_yaw(b[3:])
        grasp = a[:3] + np.array([*rng.normal(0, 0.002, 2), 0.004])
        place = b[:3] + np.array([0.0, 0.0, 2 * HALF + 0.008])
        up = np.array([0, 0, rng.uniform(0.10, 0.13)])
        return Plan().add(
            arm,
            Waypoint(down(grasp + up, ya), 1.2, 1.0, "approach", "block_a"),
            Waypoint(down(grasp, ya), 0.7, 1.0, "grasp", "block_a"),
            Waypoint(down(grasp, ya), 0.5, 0.0, "grasp", "block_a", grip_at_start=True),
            Waypoint(down(grasp + up, ya), 0.7, 0.0, "lift", "block_a"),
            Waypoint(down(place + up, yb), 1.1, 0.0, "move", "block_b"),
            Waypoint(down(place, yb), 0.7, 0.0, "place", "block_b"),
            Waypoint(down(place, yb), 0.4, 1.0, "release", "block_b", grip_at_start=True),
            Waypoint(down(place + up, yb), 0.6, 1.0, "retreat", "block_b"),
        )


def _work_arm(scene: Scene, block: np.ndarray) -> str:
    """The arm on the block's side of the workspace (the robot's first arm if it lacks it)."""
    arm = "right" if block[1] < scene.workspace()[1] else "left"
    return arm if arm in scene.robot.arms else scene.arms[0]


def _grasp_yaw(quat: np.ndarray) -> float:
    """Yaw of a block's face closest to the hand's neutral yaw (cube symmetry: mod 90°)."""
    w, x, y, z = quat
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)
