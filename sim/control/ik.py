"""EE-pose targets -> joint position targets (differential IK on the robot alone).

The IK model is the robot MJCF mounted exactly where the scene mounts it, without room or
props, so world-frame targets apply directly and object contacts never perturb the solve.
:class:`ArmIK` itself only needs that model and the robot's arm specs;
:meth:`ArmIK.for_scene` builds both from a scene.

Two solvers minimise the same weighted least-squares objective per iteration (frame tasks with
position/orientation costs, a posture term toward home, Levenberg-Marquardt damping):

- ``"dls"`` (default): the normal equations over the actuated joints, assembled with MuJoCo's
  C helpers from ``mj_jacSite``, joint limits as a box solved exactly by ``mju_boxQP``. About
  0.15 ms per call for two arms, so IK stays a small fraction of the physics it drives.
- ``"mink"``: mink's QP (daqp) with joint limits as hard constraints; several times slower,
  kept as the reference the fast solver is tested against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from sim.errors import ConfigError, ReachError
from sim.model.robot import RobotSpec, robot_mjspec
from sim.model.scene import attach_body, compile_quiet

if TYPE_CHECKING:
    from sim.model.scene import Scene


def ik_model(robot: RobotSpec, mount_pos: np.ndarray, mount_quat: np.ndarray) -> mujoco.MjModel:
    """The robot alone, mounted at (pos [m], quat w,x,y,z) in the world, for IK.

    Joints that move no EE site (fingers, anything below the tool frames) are left out: they
    never enter the solve, and without them the arm joints are the model's only dofs, so the
    site Jacobians are the IK Jacobian as they come, with no column gather.
    """
    spec = robot_mjspec(robot)  # same build-time edits as the scene (fixed joints, sites)
    world = mujoco.MjSpec()
    world.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    frame = world.worldbody.add_frame(pos=mount_pos, quat=mount_quat)
    attach_body(frame, spec.worldbody.first_body())
    model = compile_quiet(world)
    idle = _joints_moving_no_site(model, [s.ee_site for s in robot.arms.values()])
    if not idle:
        return model
    for name in idle:
        world.delete(world.joint(name))
    refs = ("name1", "name2", "target", "objname")  # what equalities/actuators/sensors name
    for el in [*world.equalities, *world.actuators, *world.sensors]:
        if {getattr(el, r, None) for r in refs} & set(idle):
            world.delete(el)
    try:
        return compile_quiet(world)
    except ValueError:  # something else refers to them (a tendon, ...): keep the full robot
        return model


def _joints_moving_no_site(model: mujoco.MjModel, sites: Sequence[str]) -> list[str]:
    """Names of the joints whose body is an ancestor of none of ``sites``' bodies."""
    chain: set[int] = set()
    for s in sites:
        b = int(model.site(s).bodyid[0])
        while b > 0:
            chain.add(b)
            b = int(model.body_parentid[b])
    return [model.joint(j).name for j in range(model.njnt) if model.jnt_bodyid[j] not in chain]


class ArmIK:
    """Differential IK for all arms of a robot.

    Args:
        model: the IK model (:func:`ik_model`: the robot alone, mounted in the world frame).
        robot: the robot's spec (arms -> joints, EE site, shoulder body, reach).
        joint_names: joint order of the returned targets (the scene's action order).
        home: joint name -> home value [rad or m]; the posture task pulls toward it.
        dt: control period [s].
        iters: solver iterations per call (Gauss-Newton steps from the previous solution);
            default 2 for "dls", 3 for "mink" (same data-generation rates on the humanoid tasks).
        position_cost / orientation_cost: frame task weights [1/m], [1/rad].
        posture_cost: weight pulling toward home (resolves redundancy of 7-DoF arms).
        solver: "dls" (normal equations + box QP, in MuJoCo C) or "mink" (mink's QP).
    """

    SOLVERS = ("dls", "mink")
    DAMPING = 1e-3  # damping on the joint step (both solvers) and LM damping of frame tasks
    CONVERGED = 1e-6  # [rad] dls stops iterating once a step moves no joint more than this

    def __init__(
        self,
        model: mujoco.MjModel,
        robot: RobotSpec,
        joint_names: Sequence[str],
        home: Mapping[str, float],
        dt: float,
        iters: int | None = None,
        position_cost: float = 1.0,
        orientation_cost: float = 0.5,
        posture_cost: float = 1e-3,
        solver: str = "dls",
    ):
        if solver not in self.SOLVERS:
            raise ConfigError(f"ik solver {solver!r} unknown; expected one of {self.SOLVERS}")
        self.model, self.robot = model, robot
        self.iters = iters if iters is not None else (2 if solver == "dls" else 3)
        self.solver = solver
        self.dt = dt
        self.costs = (position_cost, orientation_cost, posture_cost)
        self.qadr = np.array([self.model.joint(j).qposadr[0] for j in joint_names])
        self.q_home = self.model.qpos0.copy()
        for j in range(self.model.njnt):
            name = self.model.joint(j).name
            if name in home:
                self.q_home[self.model.jnt_qposadr[j]] = home[name]
        if solver == "mink":  # imported here: mink pulls in qpsolvers (0.8 s per process)
            import mink

            self.config = mink.Configuration(self.model)
            self.frames = {
                arm: mink.FrameTask(
                    spec.ee_site, "site", position_cost, orientation_cost, lm_damping=1e-3
                )
                for arm, spec in robot.arms.items()
            }
            self.posture = mink.PostureTask(self.model, cost=posture_cost)
            self.posture.set_target(self.q_home)
            self.limits = [mink.ConfigurationLimit(self.model)]
            self.data = self.config.data
        else:
            self.data = mujoco.MjData(self.model)
        # dls: actuated dofs, their limits, EE sites and work buffers
        self.dofs = np.array([self.model.joint(j).dofadr[0] for j in joint_names])
        jid = [self.model.joint(j).id for j in joint_names]
        limited = self.model.jnt_limited[jid].astype(bool)
        rng = self.model.jnt_range[jid]
        self.q_lo = np.where(limited, rng[:, 0], -np.inf)
        self.q_hi = np.where(limited, rng[:, 1], np.inf)
        self.site = {a: self.model.site(s.ee_site).id for a, s in robot.arms.items()}
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))
        self._quat, self._rot = np.empty(4), np.empty(3)
        d0 = self.dofs[0] if len(self.dofs) else 0
        contiguous = np.array_equal(self.dofs, np.arange(d0, d0 + len(self.dofs)))
        self._cols = slice(d0, d0 + len(self.dofs)) if contiguous else self.dofs
        k, n = 6 * len(robot.arms), len(self.dofs)
        self._direct = contiguous and d0 == 0 and n == self.model.nv
        self._J, self._e = np.zeros((k, n)), np.zeros(k)
        # per arm (in robot.arms order, as targets come): views of its rows of J and e
        self._rows = [
            (self._J[r : r + 3], self._J[r + 3 : r + 6], self._e[r : r + 3], self._e[r + 3 : r + 6])
            for r in range(0, k, 6)
        ]
        self._site_xpos, self._site_xmat = self.data.site_xpos, self.data.site_xmat
        self._H, self._g, self._dq = np.zeros((n, n)), np.zeros(n), np.zeros(n)
        self._R = np.zeros((n, n + 7))  # mju_boxQP scratch
        self._lo, self._hi = np.zeros(n), np.zeros(n)
        self._w = np.tile([position_cost] * 3 + [orientation_cost] * 3, len(robot.arms)).astype(
            np.float64
        )
        self._wcol = self._w[:, None]
        self._q_home_j = self.q_home[self.qadr].copy()
        self._stale = False
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
        if self.solver == "mink":
            self.config.update(q)  # runs the kinematics
        else:
            self.data.qpos[:] = q
            mujoco.mj_kinematics(self.model, self.data)
        self._stale = False

    def solve(self, targets: dict[str, np.ndarray]) -> np.ndarray:
        """Joint targets [rad] (scene.joint_names order) reaching EE poses (world, wxyz)."""
        if self.solver == "dls":
            return self._solve_dls(targets)
        import mink

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

    def _solve_dls(self, targets: dict[str, np.ndarray]) -> np.ndarray:
        m, d = self.model, self.data
        wpost2 = self.costs[2] ** 2
        cols, qadr, direct = self._cols, self.qadr, self._direct
        k = 6 * len(targets)
        J, e, w, wcol = self._J[:k], self._e[:k], self._w[:k], self._wcol[:k]
        H, g, dq, R = self._H, self._g, self._dq, self._R
        jp, jr, quat, rot = self._jacp, self._jacr, self._quat, self._rot
        xpos, xmat = self._site_xpos, self._site_xmat
        rows = [
            (self.site[arm], *self._rows[i], np.ascontiguousarray(pose, np.float64))
            for i, (arm, pose) in enumerate(targets.items())
        ]
        diag = H.reshape(-1)[:: len(qadr) + 1]  # a view: the diagonal
        q = d.qpos[qadr]  # a copy (fancy index)
        for _ in range(self.iters):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            for sid, Jp, Jr, ep, er, pose in rows:
                if direct:  # the arm joints are the IK model's dofs: the Jacobian as it comes
                    mujoco.mj_jacSite(m, d, Jp, Jr, sid)
                else:
                    mujoco.mj_jacSite(m, d, jp, jr, sid)
                    Jp[:] = jp[:, cols]
                    Jr[:] = jr[:, cols]
                mujoco.mju_mat2Quat(quat, xmat[sid])
                mujoco.mju_subQuat(rot, pose[3:7], quat)
                np.subtract(pose[:3], xpos[sid], out=ep)
                mujoco.mju_mulMatVec3(er, xmat[sid], rot)  # world frame
            J *= wcol
            e *= w
            mujoco.mju_mulMatTMat(H, J, J)
            diag += wpost2 + self.DAMPING + self.DAMPING * float(e @ e)
            mujoco.mju_mulMatTVec(g, J, e)
            g += wpost2 * (self._q_home_j - q)
            np.subtract(self.q_lo, q, out=self._lo)
            np.subtract(self.q_hi, q, out=self._hi)
            _bounded_step(H, g, self._lo, self._hi, dq, R)
            q += dq
            d.qpos[qadr] = q
            if np.abs(dq).max() < self.CONVERGED:  # the next step would change nothing
                break
        self._stale = True  # kinematics of the final q are computed on demand (ee_pose)
        return q

    def _fresh(self) -> None:
        if self._stale:
            mujoco.mj_kinematics(self.model, self.data)
            self._stale = False

    def ee_pose(self, arm: str) -> np.ndarray:
        """EE pose reached by the current IK solution (world, pos + wxyz)."""
        d = self.data
        if self.solver == "dls":
            self._fresh()
            sid = self.site[arm]
            q = np.empty(4)
            mujoco.mju_mat2Quat(q, d.site_xmat[sid])
            return np.concatenate([d.site_xpos[sid], q])
        T = self.config.get_transform_frame_to_world(self.robot.arms[arm].ee_site, "site")
        w = T.wxyz_xyz
        return np.concatenate([w[4:], w[:4]])

    def check_reach(self, arm: str, pos: np.ndarray, what: str) -> None:
        """Raise ReachError if ``pos`` [m, world] is beyond the arm's reach from its shoulder."""
        body = self.shoulder.get(arm)
        if body is None:
            return
        self._fresh()
        shoulder = self.data.body(body).xpos
        dist = float(np.linalg.norm(np.asarray(pos[:3]) - shoulder))
        if dist > self.robot.reach:
            raise ReachError(
                f"robot {self.robot.name!r} arm {arm!r} cannot reach {what} at "
                f"{np.round(pos[:3], 3).tolist()}: {dist:.3f} m from the shoulder, reach is "
                f"{self.robot.reach:.3f} m"
            )


def _bounded_step(
    H: np.ndarray,
    g: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    out: np.ndarray | None = None,
    work: np.ndarray | None = None,
) -> np.ndarray:
    """argmin 0.5 dq'H dq - g'dq subject to lo <= dq <= hi (H positive definite).

    MuJoCo's projected-Newton box QP (``mju_boxQP``, the solver of its own actuator-limited
    controllers), started from zero: exact once the active set is found, in C. ``out`` (n,)
    receives the step; ``work`` is an optional (n, n + 7) float64 scratch array. Bounds may
    be infinite (unlimited joints).
    """
    n = len(g)
    dq = out if out is not None else np.empty(n)
    dq[:] = 0.0
    R = work if work is not None else np.empty((n, n + 7))
    lower = np.maximum(lo, -1e10)  # the solver needs finite bounds
    upper = np.minimum(hi, 1e10)
    if mujoco.mju_boxQP(dq, R, None, np.ascontiguousarray(H), -g, lower, upper) < 0:
        raise ConfigError("IK step: the normal equations are not positive definite")
    return dq
