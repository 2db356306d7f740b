"""open_microwave (home): grasp the microwave's door handle and swing the door open past 60°.

The door is held shut by a passive over-centre detent (a dead-band tendon spring, pure MJCF, see
``scenes/props/open_microwave.xml``): it resists the first ~11° of opening, pops the door to about
30° once pulled past that, and never acts on an open door. Success reads the hinge angle only.
The demonstrator picks the arm by geometry (nearest EE to the handle's end of the arc), so it
carries over to other robots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.contacts import num_touching_geoms, subtree_bodies, touching
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task, sample_xy_yaw
from sim.transforms import mat_to_quat, quat_mul, yaw_quat

OPEN_ANGLE = np.deg2rad(60.0)  # success threshold on the hinge angle [rad]
FOOT = 0.0045  # microwave body origin above the table top (feet are 4 mm tall) [m]
BAR_OPENING = (0.05, 0.5)  # gripper opening range that means "closed around the bar" [0-1]
NOMINAL_X = 0.2  # microwave centre ahead of the workspace site [m]
# Reset ranges per level: offsets of the microwave's (x, y) [m] and yaw [rad] from nominal.
LEVEL_RANGES = {
    "D0": {"x": (-0.02, 0.02), "y": (-0.02, 0.02), "yaw": (-0.08, 0.08)},
    "D1": {"x": (-0.035, 0.035), "y": (-0.05, 0.05), "yaw": (-0.15, 0.15)},
    "D2": {"x": (-0.05, 0.05), "y": (-0.08, 0.08), "yaw": (-0.25, 0.25)},
}


@register_task("open_microwave")
@dataclass
class OpenMicrowave(Task):
    """Open the microwave door (hinge on the left) by pulling its handle along the door's arc."""

    room: str = "home"
    props: str = "props/open_microwave.xml"
    objects: tuple[str, ...] = ("microwave", "microwave_door")
    arms: tuple[str, ...] = ("left", "right")
    instruction: str = "Open the microwave door."
    open_angle: float = OPEN_ANGLE
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))

    def bind(self, scene: Scene) -> None:
        m = scene.model
        self._hinge = m.joint("microwave_hinge").id
        self._qadr = int(m.jnt_qposadr[self._hinge])
        self._vadr = int(m.jnt_dofadr[self._hinge])
        self._handle = m.body("microwave_handle").id
        self._door = m.body("microwave_door").id
        self._bodies = subtree_bodies(m, m.body("microwave").id)
        self._robot = subtree_bodies(m, scene.robot_root)

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        ranges = self.levels[check_level(level)]
        scene.data.qpos[self._qadr] = 0.0
        scene.data.qvel[self._vadr] = 0.0
        for _ in range(50):  # resample poses that would overlap the robot's hands at home
            dx, dy, yaw = sample_xy_yaw(rng, ranges)
            pos = scene.workspace() + np.array([NOMINAL_X + dx, dy, FOOT])
            scene.set_free_pose("microwave", np.concatenate([pos, yaw_quat(yaw)]))
            mujoco.mj_forward(scene.model, scene.data)
            if not touching(scene.model, scene.data, self._bodies, self._robot):
                return

    # ------------------------------------------------------------------ physics-judged signals
    def door_angle(self, scene: Scene) -> float:
        """Hinge angle [rad]: 0 = closed, positive = open."""
        return float(scene.data.qpos[self._qadr])

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        return {"handle_grasped": self.handle_grasped(scene), "door_open": self.success(scene)}

    def handle_grasped(self, scene: Scene) -> bool:
        """A hand holds the handle bar: both pads touch it, or one pad does while the measured
        gripper opening says the fingers are closed around the bar (a pull loads one pad)."""
        m, d = scene.model, scene.data
        for arm, hand in scene.hand_bodies.items():
            pads = num_touching_geoms(m, d, self._handle, hand)
            closed_on_bar = BAR_OPENING[0] < scene.gripper_opening(arm) < BAR_OPENING[1]
            if pads >= 2 or (pads == 1 and closed_on_bar):
                return True
        return False

    def success(self, scene: Scene) -> bool:
        return self.door_angle(scene) >= self.open_angle

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp the handle, then pull the door along its arc, both relative to the
        ``microwave`` body (the hinge is fixed in it)."""
        arm = self._pull_arm(scene)
        return [
            Subtask("grasp", "microwave", "handle_grasped", arm),
            Subtask("pull", "microwave", None, arm),
        ]

    def _pull_arm(self, scene: Scene) -> str:
        """The arm nearest to where the handle ends up with the door open 78° (mid pull)."""
        d = scene.data
        anchor, axis = d.xanchor[self._hinge], d.xaxis[self._hinge]
        handle = d.site("mw_handle").xpos
        end = anchor + _axis_angle(axis, np.deg2rad(78.0)) @ (handle - anchor)
        return _closest_arm(scene, end)

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        d = scene.data
        anchor, axis = d.xanchor[self._hinge].copy(), d.xaxis[self._hinge].copy()
        handle = d.site("mw_handle").xpos.copy()
        out = d.xmat[self._door].reshape(3, 3) @ np.array([-1.0, 0.0, 0.0])  # door's outer normal
        grasp_q = _point_quat(-out)
        goal = rng.uniform(np.deg2rad(74), np.deg2rad(82))

        def on_arc(theta: float, back: float = 0.0) -> np.ndarray:
            """Grasp pose with the door at ``theta``, ``back`` [m] out along the door normal."""
            rot = _axis_angle(axis, theta)
            p = anchor + rot @ (handle - anchor) + back * (rot @ out)
            return np.concatenate([p, quat_mul(mat_to_quat(rot), grasp_q)])

        arm = self._pull_arm(scene)

        depth = rng.uniform(-0.008, -0.002)  # EE this far beyond the bar centre (into the door)
        clear = scene.ee_pose(arm)[:3] + rng.uniform(0.13, 0.16) * out  # back off the door first
        wps = [
            Waypoint(np.concatenate([clear, grasp_q]), 0.9, 1.0, "clear"),
            Waypoint(on_arc(0.0, 0.10), 0.9, 1.0, "approach", "microwave_handle"),
            Waypoint(on_arc(0.0, depth), 0.8, 1.0, "reach", "microwave_handle"),
            Waypoint(on_arc(0.0, depth), 0.5, 0.0, "grasp", "microwave_handle", True),
        ]
        n = 8
        for theta in np.linspace(0.0, goal, n + 1)[1:]:
            wps.append(Waypoint(on_arc(theta, depth), 2.8 / n, 0.0, "pull", "microwave_door"))
        wps += [
            Waypoint(on_arc(goal, depth), 0.4, 1.0, "release", "microwave_door", True),
            Waypoint(on_arc(goal, 0.08), 0.8, 1.0, "retreat", "microwave_door"),
        ]
        return Plan().add(arm, *wps)


def _point_quat(direction: np.ndarray) -> np.ndarray:
    """EE orientation (w,x,y,z) whose -z axis points along horizontal ``direction``, x up."""
    z = -direction / np.linalg.norm(direction)
    x = np.array([0.0, 0.0, 1.0])
    x = x - z * (x @ z)
    x /= np.linalg.norm(x)
    return mat_to_quat(np.stack([x, np.cross(z, x), z], axis=1))


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix of ``angle`` [rad] about unit ``axis``."""
    q = np.empty(4)
    mujoco.mju_axisAngle2Quat(q, axis, angle)
    m = np.empty(9)
    mujoco.mju_quat2Mat(m, q)
    return m.reshape(3, 3)


def _closest_arm(scene: Scene, point: np.ndarray) -> str:
    """The arm whose current EE is nearest to ``point`` (world) [m]."""
    return min(scene.arms, key=lambda a: float(np.linalg.norm(scene.ee_pose(a)[:3] - point)))
