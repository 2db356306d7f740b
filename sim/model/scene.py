"""Scene composition with mujoco.MjSpec: room + task props + robot, compiled once.

Per-episode randomization writes values into ``model``/``data`` arrays; the structure is never
recompiled between episodes and ``MjData`` is reused.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from sim.errors import ConfigError, PhysicsError, UnknownNameError
from sim.model.contacts import subtree_bodies
from sim.model.robot import RobotSpec, check_robot_model, load_robot, robot_home, robot_mjspec
from sim.model.weld_grasp import WeldGrasp, add_grasp_welds, graspable_objects, weld_arms
from sim.paths import scenes_dir

if TYPE_CHECKING:
    from sim.tasks.base import Task

log = logging.getLogger(__name__)
_J = mujoco.mjtObj.mjOBJ_JOINT
_BADQACC = int(mujoco.mjtWarning.mjWARN_BADQACC)
_SCALAR_JOINTS = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def known_rooms() -> list[str]:
    """Room names shipped in scenes/rooms/."""
    return sorted(p.stem for p in (scenes_dir() / "rooms").glob("*.xml"))


def _room_path(room: str) -> Path:
    p = Path(room)
    if p.suffix == ".xml" and p.exists():
        return p
    p = scenes_dir() / "rooms" / f"{room}.xml"
    if not p.exists():
        raise UnknownNameError("room", room, known_rooms())
    return p


_EXPECTED = ("empty prefix", "Attach conflict")


def _log_mujoco_warning(msg: str) -> None:
    """MuJoCo warnings (unstable physics, ...) go to logging, not to MUJOCO_LOG.TXT in the cwd."""
    log.warning("MuJoCo: %s", msg.strip())


if mujoco.get_mju_user_warning() is None:  # leave a handler the application installed alone
    mujoco.set_mju_user_warning(_log_mujoco_warning)


@contextmanager
def _quiet_attach():
    """Drop MuJoCo's notice that an empty name prefix may hamper saving (names are kept as
    authored on purpose); any other MuJoCo warning is logged. Without this, MuJoCo prints it
    and appends it to MUJOCO_LOG.TXT in the working directory."""
    previous = mujoco.get_mju_user_warning()

    def handler(msg: str) -> None:
        if not any(e in msg for e in _EXPECTED):
            _log_mujoco_warning(msg)

    mujoco.set_mju_user_warning(handler)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(empty prefix|Attach conflict).*")
            yield
    finally:
        mujoco.set_mju_user_warning(previous)


def attach_body(frame, body) -> None:
    """Attach a body (and its subtree) of another spec at ``frame``, keeping its names."""
    with _quiet_attach():
        frame.attach_body(body, "", "")


def _attach(parent: mujoco.MjSpec, child: mujoco.MjSpec, pos, quat) -> None:
    """Attach every top-level body of ``child`` at (pos, quat) of ``parent``'s world, names kept."""
    frame = parent.worldbody.add_frame(pos=pos, quat=quat)
    with _quiet_attach():
        body = child.worldbody.first_body()
        while body is not None:
            nxt = child.worldbody.next_body(body)
            frame.attach_body(body, "", "")
            body = nxt
        for geom in list(child.worldbody.geoms):  # static geoms in the child's world body
            frame.add_geom(
                name=geom.name,
                type=geom.type,
                size=geom.size,
                pos=geom.pos,
                quat=geom.quat,
                rgba=geom.rgba,
                material=geom.material,
            )


def compile_quiet(spec: mujoco.MjSpec) -> mujoco.MjModel:
    """Compile, silencing MuJoCo's notice about attaching with an empty name prefix."""
    with _quiet_attach():
        return spec.compile()


def build_spec(robot: RobotSpec, room: str, props: str | Path | None) -> mujoco.MjSpec:
    """Compose room + props (at site ``workspace``) + robot (at site ``robot_mount``)."""
    spec = mujoco.MjSpec.from_file(str(_room_path(room)))
    robot_spec = robot_mjspec(robot)  # base welded, keyframes dropped, YAML edits applied
    for name, kind in (("robot_mount", "robot"), ("workspace", "props")):
        site = spec.site(name)
        if site is None or site.parent.name != "world":
            raise ConfigError(
                f"room {room!r} needs a site {name!r} in <worldbody> to place the {kind}"
            )
    mount = spec.site("robot_mount")
    if props is not None:
        props_path = Path(props)
        if not props_path.is_absolute():
            props_path = scenes_dir() / props_path
        ws = spec.site("workspace")
        _attach(spec, mujoco.MjSpec.from_file(str(props_path)), ws.pos, ws.quat)
    _attach(spec, robot_spec, mount.pos, mount.quat)
    return spec


@dataclass
class Scene:
    """A compiled scene plus the index maps every other room needs.

    Attributes:
        joint_names: the robot's arm joints, arms in RobotSpec order (action order).
        action_names: joint_names then one ``<arm>_gripper`` opening per arm with a gripper.
        control_dt: control period [s]; ``n_substeps`` physics steps per control step.
    """

    model: mujoco.MjModel
    data: mujoco.MjData
    robot: RobotSpec
    room: str
    task: Task | None
    joint_names: list[str]
    action_names: list[str]
    qpos_adr: np.ndarray
    dof_adr: np.ndarray
    joint_act: np.ndarray
    gripper_arms: list[str]
    gripper_act: dict[str, int]
    gripper_qpos_adr: dict[str, int]
    ee_site: dict[str, int]
    home_qpos: np.ndarray
    home_ctrl: np.ndarray
    control_dt: float
    n_substeps: int
    robot_root: int = 0
    hand_bodies: dict[str, np.ndarray] = field(default_factory=dict)
    level: str = "D0"
    info: dict[str, Any] = field(default_factory=dict)
    weld: WeldGrasp | None = None  # grippers of hands without fingers (gripper.weld)
    spec: mujoco.MjSpec | None = None  # the composed spec the model was compiled from
    _nominal: dict[str, np.ndarray] = field(default_factory=dict)
    _body_ids: dict[str, int] = field(default_factory=dict)

    @property
    def arms(self) -> list[str]:
        return list(self.robot.arms)

    # ------------------------------------------------------------------ reset / act / step
    def reset(self, rng: np.random.Generator, level: str | None = None) -> None:
        """Reset physics to home, restore nominal model values, let the task sample its props."""
        if level is not None:
            self.level = level
        for name, arr in self._nominal.items():  # undo last episode's randomization
            getattr(self.model, name)[:] = arr
        mujoco.mj_resetData(self.model, self.data)
        if self.weld is not None:
            self.weld.reset(self.data)
        self.data.qpos[:] = self.home_qpos
        self.data.ctrl[:] = self.home_ctrl
        if self.task is not None:
            self.task.reset(self, rng, self.level)
        mujoco.mj_forward(self.model, self.data)

    def mjcf_xml(self) -> str:
        """The compiled scene as one MJCF document (stored with datasets for reset-to-state)."""
        if self.spec is None:
            raise ConfigError("this scene was not built from a spec; no MJCF to export")
        with _quiet_attach():
            xml = self.spec.to_xml()
        return _dedupe_defaults(xml)

    def remember_nominal(self, *names: str) -> None:
        """Snapshot model arrays (e.g. 'geom_friction') so reset() restores them."""
        for name in names:
            if name not in self._nominal:
                self._nominal[name] = getattr(self.model, name).copy()

    def set_action(self, action: np.ndarray) -> None:
        """Apply an action: absolute joint targets [rad] then gripper openings in [0, 1]."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (len(self.action_names),):
            raise ConfigError(
                f"action must have shape ({len(self.action_names)},) = {self.action_names}, "
                f"got {action.shape}"
            )
        if not np.isfinite(action).all():
            raise PhysicsError(f"action has NaN/inf: {action}")
        n = len(self.joint_names)
        self.data.ctrl[self.joint_act] = action[:n]
        for i, arm in enumerate(self.gripper_arms):
            g = self.robot.arms[arm].gripper
            assert g is not None
            opening = min(max(float(action[n + i]), 0.0), 1.0)
            if g.weld:
                assert self.weld is not None
                self.weld.command(self.data, arm, opening)
                continue
            self.data.ctrl[self.gripper_act[arm]] = g.ctrl_for(opening)

    def action_ctrl(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Actuator targets of a whole action sequence (T, n_action), computed at once.

        Returns (ctrl indices, values (T, k)): row t is what :meth:`set_action` writes for
        ``actions[t]``, bit for bit. None when a gripper is a weld grasp: that one reacts to
        contacts, so its commands must go through :meth:`set_action` step by step. Raises like
        :meth:`set_action` on a wrong shape or a NaN/inf, naming the step.
        """
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != len(self.action_names):
            raise ConfigError(
                f"actions must have shape (T, {len(self.action_names)}) = {self.action_names}, "
                f"got {actions.shape}"
            )
        bad = ~np.isfinite(actions).all(axis=1)
        if bad.any():
            t = int(np.argmax(bad))
            raise PhysicsError(f"action has NaN/inf at step {t}: {actions[t]}")
        grippers = [self.robot.arms[arm].gripper for arm in self.gripper_arms]
        if any(g is None or g.weld for g in grippers):
            return None
        n = len(self.joint_names)
        cols = [actions[:, :n]]
        for i, g in enumerate(grippers):
            opening = np.clip(actions[:, n + i], 0.0, 1.0)
            cols.append(g.ctrl_for(opening)[:, None])
        idx = np.concatenate([self.joint_act, [self.gripper_act[a] for a in self.gripper_arms]])
        return idx.astype(np.intp), np.ascontiguousarray(np.concatenate(cols, axis=1))

    def step(self, n: int | None = None) -> None:
        """Advance physics by ``n`` steps (default: one control period); raise on instability."""
        n = self.n_substeps if n is None else n
        if n > 0:
            mujoco.mj_step(self.model, self.data, nstep=n)  # same as n calls, without the loop
        if self.data.warning[_BADQACC].number > 0 or not np.isfinite(self.data.qpos).all():
            raise PhysicsError(
                f"simulation unstable at t={self.data.time:.3f}s (NaN/inf or bad qacc) in "
                f"room {self.room!r} task {getattr(self.task, 'name', None)!r}"
            )

    # ------------------------------------------------------------------ observation
    def joint_qpos(self) -> np.ndarray:
        return self.data.qpos[self.qpos_adr].copy()

    def joint_qvel(self) -> np.ndarray:
        return self.data.qvel[self.dof_adr].copy()

    def ee_pose(self, arm: str) -> np.ndarray:
        """EE site pose in world frame: pos [m] + quat w,x,y,z."""
        sid = self.ee_site[arm]
        q = np.empty(4)
        mujoco.mju_mat2Quat(q, self.data.site_xmat[sid])
        return np.concatenate([self.data.site_xpos[sid], q])

    def gripper_opening(self, arm: str) -> float:
        """Measured opening in [0, 1] (0 = closed) from the finger joint."""
        g = self.robot.arms[arm].gripper
        if g is not None and g.weld and self.weld is not None:
            return self.weld.opening(arm)
        if g is None or arm not in self.gripper_qpos_adr:
            return 0.0
        q = float(self.data.qpos[self.gripper_qpos_adr[arm]])
        return min(max(g.opening_for(q), 0.0), 1.0)  # np.clip: 10x slower

    def body_id(self, name: str) -> int:
        """Body id by name (cached; KeyError-free: raises like ``model.body`` when unknown)."""
        bid = self._body_ids.get(name)
        if bid is None:
            bid = self._body_ids[name] = int(self.model.body(name).id)
        return bid

    def body_pose(self, name: str) -> np.ndarray:
        """Body pose in world frame: pos [m] + quat w,x,y,z."""
        bid = self.body_id(name)
        return np.concatenate([self.data.xpos[bid], self.data.xquat[bid]])

    def object_names(self) -> list[str]:
        return list(self.task.objects) if self.task is not None else []

    def observe(self) -> dict[str, Any]:
        """Robot and object state, using Episode field names."""
        return {
            "qpos": self.joint_qpos(),
            "qvel": self.joint_qvel(),
            "ee": {arm: self.ee_pose(arm) for arm in self.arms},
            "gripper": {arm: self.gripper_opening(arm) for arm in self.gripper_arms},
            "objects": {o: self.body_pose(o) for o in self.object_names()},
        }

    def current_action(self) -> np.ndarray:
        """The action that would hold the current ctrl (joint targets + gripper openings)."""
        out = list(self.data.ctrl[self.joint_act])
        for arm in self.gripper_arms:
            g = self.robot.arms[arm].gripper
            assert g is not None
            if g.weld and self.weld is not None:
                out.append(self.weld.commanded[arm])
                continue
            c = self.data.ctrl[self.gripper_act[arm]]
            out.append(g.opening_for(c))
        return np.array(out)

    def set_free_pose(self, body: str, pose: np.ndarray) -> None:
        """Place a free-joint body at a world pose (pos + quat w,x,y,z) and zero its velocity."""
        b = self.model.body(body)
        jid = self.model.body_jntadr[b.id]
        if jid < 0 or int(self.model.jnt_type[jid]) != int(mujoco.mjtJoint.mjJNT_FREE):
            raise ConfigError(f"body {body!r} has no free joint; cannot place it")
        a, v = self.model.jnt_qposadr[jid], self.model.jnt_dofadr[jid]
        self.data.qpos[a : a + 7] = pose
        self.data.qvel[v : v + 6] = 0.0

    def workspace(self) -> np.ndarray:
        """World position [m] of the room's ``workspace`` site (table-top centre)."""
        return self.model.site_pos[self.model.site("workspace").id].copy()


_LEAF_DEFAULT = re.compile(r'[ \t]*<default class="([^"]+)">(?:(?!<default).)*?</default>\n?', re.S)


def _dedupe_defaults(xml: str) -> str:
    """Drop repeated identical ``<default class>`` blocks (one per attached props body).

    Attaching each top-level body of a props file copies its default classes once per body; the
    compiled model is unaffected, but MJCF text with a class defined twice does not load.
    """
    seen: set[str] = set()

    def keep_first(m: re.Match) -> str:
        block = m.group(0).strip()
        if block in seen:
            return ""
        seen.add(block)
        return m.group(0)

    return _LEAF_DEFAULT.sub(keep_first, xml)


def compose_scene(
    robot: str | RobotSpec | dict,
    task: Task | None,
    room: str | None = None,
    control_hz: float = 20.0,
    spec_edits: Sequence[Callable[[mujoco.MjSpec], Any]] = (),
) -> Scene:
    """Compose and compile a scene for a robot and a task *object* (names are resolved one
    layer up, by :func:`sim.tasks.build_scene`). The task's room is used unless ``room`` is given.

    ``spec_edits`` are applied to the composed spec before compiling, after the task's own
    ``edit_spec`` (e.g. domain randomization's parked distractor bodies).
    """
    if isinstance(task, str):
        raise ConfigError(
            f"compose_scene takes a task object, got the name {task!r}; use "
            "sim.tasks.build_scene(robot, task_name) to build by name"
        )
    robot_spec = load_robot(robot)
    task_obj = task
    room_name = room or (task_obj.room if task_obj is not None else "home")
    spec = build_spec(robot_spec, room_name, task_obj.props if task_obj is not None else None)
    if task_obj is not None:
        task_obj.edit_spec(spec)
    for edit in spec_edits:
        edit(spec)
    add_grasp_welds(spec, robot_spec, graspable_objects(task_obj))  # no-op without weld hands
    robot_root = mujoco.MjSpec.from_file(str(robot_spec.mjcf)).worldbody.first_body().name
    model = compile_quiet(spec)
    check_robot_model(robot_spec, model)
    data = mujoco.MjData(model)

    joint_names = [j for arm in robot_spec.arms.values() for j in arm.joints]
    jids = [mujoco.mj_name2id(model, _J, j) for j in joint_names]
    act_of_joint = {
        int(model.actuator_trnid[a, 0]): a
        for a in range(model.nu)
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
    }
    missing = [joint_names[i] for i, j in enumerate(jids) if j not in act_of_joint]
    if missing:
        raise ConfigError(f"{robot_spec.source}: joints without a position actuator: {missing}")
    gripper_arms = [a for a, s in robot_spec.arms.items() if s.gripper]
    finger_arms = [a for a in gripper_arms if a not in weld_arms(robot_spec)]
    home = robot_home(robot_spec)
    home_qpos = model.qpos0.copy()
    for name, value in home.items():
        j = mujoco.mj_name2id(model, _J, name)
        if j >= 0:
            home_qpos[model.jnt_qposadr[j]] = value
    joint_act = np.array([act_of_joint[j] for j in jids])
    home_ctrl = np.zeros(model.nu)
    for j, a in act_of_joint.items():  # every joint actuator holds its home position
        home_ctrl[a] = home_qpos[model.jnt_qposadr[j]]
    control_dt = 1.0 / control_hz
    n_sub = int(round(control_dt / model.opt.timestep))
    if n_sub < 1 or abs(n_sub * model.opt.timestep - control_dt) > 1e-9:
        raise ConfigError(
            f"control_hz={control_hz} is not an integer divisor of physics rate "
            f"{1 / model.opt.timestep:.0f} Hz"
        )
    scene = Scene(
        model=model,
        data=data,
        robot=robot_spec,
        room=room_name,
        task=task_obj,
        joint_names=joint_names,
        action_names=joint_names + [f"{a}_gripper" for a in gripper_arms],
        qpos_adr=np.array([model.jnt_qposadr[j] for j in jids]),
        dof_adr=np.array([model.jnt_dofadr[j] for j in jids]),
        joint_act=joint_act,
        gripper_arms=gripper_arms,
        gripper_act={
            a: model.actuator(robot_spec.arms[a].gripper.actuator).id for a in finger_arms
        },
        gripper_qpos_adr={
            a: int(model.joint(robot_spec.arms[a].gripper.joint).qposadr[0]) for a in finger_arms
        },
        ee_site={
            a: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, s.ee_site)
            for a, s in robot_spec.arms.items()
        },
        home_qpos=home_qpos,
        home_ctrl=home_ctrl,
        control_dt=control_dt,
        n_substeps=n_sub,
        robot_root=model.body(robot_root).id,
        hand_bodies={
            a: subtree_bodies(model, int(model.site_bodyid[model.site(s.ee_site).id]))
            for a, s in robot_spec.arms.items()
        },
        weld=(
            WeldGrasp.build(model, robot_spec, graspable_objects(task_obj))
            if weld_arms(robot_spec)
            else None
        ),
        spec=spec,
    )
    if task_obj is not None:
        task_obj.bind(scene)
    return scene
