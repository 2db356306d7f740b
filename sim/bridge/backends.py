"""Simulation backends of the digital twin: what :class:`~sim.bridge.twin.TwinDriver` steps.

* :class:`SceneBackend`: a project :class:`sim.model.scene.Scene` (robot + room + task), built
  by :func:`scene_backend` from robot/task names.
* :class:`MjcfBackend`: any MJCF that follows three conventions: every robot joint has a
  position actuator (actuator order = action order); a gripper is a position actuator named
  ``<arm>_gripper`` on a joint whose range maps to opening 0..1 (ctrlrange[0] = closed); the EE
  of arm ``<arm>`` is the site ``<arm>_ee``. Bodies with a free joint are objects.
  ``scenes/robots/tiny_arm/tiny_arm.xml`` is such a model (one 3-joint arm + gripper + a cube).

:func:`load_backend` picks one from a spec string (``hardware.robot``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import mujoco
import numpy as np

from sim.errors import ConfigError


class SimBackend(Protocol):
    """What the twin needs from a simulation (Scene or plain MJCF)."""

    name: str
    model: mujoco.MjModel
    data: mujoco.MjData
    joint_names: list[str]
    action_names: list[str]
    arms: list[str]
    objects: list[str]
    control_dt: float

    def set_action(self, action: np.ndarray) -> None:
        """Joint targets [rad or m] then gripper openings [0, 1] -> ctrl."""

    def step_physics(self, n: int) -> None:
        """Advance ``n`` physics steps; raise PhysicsError on instability."""

    def observe(self) -> dict[str, Any]:
        """Nested observation: qpos, qvel, ee {arm: (7,)}, gripper {arm: float}, objects."""

    def reset(
        self,
        seed: int | None,
        level: str | None,
        objects: Mapping[str, np.ndarray],
        qpos: np.ndarray | None,
    ) -> None:
        """Reset the simulation; then place objects / set joint positions if given."""

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower/upper bound per action dim (joint ranges, grippers [0, 1])."""

    def fk(self, q: np.ndarray) -> dict[str, np.ndarray]:
        """Joint positions (n,) -> arm -> EE position (3,) in the world frame [m]."""

    def success(self) -> bool | None:
        """Task success on the current state (None = no task)."""


def _joint_limits(model: mujoco.MjModel, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = [], []
    for name in names:
        j = model.joint(name)
        if model.jnt_limited[j.id]:
            lo.append(float(model.jnt_range[j.id, 0]))
            hi.append(float(model.jnt_range[j.id, 1]))
        else:
            lo.append(-np.pi)
            hi.append(np.pi)
    return np.array(lo), np.array(hi)


class _FK:
    """Thread-safe FK on a private MjData (other joints at ``base_qpos``)."""

    def __init__(
        self,
        model: mujoco.MjModel,
        base_qpos: np.ndarray,
        qpos_adr: np.ndarray,
        sites: dict[str, int],
    ) -> None:
        self.model, self.qpos_adr, self.sites = model, qpos_adr, sites
        self.data = mujoco.MjData(model)
        self.base = base_qpos.copy()
        self.lock = threading.Lock()

    def __call__(self, q: np.ndarray) -> dict[str, np.ndarray]:
        with self.lock:
            self.data.qpos[:] = self.base
            self.data.qpos[self.qpos_adr] = q
            mujoco.mj_kinematics(self.model, self.data)
            return {arm: self.data.site_xpos[s].copy() for arm, s in self.sites.items()}


class SceneBackend:
    """Adapter: a :class:`sim.model.scene.Scene` as a twin backend."""

    def __init__(self, scene: Any, name: str | None = None) -> None:
        self.scene = scene
        self.name = name or scene.robot.name
        self.model, self.data = scene.model, scene.data
        self.joint_names = list(scene.joint_names)
        self.action_names = list(scene.action_names)
        self.arms = list(scene.arms)
        self.objects = list(scene.object_names())
        self.control_dt = float(scene.control_dt)
        self._fk = _FK(
            scene.model, scene.home_qpos, np.asarray(scene.qpos_adr), dict(scene.ee_site)
        )

    def set_action(self, action: np.ndarray) -> None:
        self.scene.set_action(action)

    def step_physics(self, n: int) -> None:
        self.scene.step(n)

    def observe(self) -> dict[str, Any]:
        return self.scene.observe()

    def reset(
        self,
        seed: int | None,
        level: str | None,
        objects: Mapping[str, np.ndarray],
        qpos: np.ndarray | None,
    ) -> None:
        self.scene.reset(np.random.default_rng(seed), level)
        for name, pose in objects.items():
            self.scene.set_free_pose(name, np.asarray(pose, float))
        if qpos is not None:
            q = np.asarray(qpos, float)
            self.data.qpos[self.scene.qpos_adr] = q
            self.data.ctrl[self.scene.joint_act] = q
        mujoco.mj_forward(self.model, self.data)

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = _joint_limits(self.model, self.joint_names)
        g = len(self.action_names) - len(self.joint_names)
        return np.concatenate([lo, np.zeros(g)]), np.concatenate([hi, np.ones(g)])

    def fk(self, q: np.ndarray) -> dict[str, np.ndarray]:
        return self._fk(q)

    def success(self) -> bool | None:
        task = self.scene.task
        return None if task is None else bool(task.success(self.scene))


def scene_backend(
    robot: str = "demoforge_humanoid", task: str | None = "stack_blocks", **scene_kw: Any
) -> SceneBackend:
    """Build the project's scene (:func:`sim.model.scene.build_scene`) as a twin backend."""
    from sim.tasks import build_scene

    return SceneBackend(build_scene(robot=robot, task=task, **scene_kw))


class MjcfBackend:
    """Adapter: a plain MJCF following the conventions in the module docstring."""

    def __init__(
        self, model: mujoco.MjModel, control_dt: float = 0.02, name: str | None = None
    ) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.name = name or model.names[: model.names.find(b"\0")].decode() or "mjcf"
        self.control_dt = control_dt
        n_sub = control_dt / model.opt.timestep
        if abs(n_sub - round(n_sub)) > 1e-6 or round(n_sub) < 1:
            raise ConfigError(
                f"control_dt {control_dt} s is not a multiple of the timestep "
                f"{model.opt.timestep} s"
            )
        joints, jact, grip = [], [], {}
        for a in range(model.nu):
            if model.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
                continue
            aname = model.actuator(a).name
            jname = model.joint(int(model.actuator_trnid[a, 0])).name
            if aname.endswith("_gripper"):
                grip[aname[: -len("_gripper")]] = (a, jname)
            else:
                joints.append(jname)
                jact.append(a)
        self.joint_names = joints
        self.arms = [
            model.site(i).name[:-3]
            for i in range(model.nsite)
            if model.site(i).name.endswith("_ee")
        ]
        if not self.arms:
            raise ConfigError(f"MJCF {self.name!r}: no EE site named '<arm>_ee'")
        unknown = sorted(set(grip) - set(self.arms))
        if unknown:
            raise ConfigError(
                f"MJCF {self.name!r}: gripper actuators for arms {unknown} "
                f"without an '<arm>_ee' site"
            )
        self.grip_arms = [a for a in self.arms if a in grip]
        self.action_names = joints + [f"{a}_gripper" for a in self.grip_arms]
        self._jact = np.array(jact, dtype=int)
        self._gact = {a: grip[a][0] for a in self.grip_arms}
        self._gjnt = {a: model.joint(grip[a][1]).id for a in self.grip_arms}
        ids = [model.joint(j).id for j in joints]
        self._qadr = np.array([model.jnt_qposadr[j] for j in ids], dtype=int)
        self._dadr = np.array([model.jnt_dofadr[j] for j in ids], dtype=int)
        self._sites = {a: model.site(f"{a}_ee").id for a in self.arms}
        free = mujoco.mjtJoint.mjJNT_FREE
        self.objects = [
            model.body(int(model.jnt_bodyid[j])).name
            for j in range(model.njnt)
            if model.jnt_type[j] == free
        ]
        self._fk = _FK(model, model.qpos0, self._qadr, self._sites)
        self.reset(None, None, {}, None)

    def set_action(self, action: np.ndarray) -> None:
        a = np.asarray(action, dtype=np.float64)
        n = len(self.joint_names)
        self.data.ctrl[self._jact] = a[:n]
        for i, arm in enumerate(self.grip_arms):
            lo, hi = self.model.actuator_ctrlrange[self._gact[arm]]
            self.data.ctrl[self._gact[arm]] = lo + float(np.clip(a[n + i], 0, 1)) * (hi - lo)

    def step_physics(self, n: int) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
        if not np.all(np.isfinite(self.data.qpos)):
            from sim.errors import PhysicsError

            raise PhysicsError(f"MJCF {self.name!r}: NaN/inf state at t={self.data.time:.3f}s")

    def _opening(self, arm: str) -> float:
        j = self._gjnt[arm]
        lo, hi = self.model.jnt_range[j]
        q = self.data.qpos[self.model.jnt_qposadr[j]]
        return float(np.clip((q - lo) / (hi - lo), 0.0, 1.0))

    def observe(self) -> dict[str, Any]:
        d = self.data
        ee = {}
        for arm, s in self._sites.items():
            quat = np.empty(4)
            mujoco.mju_mat2Quat(quat, d.site_xmat[s])
            ee[arm] = np.concatenate([d.site_xpos[s], quat])
        return {
            "qpos": d.qpos[self._qadr].copy(),
            "qvel": d.qvel[self._dadr].copy(),
            "ee": ee,
            "gripper": {a: self._opening(a) for a in self.grip_arms},
            "objects": {o: np.concatenate([d.body(o).xpos, d.body(o).xquat]) for o in self.objects},
        }

    def reset(
        self,
        seed: int | None,
        level: str | None,
        objects: Mapping[str, np.ndarray],
        qpos: np.ndarray | None,
    ) -> None:
        mujoco.mj_resetData(self.model, self.data)
        if qpos is not None:
            self.data.qpos[self._qadr] = np.asarray(qpos, float)
        self.data.ctrl[self._jact] = self.data.qpos[self._qadr]
        for name, pose in objects.items():
            jid = self.model.body_jntadr[self.model.body(name).id]
            adr = self.model.jnt_qposadr[jid]
            self.data.qpos[adr : adr + 7] = np.asarray(pose, float)
        mujoco.mj_forward(self.model, self.data)

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = _joint_limits(self.model, self.joint_names)
        g = len(self.grip_arms)
        return np.concatenate([lo, np.zeros(g)]), np.concatenate([hi, np.ones(g)])

    def fk(self, q: np.ndarray) -> dict[str, np.ndarray]:
        return self._fk(q)

    def success(self) -> bool | None:
        return None


def tiny_arm_path() -> Path:
    """The tiny test arm's MJCF (``scenes/robots/tiny_arm/tiny_arm.xml``)."""
    from sim.paths import scenes_dir

    return scenes_dir() / "robots" / "tiny_arm" / "tiny_arm.xml"


def tiny_arm_spec() -> mujoco.MjSpec:
    """The tiny robot for tests/benchmarks as an MjSpec: arm ``right`` (3 hinges), gripper, EE
    site, a cube.

    Joints ``shoulder_yaw``, ``shoulder_pitch``, ``elbow`` (position actuators kp=300), slide
    gripper ``right_gripper`` (0..0.04 m), site ``right_ee`` at the tip, free body ``cube``.
    """
    return mujoco.MjSpec.from_file(str(tiny_arm_path()))


def load_backend(robot: str, control_dt: float | None = None, **scene_kw: Any) -> SimBackend:
    """Backend from a spec string: ``tiny_arm``, ``mjcf:<path.xml>`` or ``scene:<robot>/<task>``.

    ``scene:<robot>`` (no task) builds the robot in its default room without props.
    """
    if robot == "tiny_arm":
        model = mujoco.MjModel.from_xml_path(str(tiny_arm_path()))
        return MjcfBackend(model, control_dt or 0.02, name="tiny_arm")
    kind, _, rest = robot.partition(":")
    if kind == "mjcf" and rest:
        path = Path(rest)
        if not path.exists():
            raise ConfigError(f"twin robot {robot!r}: MJCF {path} not found")
        return MjcfBackend(mujoco.MjModel.from_xml_path(str(path)), control_dt or 0.02)
    if kind == "scene" and rest:
        rname, _, task = rest.partition("/")
        if control_dt is not None:
            scene_kw.setdefault("control_hz", 1.0 / control_dt)
        return scene_backend(rname, task or None, **scene_kw)
    raise ConfigError(
        f"twin robot {robot!r}: expected 'tiny_arm', 'mjcf:<path>' or 'scene:<robot>/<task>'"
    )
