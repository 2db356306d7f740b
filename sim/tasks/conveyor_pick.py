"""conveyor_pick (assembly_line): pick a bracket off the moving conveyor and drop it in the bin.

The belt is physical: the room's ``conveyor_belt`` plate slides along y, driven by the velocity
actuator ``conveyor_drive`` whose ctrl (belt speed [m/s]) is set at reset and never touched by
the robot's actions; the brackets ride on it by contact friction. The demonstrator plans at reset
time, so it intercepts ``part_a`` where the belt speed predicts it will be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import held_by_hands, robot_touching, touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import yaw_quat

HALF = np.array([0.02, 0.02, 0.018])  # bracket half sizes [m]
BIN_INNER = 0.055  # half width of the bin's inside [m]
BIN_RIM = 0.05  # rim height above the bin body origin [m]
BELT_TOP = 0.03  # belt top above the bench top (workspace site) [m]
GAP = 0.12  # part_b trails part_a by this much upstream [m]
# Parts spawn at |y| <= 0.2 m: the idle hand's home pose hangs over the belt at |y| ~ 0.3 m.
# Per level, relative to the workspace site [m, rad, m/s]: half-ranges of the part's start
# (along / across the belt) and yaw, belt speed range, bin offset, mirror (left arm, belt +y).
LEVEL_RANGES = {
    "D0": dict(along=0.015, across=0.008, yaw=0.2, speed=(0.045, 0.055), bin=0.015, swap=False),
    "D1": dict(along=0.03, across=0.015, yaw=0.5, speed=(0.035, 0.07), bin=0.03, swap=False),
    "D2": dict(along=0.04, across=0.02, yaw=np.pi / 4, speed=(0.03, 0.08), bin=0.04, swap=True),
}
PART_XY = (0.13, 0.02)  # nominal start of part_a (belt moving -y) [m]
BIN_XY = (-0.02, -0.22)  # nominal bin centre [m]
T_GRASP = 3.0  # nominal time [s] at which the demonstrator closes on the part
# Right hand's comfortable top-down yaws [rad] (left hand: mirrored, negated). Grasp yaws within
# pi/4 of GRASP_YAW and a place yaw near PLACE_YAW keep the IK away from the wrist-pitch limit.
GRASP_YAW, PLACE_YAW = np.pi / 2, 1.4


@register_task("conveyor_pick")
@dataclass
class ConveyorPick(Task):
    """Pick ``part_a`` (orange) while the belt carries it and place it in the blue bin."""

    room: str = "assembly_line"
    props: str = "props/conveyor_pick.xml"
    objects: tuple[str, ...] = ("part_a", "part_b", "bin")
    arms: tuple[str, ...] = ("right", "left")
    instruction: str = "Pick the orange bracket off the moving conveyor and put it in the bin."
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))
    symmetry = MappingProxyType({"part_a": 4, "bin": 4})  # z-symmetry order (0 = round)
    timed_labels: tuple[str, ...] = ("approach", "grasp")  # interception: planned belt timing
    speed: float = field(default=0.0, init=False)  # this episode's belt speed along y [m/s]

    def bind(self, scene: Scene) -> None:
        m = scene.model
        self._part = m.body("part_a").id
        self._bin = m.body("bin").id
        self._act = m.actuator("conveyor_drive").id
        j = m.joint("conveyor_belt")
        self._belt_dof = int(j.dofadr[0])
        scene.remember_nominal("body_pos")

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        ws = scene.workspace()
        sign = -1.0 if r["swap"] and rng.random() < 0.5 else 1.0  # +1: belt runs toward -y
        self.speed = -sign * rng.uniform(*r["speed"])
        # the bin's far wall must stay clear of the belt (near edge 0.07 m beyond the workspace)
        bx = BIN_XY[0] + rng.uniform(-r["bin"], min(r["bin"], 0.01))
        by = BIN_XY[1] + rng.uniform(-r["bin"], r["bin"])
        scene.model.body_pos[self._bin] = ws + np.array([bx, sign * by, 0.0])
        x0 = PART_XY[0] + rng.uniform(-r["across"], r["across"])
        y0 = sign * (PART_XY[1] + rng.uniform(-r["along"], r["along"]))
        for name, dy in (("part_a", 0.0), ("part_b", sign * GAP)):
            pos = ws + np.array([x0, y0 + dy, BELT_TOP + HALF[2] + 1e-4])
            yaw = rng.uniform(-r["yaw"], r["yaw"])
            scene.set_free_pose(name, np.concatenate([pos, yaw_quat(yaw)]))
            v = scene.model.jnt_dofadr[scene.model.body_jntadr[scene.model.body(name).id]]
            scene.data.qvel[v + 1] = self.speed  # already riding with the belt
        scene.data.qvel[self._belt_dof] = self.speed
        scene.data.ctrl[self._act] = self.speed

    # ------------------------------------------------------------------ physics-judged signals
    def _in_bin(self, scene: Scene) -> bool:
        p = scene.data.xpos[self._part] - scene.data.xpos[self._bin]
        return bool(
            np.all(np.abs(p[:2]) < BIN_INNER)
            and p[2] < BIN_RIM
            and touching(scene.model, scene.data, self._part, self._bin)
        )

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        grasped = any(
            held_by_hands(scene.model, scene.data, self._part, scene.hand_bodies.values())
        )
        return {"grasped": grasped, "in_bin": self._in_bin(scene)}

    def success(self, scene: Scene) -> bool:
        resting = np.linalg.norm(scene.data.cvel[self._part]) < 0.05
        released = not robot_touching(scene.model, scene.data, self._part, scene.robot_root)
        return bool(self._in_bin(scene) and resting and released)

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Intercept and grasp ``part_a`` on the belt, then drop it relative to the ``bin``; the
        idle arm lifts off the line (world frame)."""
        arm = _work_arm(scene, float(scene.data.qvel[self._belt_dof]))
        spec = [Subtask("grasp", "part_a", "grasped", arm), Subtask("place", "bin", None, arm)]
        return spec + [Subtask("clear", None, None, a) for a in scene.arms if a != arm]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        p0 = scene.body_pose("part_a")
        speed = float(scene.data.qvel[self._belt_dof])  # measured belt speed along y [m/s]
        arm = _work_arm(scene, speed)
        side = 1.0 if arm == "right" else -1.0

        def at(t: float, dz: float = 0.0) -> np.ndarray:  # predicted part pose at plan time t
            pos = p0[:3] + np.array([0.0, speed * t, dz])
            return np.concatenate([pos, yaw_quat(yaw)])

        yaw = _near_yaw(_yaw(p0[3:]), side * GRASP_YAW)
        yaw_place = side * PLACE_YAW + rng.normal(0, 0.05)
        t_grasp = T_GRASP * rng.uniform(0.95, 1.08)
        d_down, d_close = 0.8, 0.5
        t_hover = t_grasp - d_down
        grasp_dz = 0.006 + rng.normal(0, 0.001)
        up = rng.uniform(0.09, 0.11)
        t_lift = t_grasp + d_close
        bin_pos = scene.data.xpos[self._bin] + np.array([*rng.normal(0, 0.004, 2), 0.0])
        drop = np.concatenate([bin_pos + [0, 0, 0.006 + 2 * HALF[2] + 0.012], yaw_quat(yaw_place)])
        high = drop + np.array([0, 0, up, 0, 0, 0, 0])
        toward = np.array([0.03, 0, 0, 0, 0, 0, 0])  # lift toward the body: keeps the elbow bent
        plan = Plan()
        for other in scene.arms:  # lift the idle hand off the line: parts pass beneath it
            if other != arm:
                clear = scene.ee_pose(other) + np.array([0, 0, rng.uniform(0.07, 0.09), 0, 0, 0, 0])
                plan.add(other, Waypoint(clear, 0.8, 1.0, "clear"))
        return plan.add(
            arm,
            Waypoint(at(t_hover, up), t_hover, 1.0, "approach", "part_a"),
            Waypoint(at(t_grasp, grasp_dz), d_down, 1.0, "grasp", "part_a"),
            Waypoint(at(t_lift, grasp_dz), d_close, 0.0, "grasp", "part_a", grip_at_start=True),
            Waypoint(at(t_lift, up) - toward, 0.6, 0.0, "lift", "part_a"),
            Waypoint(high, 1.1, 0.0, "move", "bin"),
            Waypoint(drop, 0.6, 0.0, "place", "bin"),
            Waypoint(drop, 0.4, 1.0, "release", "bin", grip_at_start=True),
            Waypoint(high, 0.6, 1.0, "retreat", "bin"),
        )


def _work_arm(scene: Scene, speed: float) -> str:
    """The arm downstream of the belt (right for a belt running toward -y)."""
    arm = "right" if speed < 0 else "left"
    return arm if arm in scene.robot.arms else scene.arms[0]


def _yaw(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _near_yaw(yaw: float, pref: float) -> float:
    """The yaw equivalent to ``yaw`` under the part's 90° symmetry that is closest to ``pref``."""
    return float(pref + (yaw - pref + np.pi / 4) % (np.pi / 2) - np.pi / 4)
