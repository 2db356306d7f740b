"""open_drawer (elder_care): pull the bedside locker's drawer open by its handle."""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import quat_mul, yaw_quat

OPEN = 0.12  # drawer opening that counts as open [m]
PULL_TO = 0.16  # opening the demonstrator pulls to [m]
CASE_Z = -0.045 + 0.018  # glasses-case centre height in the drawer frame (on its floor) [m]
# Reset ranges per level: locker shift from its nominal place, (lo, hi) in x and y [m] (kept
# clear of the robot's home hand pose), locker yaw [rad], initial drawer opening [m].
LEVEL_RANGES = {
    "D0": {"dx": (-0.01, 0.005), "dy": (-0.01, 0.005), "yaw": 0.0, "open": 0.01},
    "D1": {"dx": (-0.03, 0.005), "dy": (-0.03, 0.005), "yaw": 0.03, "open": 0.015},
    "D2": {"dx": (-0.05, 0.005), "dy": (-0.05, 0.005), "yaw": 0.06, "open": 0.015},
}


def pads_on_geom(scene: Scene, geom: int, hand: np.ndarray) -> int:
    """How many distinct geoms of the bodies ``hand`` touch the geom ``geom``."""
    d, n = scene.data, scene.data.ncon
    g1, g2 = d.contact.geom1[:n], d.contact.geom2[:n]
    b = scene.model.geom_bodyid
    hits = set(g2[(g1 == geom) & np.isin(b[g2], hand)]) | set(
        g1[(g2 == geom) & np.isin(b[g1], hand)]
    )
    return len(hits)


@register_task("open_drawer")
@dataclass
class OpenDrawer(Task):
    """Grasp the bar handle of the bedside locker's drawer and pull the drawer out.

    Success: the drawer's slide joint ``drawer_slide`` is open by at least 12 cm.
    """

    room: str = "elder_care"
    props: str = "props/open_drawer.xml"
    objects: tuple[str, ...] = ("drawer", "glasses_case")
    arms: tuple[str, ...] = ("right",)
    instruction: str = "Open the drawer of the bedside cabinet."
    graspable: tuple[str, ...] = ("drawer",)  # bodies a weld hand (no fingers) may hold
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))

    def bind(self, scene: Scene) -> None:
        m = scene.model
        self._cabinet, self._drawer = m.body("bedside_cabinet").id, m.body("drawer").id
        self._joint = m.joint("drawer_slide").id
        self._qadr = int(m.jnt_qposadr[self._joint])
        self._handle = m.geom("drawer_handle").id
        scene.remember_nominal("body_pos", "body_quat")  # reset() moves the locker

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        m, d = scene.model, scene.data
        m.body_pos[self._cabinet, :2] += [rng.uniform(*r["dx"]), rng.uniform(*r["dy"])]
        m.body_quat[self._cabinet] = quat_mul(
            m.body_quat[self._cabinet], yaw_quat(rng.uniform(-r["yaw"], r["yaw"]))
        )
        d.qpos[self._qadr] = rng.uniform(0.0, r["open"])
        mujoco.mj_kinematics(m, d)
        local = np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.26, -0.14), CASE_Z + 1e-4])
        pos = d.xpos[self._drawer] + d.xmat[self._drawer].reshape(3, 3) @ local
        quat = quat_mul(d.xquat[self._drawer], yaw_quat(rng.uniform(-0.3, 0.3)))
        scene.set_free_pose("glasses_case", np.concatenate([pos, quat]))

    # ------------------------------------------------------------------ physics-judged signals
    def opening(self, scene: Scene) -> float:
        """Drawer opening from its slide joint [m]."""
        return float(scene.data.qpos[self._qadr])

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        grasped = any(pads_on_geom(scene, self._handle, h) >= 2 for h in scene.hand_bodies.values())
        return {"handle_grasped": grasped, "opened": self.opening(scene) >= OPEN}

    def success(self, scene: Scene) -> bool:
        return self.opening(scene) >= OPEN

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp the handle, then pull, both relative to the ``drawer``."""
        arm = "right" if "right" in scene.robot.arms else scene.arms[0]
        return [
            Subtask("grasp", "drawer", "handle_grasped", arm),
            Subtask("pull", "drawer", None, arm),
        ]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        d = scene.data
        arm = "right" if "right" in scene.robot.arms else scene.arms[0]
        axis = d.xaxis[self._joint].copy()  # pull direction, world frame
        yaw = float(np.arctan2(axis[1], axis[0]) - np.pi / 2)  # fingers close along the pull

        def pose(pos: np.ndarray) -> np.ndarray:
            return np.concatenate([pos, yaw_quat(yaw)])

        start = scene.ee_pose(arm)[:3]
        grasp = d.geom_xpos[self._handle] + np.array([*rng.normal(0, 0.003, 2), -0.004])
        pulled = grasp + axis * (PULL_TO - self.opening(scene) + rng.uniform(0.0, 0.02))
        up = np.array([0, 0, rng.uniform(0.07, 0.09)])
        return Plan().add(
            arm,
            Waypoint(pose(start + up), 0.6, 0.6, "approach", None),
            Waypoint(pose(grasp + up), 0.8, 0.6, "approach", "drawer"),
            Waypoint(pose(grasp), 0.7, 0.6, "grasp", "drawer"),
            Waypoint(pose(grasp), 0.5, 0.0, "grasp", "drawer", grip_at_start=True),
            Waypoint(pose(pulled), 1.6, 0.0, "pull", "drawer"),
            Waypoint(pose(pulled), 0.4, 0.7, "release", "drawer", grip_at_start=True),
            Waypoint(pose(pulled + up), 0.6, 0.7, "retreat", "drawer"),
        )
