"""Digital-twin driver: a MuJoCo model standing in for the robot.

:class:`TwinDriver` steps a simulation backend in real time in a background thread (or in
lockstep: one control period per ``send_action``), with configurable command and observation
latency (delay queues), Gaussian observation noise and dropped packets. ``action`` goes to
position-actuator ctrl through the backend.

Backends (the :class:`SimBackend` adapter):
    * :class:`SceneBackend`: a project :class:`sim.model.scene.Scene` (robot + room + task), built
      by :func:`scene_backend` from robot/task names.
    * :class:`MjcfBackend`: any MJCF that follows three conventions: every robot joint has a
      position actuator (actuator order = action order); a gripper is a position actuator named
      ``<arm>_gripper`` on a joint whose range maps to opening 0..1 (ctrlrange[0] = closed);
      the EE of arm ``<arm>`` is the site ``<arm>_ee``. Bodies with a free joint are objects.
      :func:`tiny_arm_spec` builds such a model (one 3-joint arm + gripper + a cube).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import mujoco
import numpy as np

from sim.bridge.protocol import (
    Capabilities,
    as_action_vector,
    flatten_observation,
    observation_features,
)
from sim.errors import BridgeError, ConfigError, SimError

_J = mujoco.mjtObj.mjOBJ_JOINT


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
    from sim.model.scene import build_scene

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


def tiny_arm_spec() -> mujoco.MjSpec:
    """A tiny robot for tests/benchmarks: arm ``right`` (3 hinges), gripper, EE site, a cube.

    Joints ``shoulder_yaw``, ``shoulder_pitch``, ``elbow`` (position actuators kp=300), slide
    gripper ``right_gripper`` (0..0.04 m), site ``right_ee`` at the tip, free body ``cube``.
    """
    s = mujoco.MjSpec()
    s.modelname = "tiny_arm"
    s.compiler.degree = False
    s.option.timestep = 0.002
    hinge, slide = mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE
    cap, box = mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_BOX
    s.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1, 1, 0.1])
    base = s.worldbody.add_body(name="base", pos=[0, 0, 0.3])
    l1 = base.add_body(name="link1")
    l1.add_joint(
        name="shoulder_yaw",
        type=hinge,
        axis=[0, 0, 1],
        range=[-2.5, 2.5],
        damping=2.0,
        armature=0.01,
    )
    l1.add_geom(type=cap, fromto=[0, 0, 0, 0, 0, 0.05], size=[0.03, 0, 0], mass=0.5)
    l2 = l1.add_body(name="link2", pos=[0, 0, 0.05])
    l2.add_joint(
        name="shoulder_pitch",
        type=hinge,
        axis=[0, 1, 0],
        range=[-1.5, 1.5],
        damping=2.0,
        armature=0.01,
    )
    l2.add_geom(type=cap, fromto=[0, 0, 0, 0.25, 0, 0], size=[0.025, 0, 0], mass=0.4)
    l3 = l2.add_body(name="link3", pos=[0.25, 0, 0])
    l3.add_joint(
        name="elbow", type=hinge, axis=[0, 1, 0], range=[-2.0, 2.0], damping=1.5, armature=0.01
    )
    l3.add_geom(type=cap, fromto=[0, 0, 0, 0.2, 0, 0], size=[0.02, 0, 0], mass=0.3)
    hand = l3.add_body(name="hand", pos=[0.2, 0, 0])
    hand.add_site(name="right_ee", pos=[0.03, 0, 0])
    finger = hand.add_body(name="finger")
    finger.add_joint(name="finger", type=slide, axis=[0, 0, 1], range=[0, 0.04], damping=1.0)
    finger.add_geom(type=box, size=[0.01, 0.01, 0.02], mass=0.05, contype=0, conaffinity=0)
    for jname in ("shoulder_yaw", "shoulder_pitch", "elbow"):
        a = s.add_actuator(name=jname, target=jname, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        a.set_to_position(kp=300.0, kv=10.0)
    g = s.add_actuator(name="right_gripper", target="finger", trntype=mujoco.mjtTrn.mjTRN_JOINT)
    g.set_to_position(kp=200.0, kv=5.0)
    g.ctrllimited = 1
    g.ctrlrange = [0.0, 0.04]
    cube = s.worldbody.add_body(name="cube", pos=[0.4, 0.0, 0.02])
    cube.add_freejoint()
    cube.add_geom(type=box, size=[0.02, 0.02, 0.02], mass=0.05)
    return s


def load_backend(robot: str, control_dt: float | None = None, **scene_kw: Any) -> SimBackend:
    """Backend from a spec string: ``tiny_arm``, ``mjcf:<path.xml>`` or ``scene:<robot>/<task>``.

    ``scene:<robot>`` (no task) builds the robot in its default room without props.
    """
    if robot == "tiny_arm":
        return MjcfBackend(tiny_arm_spec().compile(), control_dt or 0.02, name="tiny_arm")
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


@dataclass(frozen=True)
class TwinConfig:
    """Link/robot imperfections of the twin.

    Attributes:
        realtime: step in a background thread at wall-clock rate (else lockstep: each
            ``send_action`` advances one control period).
        cmd_latency_s: delay before a command reaches the actuators [s].
        obs_latency_s: age of the state returned by ``get_observation`` [s].
        noise_qpos: std of Gaussian noise on observed joint positions [rad or m].
        noise_qvel: std on joint velocities [rad/s].
        noise_ee: std on EE positions [m].
        drop_prob: probability that a command is lost, and (independently) that an
            observation is lost (the previous one is returned again).
        seed: seed of the noise/drop generator.
        tick_s: real-time thread period [s] (physics catches up to wall time each tick).
        objects: include ``objects.<name>`` (and ``success`` when the backend has a task).
    """

    realtime: bool = True
    cmd_latency_s: float = 0.0
    obs_latency_s: float = 0.0
    noise_qpos: float = 0.0
    noise_qvel: float = 0.0
    noise_ee: float = 0.0
    drop_prob: float = 0.0
    seed: int = 0
    tick_s: float = 0.004
    objects: bool = True

    def __post_init__(self) -> None:
        for k in ("cmd_latency_s", "obs_latency_s", "noise_qpos", "noise_qvel", "noise_ee"):
            if getattr(self, k) < 0:
                raise ConfigError(f"twin.{k} must be >= 0, got {getattr(self, k)}")
        if not 0.0 <= self.drop_prob < 1.0:
            raise ConfigError(f"twin.drop_prob must be in [0, 1), got {self.drop_prob}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> TwinConfig:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"twin: unknown keys {unknown}; expected {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**d)


@dataclass
class TwinStats:
    """Link and physics counters of a twin."""

    commands: int = 0
    cmd_dropped: int = 0
    cmd_applied: int = 0
    observations: int = 0
    obs_dropped: int = 0
    physics_steps: int = 0
    max_lag_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TwinDriver:
    """A simulated robot behind the :class:`~sim.bridge.protocol.Driver` protocol.

    Args:
        backend: the simulation (see :func:`load_backend`).
        cfg: latency/noise/drop settings.
    """

    def __init__(self, backend: SimBackend, cfg: TwinConfig | None = None) -> None:
        self.backend = backend
        self.cfg = cfg or TwinConfig()
        self.link_stats = TwinStats()
        self._rng = np.random.default_rng(self.cfg.seed)
        self._lock = threading.RLock()
        self._cmds: deque[tuple[float, np.ndarray]] = deque()
        self._snaps: deque[tuple[float, dict[str, np.ndarray]]] = deque()
        self._last_obs: dict[str, np.ndarray] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fault: str | None = None
        self._connected = False
        self._step_idx = 0
        dt, ts = backend.control_dt, backend.model.opt.timestep
        self._n_sub = int(round(dt / ts))
        lo, hi = backend.limits()
        has_success = self.cfg.objects and backend.success() is not None
        self._caps = Capabilities(
            robot=backend.name,
            driver="twin",
            joint_names=list(backend.joint_names),
            action_names=list(backend.action_names),
            arms=list(backend.arms),
            fps_max=1.0 / ts,
            control_dt=dt,
            lower=lo.tolist(),
            upper=hi.tolist(),
            objects=list(backend.objects) if self.cfg.objects else [],
            extra={"twin": asdict(self.cfg), "timestep": ts, "has_success": has_success},
        )
        self._features = observation_features(self._caps)
        if has_success:
            self._features["success"] = ()
        keep = max(self.cfg.obs_latency_s, 0.0) / min(self.cfg.tick_s, dt) + 64
        self._keep = int(keep)

    # ------------------------------------------------------------------ Driver protocol
    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def observation_features(self) -> dict[str, tuple[int, ...]]:
        return dict(self._features)

    @property
    def action_features(self) -> dict[str, tuple[int, ...]]:
        return {"action": (len(self._caps.action_names),)}

    @property
    def fk(self):  # noqa: ANN201 - the backend's FK (see sim.bridge.safety.FK)
        return self.backend.fk

    def connect(self) -> None:
        """Start the physics thread (real-time mode); idempotent."""
        with self._lock:
            if self._connected:
                return
            self._fault = None
            self._snapshot(time.monotonic())
            self._connected = True
        if self.cfg.realtime:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="twin-physics", daemon=True)
            self._thread.start()

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._connected = False

    def get_observation(self) -> dict[str, np.ndarray]:
        """Latest state at least ``obs_latency_s`` old, with noise; a dropped packet returns
        the previous observation again."""
        with self._lock:
            self._check()
            self.link_stats.observations += 1
            if self._last_obs is not None and self._drop():
                self.link_stats.obs_dropped += 1
                return {k: v.copy() for k, v in self._last_obs.items()}
            if self.cfg.realtime:
                target = time.monotonic() - self.cfg.obs_latency_s
                snap = self._snaps[0][1]
                for t, s in reversed(self._snaps):
                    if t <= target:
                        snap = s
                        break
            else:
                k = int(round(self.cfg.obs_latency_s / self.backend.control_dt))
                snap = self._snaps[max(0, len(self._snaps) - 1 - k)][1]
            obs = self._noisy(snap)
            self._last_obs = obs
            return {k: v.copy() for k, v in obs.items()}

    def send_action(self, action: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Queue a command (applied after ``cmd_latency_s``); returns it. Lockstep mode then
        advances one control period."""
        a = as_action_vector(action, self._caps.action_names)
        if not np.all(np.isfinite(a)):
            raise BridgeError(
                f"twin {self._caps.robot!r}: NaN/inf action {a} (the safety layer "
                "should have stopped it)"
            )
        with self._lock:
            self._check()
            self.link_stats.commands += 1
            dropped = self._drop()
            if dropped:
                self.link_stats.cmd_dropped += 1
            if self.cfg.realtime:
                if not dropped:
                    self._cmds.append((time.monotonic() + self.cfg.cmd_latency_s, a.copy()))
            else:
                k = int(round(self.cfg.cmd_latency_s / self.backend.control_dt))
                if not dropped:
                    self._cmds.append((self._step_idx + k, a.copy()))
                self._apply_due(self._step_idx)
                self._physics(self._n_sub)
                self._step_idx += 1
                self._snapshot(float(self._step_idx))
        return a.copy()

    # ------------------------------------------------------------------ simulation access
    def reset(
        self,
        seed: int | None = None,
        level: str | None = None,
        objects: Mapping[str, np.ndarray] | None = None,
        qpos: np.ndarray | None = None,
    ) -> None:
        """Reset the simulated world (pending commands are discarded).

        Args:
            seed: scene reset seed (task layout); level: task level ("D0".."D2").
            objects: object name -> pose (7,) world frame, pos [m] + quat w,x,y,z.
            qpos: joint positions (n,) [rad]; the joint targets are set to them too.
        """
        objects = dict(objects or {})
        unknown = sorted(set(objects) - set(self.backend.objects))
        if unknown:
            raise BridgeError(
                f"twin {self._caps.robot!r}: unknown objects {unknown}; it has "
                f"{self.backend.objects}"
            )
        n = len(self._caps.joint_names)
        if qpos is not None and np.shape(qpos) != (n,):
            raise BridgeError(
                f"twin {self._caps.robot!r}: qpos must have shape ({n},), got {np.shape(qpos)}"
            )
        with self._lock:
            self.backend.reset(seed, level, objects, qpos)
            self._cmds.clear()
            self._snaps.clear()
            self._last_obs = None
            self._fault = None
            self._snapshot(time.monotonic() if self.cfg.realtime else float(self._step_idx))

    def success(self) -> bool | None:
        with self._lock:
            return self.backend.success()

    def step(self, n: int = 1) -> None:
        """Advance ``n`` control periods now (lockstep mode; for dry runs and tests)."""
        with self._lock:
            for _ in range(n):
                self._apply_due(self._step_idx)
                self._physics(self._n_sub)
                self._step_idx += 1
                self._snapshot(float(self._step_idx))

    # ------------------------------------------------------------------ internals
    def _check(self) -> None:
        if self._fault is not None:
            raise BridgeError(f"twin {self._caps.robot!r} stopped: {self._fault}")
        if not self._connected:
            raise BridgeError(f"twin {self._caps.robot!r} not connected (call connect())")

    def _drop(self) -> bool:
        return self.cfg.drop_prob > 0 and bool(self._rng.random() < self.cfg.drop_prob)

    def _noisy(self, snap: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        c = self.cfg
        if not (c.noise_qpos or c.noise_qvel or c.noise_ee):
            return snap
        out = dict(snap)
        if c.noise_qpos:
            out["qpos"] = snap["qpos"] + self._rng.normal(0, c.noise_qpos, snap["qpos"].shape)
        if c.noise_qvel:
            out["qvel"] = snap["qvel"] + self._rng.normal(0, c.noise_qvel, snap["qvel"].shape)
        if c.noise_ee:
            for arm in self._caps.arms:
                p = snap[f"ee.{arm}"].copy()
                p[:3] += self._rng.normal(0, c.noise_ee, 3)
                out[f"ee.{arm}"] = p
        return out

    def _apply_due(self, now: float) -> None:
        latest = None
        while self._cmds and self._cmds[0][0] <= now:
            latest = self._cmds.popleft()[1]
        if latest is not None:
            self.backend.set_action(latest)
            self.link_stats.cmd_applied += 1

    def _physics(self, n: int) -> None:
        try:
            self.backend.step_physics(n)
        except SimError as e:
            self._fault = str(e)
            raise BridgeError(f"twin {self._caps.robot!r} stopped: {e}") from None
        self.link_stats.physics_steps += n

    def _snapshot(self, t: float) -> None:
        obs = flatten_observation(self.backend.observe())
        if not self.cfg.objects:
            obs = {k: v for k, v in obs.items() if not k.startswith("objects.")}
        if "success" in self._features:
            obs["success"] = np.asarray(float(bool(self.backend.success())))
        self._snaps.append((t, obs))
        while len(self._snaps) > self._keep:
            self._snaps.popleft()

    def _run(self) -> None:
        ts = self.backend.model.opt.timestep
        t0 = time.monotonic()
        done = 0
        while not self._stop.is_set():
            now = time.monotonic()
            due = int((now - t0) / ts) - done
            if due > 0:
                n = min(due, max(1, int(0.1 / ts)))  # cap: never stall > 100 ms of physics
                with self._lock:
                    try:
                        self._apply_due(now)
                        self._physics(n)
                    except BridgeError:
                        return
                    self._snapshot(now)
                done += n
                self.link_stats.max_lag_s = max(self.link_stats.max_lag_s, (due - n) * ts)
                if due - n > 0:  # fell behind by more than the cap: drop the backlog
                    done = int((time.monotonic() - t0) / ts)
            self._stop.wait(self.cfg.tick_s)
