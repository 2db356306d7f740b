"""EE-pose targets -> joint position targets with mink (differential IK on the robot alone).

The IK model is the robot MJCF mounted exactly where the scene mounts it, without room or
props, so world-frame targets apply directly and object contacts never perturb the solve.
:class:`ArmIK` itself only needs that model and the robot's arm specs;
:meth:`ArmIK.for_scene` builds both from a scene.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import mink
import mujoco
import numpy as np

from sim.errors import ReachError
from sim.model.robot import RobotSpec, robot_mjspec
from sim.model.scene import attach_body, compile_quiet

if TYPE_CHECKING:
    from sim.model.scene import Scene


def ik_model(robot: RobotSpec, mount_pos: np.ndarray, mount_quat: np.ndarray) -> mujoco.MjModel:
    """The robot alone, mounted at (pos [m], quat w,x,y,z) in the world, for IK."""
    spec = robot_mjspec(robot)  # same build-time edits as the scene (fixed joints, sites)
    world = mujoco.MjSpec()
    world.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    frame = world.worldbody.add_frame(pos=mount_pos, quat=mount_quat)
    attach_body(frame, spec.worldbody.first_body())
    return compile_quiet(world)


class ArmIK:
    """Differential IK for all arms of a robot.

    Args:
        model: the IK model (:func:`ik_model`: the robot alone, mounted in the world frame).
        robot: the robot's spec (arms -> joints, EE site, shoulder body, reach).
        joint_names: joint order of the returned targets (the scene's action order).
        home: joint name -> home value [rad or m]; the posture task pulls toward it.
        dt: control period [s].
        iters: solver iterations per call (each a QP with joint limits).
        position_cost / orientation_cost: FrameTask weights [1/m], [1/rad].
        posture_cost: weight pulling toward home (resolves redundancy of 7-DoF arms).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        robot: RobotSpec,
        joint_names: Sequence[str],
        home: Mapping[str, float],
        dt: float,
        iters: int = 3,
        position_cost: float = 1.0,
        orientation_cost: float = 0.5,
        posture_cost: float = 1e-3,
    ):
        self.model, self.robot = model, robot
        self.iters = iters
        self.dt = dt
        self.config = mink.Configuration(self.model)
        self.frames = {
            arm: mink.FrameTask(
                spec.ee_site, "site", position_cost, orientation_cost, lm_damping=1e-3
            )
            for arm, spec in robot.arms.items()
        }
        self.posture = mink.PostureTask(self.model, cost=posture_cost)
        self.limits = [mink.ConfigurationLimit(self.model)]
        self.qadr = np.array([self.model.joint(j).qposadr[0] for j in joint_names])
        self.q_home = self.model.qpos0.copy()
        for j in range(self.model.njnt):
            name = self.model.joint(j).name
            if name in home:
                self.q_home[self.model.jnt_qposadr[j]] = home[name]
        self.posture.set_target(self.q_home)
        self.shoulder = {
            arm: spec.shoulder_body for arm, spec in robot.arms.items() if spec.shoulder_body
        }
        self.reset()

    @classmethod
    def for_scene(cls, scene: Scene, **kw) -> ArmIK:
        """IK for ``scene``'s robot, mounted where the scene mounts it, homed as the scene."""
        mount = scene.model.site("robot_mount")
        model = ik_model(scene.robot, mount.pos, mount.quat)
        home = {}
        for j in range(model.njnt):
            name = model.joint(j).name
            sj = mujoco.mj_name2id(scene.model, mujoco.mjtObj.mjOBJ_JOINT, name)
            if sj >= 0:
                home[name] = float(scene.home_qpos[scene.model.jnt_qposadr[sj]])
        return cls(model, scene.robot, scene.joint_names, home, scene.control_dt, **kw)

    def reset(self, joints: np.ndarray | None = None) -> None:
        """Restart from home (or from the given arm joint values, in scene.joint_names order)."""
        q = self.q_home.copy()
        if joints is not None:
            q[self.qadr] = joints
        self.config.update(q)

    def solve(self, targets: dict[str, np.ndarray]) -> np.ndarray:
        """Joint targets [rad] (scene.joint_names order) reaching EE poses (world, wxyz)."""
        tasks = [self.posture]
        for arm, pose in targets.items():
            task = self.frames[arm]
            task.set_target(mink.SE3(np.concatenate([pose[3:], pose[:3]])))
            tasks.append(task)
        for _ in range(self.iters):
            vel = mink.solve_ik(
                self.config, tasks, self.dt, solver="daqp", damping=1e-3, limits=self.limits
            )
            self.config.integrate_inplace(vel, self.dt)
        return self.config.q[self.qadr].copy()

    def ee_pose(self, arm: str) -> np.ndarray:
        """EE pose reached by the current IK solution (world, pos + wxyz)."""
        T = self.config.get_transform_frame_to_world(self.robot.arms[arm].ee_site, "site")
        w = T.wxyz_xyz
        return np.concatenate([w[4:], w[:4]])

    def check_reach(self, arm: str, pos: np.ndarray, what: str) -> None:
        """Raise ReachError if ``pos`` [m, world] is beyond the arm's reach from its shoulder."""
        body = self.shoulder.get(arm)
        if body is None:
            return
        shoulder = self.config.data.body(body).xpos
        dist = float(np.linalg.norm(np.asarray(pos[:3]) - shoulder))
        if dist > self.robot.reach:
            raise ReachError(
                f"robot {self.robot.name!r} arm {arm!r} cannot reach {what} at "
                f"{np.round(pos[:3], 3).tolist()}: {dist:.3f} m from the shoulder, reach is "
                f"{self.robot.reach:.3f} m"
            )
