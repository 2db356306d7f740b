"""Robot descriptions: one YAML in conf/robot/ plus an MJCF folder, no Python per robot.

The YAML names the MJCF (a path, ``menagerie:<name>``, or a list of candidates: the first that
exists wins) and says how to adapt it for tabletop work at build time, through MjSpec: weld the
base to the room's mount (``base_body``, ``mount_offset``), lock joints at home
(``fixed_joints``), swap torque motors for position servos (``position_actuators``), add gravity
compensation (``gravcomp``), EE sites (``arms.<arm>.ee_body`` + ``ee_offset``), cameras
(``add_cameras``) and collision pads (``add_geoms``). :func:`robot_mjspec` applies all of it.

It also declares what augmentation needs to move grasps between robots: the EE site's tool-frame
convention (``tool_frame``: approach and closing axes in the site frame, robot-wide or per arm;
see :class:`ToolFrame`) and how fast each gripper moves (``gripper.stroke_time``).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml

from sim.errors import ConfigError, UnknownNameError
from sim.paths import conf_dir, scenes_dir

#: demoforge's canonical grasp frame, in its own axes: the hand approaches the object along -z
#: (z points back out of the hand) and the fingers close along y, so a top-down grasp is
#: ``yaw_quat(yaw)``. Every robot's EE site is mapped onto this frame through its ToolFrame.
CANONICAL_APPROACH = (0.0, 0.0, -1.0)
CANONICAL_CLOSING = (0.0, 1.0, 0.0)


@dataclass(frozen=True)
class ToolFrame:
    """Tool-frame convention of an EE site, in the site's own axes.

    Attributes:
        approach: unit axis pointing from the hand toward the grasped object (out of the
            fingertips / palm normal), in the EE site frame.
        closing: unit axis along which the fingers close (perpendicular to ``approach``), in the
            EE site frame. A sign flip describes the same gripper (jaws are symmetric).

    demoforge's canonical grasp frame is ``approach = -z``, ``closing = +y``. A Panda-style grip
    site (z along the fingers, fingers sliding along y) is ``approach = +z``, ``closing = +y``.
    """

    approach: tuple[float, float, float] = CANONICAL_APPROACH
    closing: tuple[float, float, float] = CANONICAL_CLOSING

    def __post_init__(self) -> None:
        for name in ("approach", "closing"):
            v = np.asarray(getattr(self, name), float)
            if v.shape != (3,) or not np.all(np.isfinite(v)) or np.linalg.norm(v) < 1e-9:
                raise ConfigError(
                    f"tool_frame.{name} must be a non-zero 3-vector in the EE site frame, "
                    f"got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, tuple(float(x) for x in v / np.linalg.norm(v)))
        cos = abs(float(np.dot(self.approach, self.closing)))
        if cos > 1e-3:
            raise ConfigError(
                f"tool_frame.approach {self.approach} and tool_frame.closing {self.closing} must "
                f"be perpendicular (|cos| = {cos:.3f})"
            )

    def site_from_canonical(self) -> np.ndarray:
        """Rotation (3, 3) whose columns are the canonical x, y, z axes in the site frame.

        ``R_world_canonical = R_world_site @ site_from_canonical()``.
        """
        z = -np.asarray(self.approach)
        y = np.asarray(self.closing)
        return np.column_stack([np.cross(y, z), y, z])

    @property
    def is_canonical(self) -> bool:
        return bool(np.allclose(self.site_from_canonical(), np.eye(3), atol=1e-9))


@dataclass(frozen=True)
class GripperSpec:
    """A gripper. Opening 0..1 (0 = closed).

    Finger grippers: a position actuator whose ctrl `closed`..`open` maps to opening 0..1.
    Weld grippers (``weld: true``, hands without fingers): commanding an opening below
    ``threshold`` welds the hand ``body`` (default: the EE site's body) to a task object its
    collision geoms touch or come within ``distance`` [m] of; above ``threshold`` releases it.
    """

    actuator: str = ""
    joint: str = ""
    closed: float = 0.0
    open: float = 0.04
    weld: bool = False  # hands without fingers: grasp by a weld equality instead of contact
    body: str | None = None  # weld: hand body (default: the EE site's body)
    distance: float = 0.005  # weld: activation distance hand geoms <-> object [m]
    threshold: float = 0.5  # weld: commanded opening below which the weld engages
    solref: tuple[float, float] = (0.01, 1.0)  # weld: constraint stiffness (timeconst [s], damping)
    stroke_time: float = 0.5  # time a full open <-> closed stroke takes on the real gripper [s]

    def __post_init__(self) -> None:
        if not (np.isfinite(self.stroke_time) and self.stroke_time > 0):
            raise ConfigError(f"key 'stroke_time' must be > 0 [s], got {self.stroke_time!r}")

    @property
    def speed(self) -> float:
        """Fastest opening change the gripper can make [opening units / s] (1 = full stroke)."""
        return 1.0 / self.stroke_time

    def ctrl_for(self, opening):
        """Finger actuator target for an opening in [0, 1] (a float or an array of them)."""
        return self.closed + opening * (self.open - self.closed)

    def opening_for(self, value):
        """Opening (not clipped) of a finger actuator or joint value (float or array)."""
        return (value - self.closed) / (self.open - self.closed)


@dataclass(frozen=True)
class ArmSpec:
    """One arm: actuated joints in action order, EE site, gripper.

    ``ee_body`` + ``ee_offset`` (+ ``ee_quat``, w,x,y,z) add the site ``ee_site`` to that body at
    build time, for MJCFs without one. ``tool_frame`` says how the EE site's axes relate to the
    canonical grasp frame (-z out of the hand, fingers closing along y, so a top-down grasp is
    orientation ``yaw_quat(yaw)``); sites that follow it keep the default.
    """

    joints: tuple[str, ...]
    ee_site: str
    gripper: GripperSpec | None = None
    shoulder_body: str | None = None
    ee_body: str | None = None
    ee_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ee_quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    tool_frame: ToolFrame = field(default_factory=ToolFrame)


@dataclass(frozen=True)
class ActuatorGroup:
    """Position servos replacing the actuators of ``joints`` (names or fnmatch patterns).

    ``forcerange`` [N m] defaults to the replaced motor's ctrlrange (its torque limit).
    """

    joints: tuple[str, ...]
    kp: float
    kv: float
    forcerange: tuple[float, float] | None = None


@dataclass(frozen=True)
class CameraAdd:
    """A camera added to ``body`` at build time: pos [m] in the body frame, xyaxes, fovy [deg]."""

    body: str
    pos: tuple[float, float, float]
    xyaxes: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    fovy: float = 60.0


_GEOM_KEYS = {
    "body",
    "name",
    "type",
    "size",
    "pos",
    "quat",
    "rgba",
    "friction",
    "condim",
    "solref",
    "solimp",
    "priority",
    "group",
    "contype",
    "conaffinity",
    "mass",
}


@dataclass(frozen=True)
class RobotSpec:
    """Everything demoforge needs to know about a robot.

    Attributes:
        name: registry name.
        mjcf: resolved path of the robot MJCF.
        arms: arm name ("left", "right", ...) -> ArmSpec.
        cameras: dataset camera name -> MJCF camera name.
        home_key: keyframe name giving the home joint configuration.
        home: joint name -> value overriding/adding to the keyframe.
        reach: max shoulder-to-EE distance [m] used by reachability checks.
        fixed_joints: joints (names or fnmatch patterns) locked at home: deleted at build time,
            so their bodies become rigid (e.g. a humanoid's legs and waist for tabletop work).
        base_body: body that is welded to the mount (free base removed).
        mount_offset: added to the root body's MJCF position, in the mount frame [m].
        position_actuators: group name -> position servos replacing those joints' actuators.
        gravcomp: bodies whose whole subtree gets gravity compensation.
        add_cameras: MJCF camera name -> camera added at build time.
        add_geoms: geoms added at build time (attribute dicts with a ``body`` key), e.g. palm pads.
        exclude_contacts: body pairs (names or fnmatch patterns) that never collide, e.g. arm
            links against a torso whose convex hull engulfs the shoulders.
        tool_frame: robot-wide EE tool-frame convention (YAML key ``tool_frame``); an arm's own
            ``arms.<arm>.tool_frame`` overrides it. Per arm it lives in ``ArmSpec.tool_frame``.
        source: the YAML the spec came from.
    """

    name: str
    mjcf: Path
    arms: dict[str, ArmSpec]
    cameras: dict[str, str] = field(default_factory=dict)
    home_key: str | None = "home"
    home: dict[str, float] = field(default_factory=dict)
    reach: float = 0.7
    fixed_joints: tuple[str, ...] = ()
    base_body: str | None = None
    mount_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    position_actuators: dict[str, ActuatorGroup] = field(default_factory=dict)
    gravcomp: tuple[str, ...] = ()
    add_cameras: dict[str, CameraAdd] = field(default_factory=dict)
    add_geoms: tuple[dict[str, Any], ...] = ()
    exclude_contacts: tuple[tuple[str, str], ...] = ()
    tool_frame: ToolFrame = field(default_factory=ToolFrame)
    source: str = ""

    def tool_frames(self) -> dict[str, ToolFrame]:
        """Arm name -> tool-frame convention of its EE site."""
        return {arm: a.tool_frame for arm, a in self.arms.items()}


def known_robots() -> list[str]:
    """Names of the robot YAMLs shipped in conf/robot/."""
    return sorted(p.stem for p in (conf_dir() / "robot").glob("*.yaml"))


def load_robot(robot: str | Path | dict[str, Any] | RobotSpec) -> RobotSpec:
    """Load a RobotSpec from a registry name, a YAML path or an already-parsed dict."""
    if isinstance(robot, RobotSpec):
        return robot
    if isinstance(robot, dict):
        return robot_from_dict(robot, source="<config>")
    path = Path(robot)
    if path.suffix not in (".yaml", ".yml"):
        path = conf_dir() / "robot" / f"{robot}.yaml"
        if not path.exists():
            raise UnknownNameError("robot", str(robot), known_robots())
    elif not path.exists():
        raise ConfigError(f"robot YAML {path} does not exist")
    with open(path) as f:
        raw = yaml.safe_load(f)
    return robot_from_dict(raw, source=str(path))


def _resolve_mjcf(ref: str | list[str], source: str) -> Path:
    """Resolve key ``mjcf``: one reference or a list of candidates, the first that exists wins.

    A reference is ``menagerie:<name>[/<entry>]`` or a path (``~`` and ``$VAR`` expanded);
    relative paths are tried against scenes/, the YAML's folder and the checkout root.
    """
    refs = [ref] if isinstance(ref, (str, Path)) else list(ref)
    if not refs:
        raise ConfigError(f"{source}: key 'mjcf' is an empty list")
    tried: list[str] = []
    for r in map(str, refs):
        if r.startswith("menagerie:"):
            try:
                return _menagerie_path(r.split(":", 1)[1], source)
            except ConfigError as e:
                tried.append(f"{r} ({e.args[0].split(': ', 1)[-1]})")
                continue
        expanded = os.path.expandvars(os.path.expanduser(r))
        if "$" in expanded:
            tried.append(f"{r} (environment variable unset)")
            continue
        p = Path(expanded)
        cands = [p] if p.is_absolute() else [scenes_dir() / p, scenes_dir().parent / p]
        if not p.is_absolute() and source.startswith("/"):
            cands.insert(1, Path(source).parent / p)
        hit = next((c for c in cands if c.is_file()), None)
        if hit is not None:
            return hit.resolve()
        tried.append(" or ".join(str(c) for c in cands) + " (no such file)")
    if len(refs) == 1 and not str(refs[0]).startswith("menagerie:"):
        raise ConfigError(
            f"{source}: key 'mjcf' points to {refs[0]}, which does not exist (tried {tried[0]})"
        )
    raise ConfigError(f"{source}: key 'mjcf': no candidate is available; tried " + "; ".join(tried))


def _menagerie_path(name: str, source: str) -> Path:
    """Robot-only XML of a MuJoCo Menagerie model ``<robot>[/<entry>]`` (e.g. ``unitree_g1``).

    Uses the ``mujoco-menagerie`` package (``mujoco_menagerie.get(robot).xml(entry)``; the
    default entry is the robot without floor/lights; it downloads the model on first use unless
    ``MENAGERIE_ROOT`` points to a local checkout). Without the package, ``MENAGERIE_ROOT`` alone
    works: ``<root>/<robot>/<entry>.xml``, else the first XML there that is not a scene or MJX.
    """
    folder, _, entry = name.partition("/")
    entry = entry.removesuffix(".xml")
    root = os.environ.get("MENAGERIE_ROOT")
    try:  # optional dependency
        import mujoco_menagerie as mm  # type: ignore[import-not-found]
    except ImportError:
        mm = None
    if mm is not None:
        try:
            robot = mm.get(folder)
            return Path(robot.xml(entry or robot.default_model, mm.Cache(root=root)))
        except mm.MenagerieError as e:
            raise ConfigError(f"{source}: menagerie model {name!r}: {e}") from None
    if root:
        d = Path(root) / folder
        xmls = (
            [d / f"{entry}.xml"]
            if entry
            else [
                p
                for p in sorted(d.glob("*.xml"))
                if not p.name.startswith("scene") and "mjx" not in p.name
            ]
        )
        for p in xmls:
            if p.is_file():
                return p
        raise ConfigError(
            f"{source}: menagerie model {name!r} not found under MENAGERIE_ROOT={root}"
        )
    raise ConfigError(
        f"{source}: menagerie model {name!r} unavailable: `pip install mujoco-menagerie` or set "
        "MENAGERIE_ROOT to a local mujoco_menagerie checkout"
    )


_ROBOT_KEYS = {f.name for f in fields(RobotSpec)} - {"source"}
_ARM_KEYS = {f.name for f in fields(ArmSpec)}


def _unknown(raw: dict[str, Any], allowed: set[str], where: str, source: str) -> None:
    bad = sorted(set(raw) - allowed)
    if bad:
        raise ConfigError(f"{source}: unknown key(s) {bad} in {where}; expected {sorted(allowed)}")


def _make(cls: type, raw: dict[str, Any], where: str, source: str) -> Any:
    """Build a frozen dataclass from a YAML dict, naming the offending key on error."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {raw!r}")
    _unknown(raw, {f.name for f in fields(cls)}, where, source)
    vals = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return cls(**vals)
    except (TypeError, ConfigError) as e:
        raise ConfigError(f"{source}: {where}: {e}") from None


def robot_from_dict(raw: dict[str, Any], source: str) -> RobotSpec:
    """Parse the YAML dict of a robot, naming the key on error."""
    for key in ("name", "mjcf", "arms"):
        if key not in raw:
            raise ConfigError(f"{source}: missing key {key!r} in robot description")
    _unknown(raw, _ROBOT_KEYS, "the robot description", source)
    robot_tool = _tool_frame(raw.get("tool_frame"), "tool_frame", source)
    arms = {}
    for arm, a in raw["arms"].items():
        for key in ("joints", "ee_site"):
            if key not in a:
                raise ConfigError(f"{source}: arms.{arm} is missing key {key!r}")
        _unknown(a, _ARM_KEYS, f"arms.{arm}", source)
        g = a.get("gripper")
        if g and not g.get("weld") and not (g.get("actuator") and g.get("joint")):
            raise ConfigError(
                f"{source}: arms.{arm}.gripper needs keys 'actuator' and 'joint' "
                "(or 'weld: true' for a hand without fingers)"
            )
        arms[arm] = ArmSpec(
            joints=tuple(a["joints"]),
            ee_site=a["ee_site"],
            gripper=_make(GripperSpec, g, f"arms.{arm}.gripper", source) if g else None,
            shoulder_body=a.get("shoulder_body"),
            ee_body=a.get("ee_body"),
            ee_offset=tuple(float(v) for v in a.get("ee_offset", (0.0, 0.0, 0.0))),
            ee_quat=tuple(float(v) for v in a.get("ee_quat", (1.0, 0.0, 0.0, 0.0))),
            tool_frame=(
                _tool_frame(a["tool_frame"], f"arms.{arm}.tool_frame", source)
                if a.get("tool_frame") is not None
                else robot_tool
            ),
        )
    geoms = tuple(dict(g) for g in raw.get("add_geoms") or ())
    for i, g in enumerate(geoms):
        _unknown(g, _GEOM_KEYS, f"add_geoms[{i}]", source)
        if "body" not in g:
            raise ConfigError(f"{source}: add_geoms[{i}] is missing key 'body'")
    spec = RobotSpec(
        name=raw["name"],
        mjcf=_resolve_mjcf(raw["mjcf"], source),
        arms=arms,
        cameras=dict(raw.get("cameras") or {}),
        home_key=raw.get("home_key", "home"),
        home={k: float(v) for k, v in (raw.get("home") or {}).items()},
        reach=float(raw.get("reach", 0.7)),
        fixed_joints=tuple(raw.get("fixed_joints") or ()),
        base_body=raw.get("base_body"),
        mount_offset=tuple(float(v) for v in raw.get("mount_offset", (0.0, 0.0, 0.0))),
        position_actuators={
            k: _make(ActuatorGroup, v, f"position_actuators.{k}", source)
            for k, v in (raw.get("position_actuators") or {}).items()
        },
        gravcomp=tuple(raw.get("gravcomp") or ()),
        add_cameras={
            k: _make(CameraAdd, v, f"add_cameras.{k}", source)
            for k, v in (raw.get("add_cameras") or {}).items()
        },
        add_geoms=geoms,
        exclude_contacts=_pairs(raw.get("exclude_contacts") or (), source),
        tool_frame=robot_tool,
        source=source,
    )
    return spec


def _tool_frame(raw: Any, where: str, source: str) -> ToolFrame:
    """Parse ``{approach: [x, y, z], closing: [x, y, z]}`` (missing keys: canonical)."""
    if raw is None:
        return ToolFrame()
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: {where} must be a mapping with keys 'approach' and "
            f"'closing' (axes in the EE site frame), got {raw!r}"
        )
    _unknown(raw, {"approach", "closing"}, where, source)
    try:
        return ToolFrame(**{k: tuple(float(x) for x in v) for k, v in raw.items()})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {where}: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"{source}: {where}: {e}") from None


def _pairs(raw: Any, source: str) -> tuple[tuple[str, str], ...]:
    out = []
    for i, pair in enumerate(raw):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(f"{source}: exclude_contacts[{i}] must be a [body, body] pair")
        out.append((str(pair[0]), str(pair[1])))
    return tuple(out)


# ---------------------------------------------------------------------------- build-time edits
def _match_joints(
    spec: mujoco.MjSpec, patterns: tuple[str, ...], key: str, robot: RobotSpec
) -> list[mujoco.MjsJoint]:
    """Joints of ``spec`` matching names/fnmatch patterns (MJCF order); a dud pattern raises."""
    joints = [j for j in spec.joints if j.type != mujoco.mjtJoint.mjJNT_FREE]
    out: list[mujoco.MjsJoint] = []
    for pat in patterns:
        hit = [j for j in joints if fnmatch.fnmatchcase(j.name, pat)]
        if not hit:
            raise ConfigError(f"{robot.source}: {key}: no joint of {robot.mjcf} matches {pat!r}")
        out += [j for j in hit if all(j.name != o.name for o in out)]
    return out


def _body(spec: mujoco.MjSpec, name: str, key: str, robot: RobotSpec) -> mujoco.MjsBody:
    body = spec.body(name)
    if body is None:
        raise ConfigError(f"{robot.source}: {key}: body {name!r} not in {robot.mjcf}")
    return body


def _lock_joint(joint: mujoco.MjsJoint, value: float, robot: RobotSpec) -> None:
    """Fold a hinge/slide joint at ``value`` into its body's pose (before deleting the joint)."""
    body = joint.parent
    if value == 0.0:
        return
    if body.alt.type != mujoco.mjtOrientation.mjORIENTATION_QUAT or len(body.joints) > 1:
        raise ConfigError(
            f"{robot.source}: fixed_joints: cannot lock {joint.name!r} at {value}: its body "
            "needs a quat orientation and a single joint"
        )
    axis = np.asarray(joint.axis, float) / np.linalg.norm(joint.axis)
    quat, pos = np.asarray(body.quat, float), np.asarray(body.pos, float)
    quat = quat / np.linalg.norm(quat)
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, quat)
    rot = rot.reshape(3, 3)
    if joint.type == mujoco.mjtJoint.mjJNT_SLIDE:
        body.pos = pos + rot @ (axis * value)
        return
    if joint.type != mujoco.mjtJoint.mjJNT_HINGE:
        raise ConfigError(f"{robot.source}: fixed_joints: {joint.name!r} is not a hinge/slide")
    q = np.empty(4)
    mujoco.mju_axisAngle2Quat(q, axis, value)
    jrot = np.empty(9)
    mujoco.mju_quat2Mat(jrot, q)
    anchor = np.asarray(joint.pos, float)
    body.pos = pos + rot @ (anchor - jrot.reshape(3, 3) @ anchor)
    out = np.empty(4)
    mujoco.mju_mulQuat(out, quat, q)
    body.quat = out


def robot_mjspec(robot: RobotSpec) -> mujoco.MjSpec:
    """The robot MJCF as an MjSpec with the YAML's build-time edits, ready to attach at a mount.

    Order: weld the base (free joint removed), drop keyframes, lock ``fixed_joints`` at home
    (joints, their actuators and sensors deleted), swap ``position_actuators``, ``gravcomp``,
    EE sites, cameras and geoms, then shift the root body by ``mount_offset``.
    """
    spec = mujoco.MjSpec.from_file(str(robot.mjcf))
    if robot.base_body:
        base = _body(spec, robot.base_body, "base_body", robot)
        for j in list(base.joints):  # weld a floating base to the mount
            if j.type == mujoco.mjtJoint.mjJNT_FREE:
                spec.delete(j)
    home = dict(robot.home)
    if robot.fixed_joints and robot.home_key and spec.key(robot.home_key) is not None:
        home = robot_home(robot)  # keyframe values by joint name
    for key in list(spec.keys):
        spec.delete(key)  # keyframe sizes change once props are added; home set by name
    fixed = _match_joints(spec, robot.fixed_joints, "fixed_joints", robot)
    names = {j.name for j in fixed}
    for act in list(spec.actuators):
        if act.trntype == mujoco.mjtTrn.mjTRN_JOINT and act.target in names:
            spec.delete(act)
    for sensor in list(spec.sensors):
        if sensor.objtype == mujoco.mjtObj.mjOBJ_JOINT and sensor.objname in names:
            spec.delete(sensor)
    for j in fixed:
        _lock_joint(j, float(home.get(j.name, 0.0)), robot)
        spec.delete(j)
    for group, g in robot.position_actuators.items():
        for j in _match_joints(spec, g.joints, f"position_actuators.{group}.joints", robot):
            _set_position_servo(spec, j, g)
    for name in robot.gravcomp:
        body = _body(spec, name, "gravcomp", robot)
        for b in [body, *body.find_all(mujoco.mjtObj.mjOBJ_BODY)]:
            b.gravcomp = 1.0
    for arm, a in robot.arms.items():
        if a.ee_body:
            body = _body(spec, a.ee_body, f"arms.{arm}.ee_body", robot)
            body.add_site(
                name=a.ee_site,
                pos=list(a.ee_offset),
                quat=list(a.ee_quat),
                size=[0.008, 0.0, 0.0],
                rgba=[1.0, 0.3, 0.3, 0.6],
                group=4,
            )
    for cam, c in robot.add_cameras.items():
        body = _body(spec, c.body, f"add_cameras.{cam}.body", robot)
        camera = body.add_camera(name=cam, pos=list(c.pos), fovy=float(c.fovy))
        camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
        camera.alt.xyaxes = list(c.xyaxes)
    for i, g in enumerate(robot.add_geoms):
        body = _body(spec, g["body"], f"add_geoms[{i}].body", robot)
        attrs = {k: v for k, v in g.items() if k not in ("body", "type")}
        try:
            gtype = getattr(mujoco.mjtGeom, f"mjGEOM_{str(g.get('type', 'box')).upper()}")
        except AttributeError:
            raise ConfigError(
                f"{robot.source}: add_geoms[{i}].type {g['type']!r} unknown"
            ) from None
        geom = body.add_geom(type=gtype)
        for k, v in attrs.items():
            if k == "size":
                v = [*v, *[0.0] * (3 - len(v))]
            setattr(geom, k, v)
    bodies = [b.name for b in spec.bodies]
    for i, pair in enumerate(robot.exclude_contacts):
        b1, b2 = ([b for b in bodies if fnmatch.fnmatchcase(b, p)] for p in pair)
        if not b1 or not b2:
            raise ConfigError(
                f"{robot.source}: exclude_contacts[{i}]: no body of {robot.mjcf} "
                f"matches {pair[0] if not b1 else pair[1]!r}"
            )
        for n1 in b1:
            for n2 in b2:
                if n1 != n2:
                    spec.add_exclude(bodyname1=n1, bodyname2=n2)
    if any(robot.mount_offset):
        root = spec.worldbody.first_body()
        root.pos = np.asarray(root.pos, float) + np.asarray(robot.mount_offset, float)
    return spec


_SCALAR_JOINTS = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def robot_home(robot: RobotSpec) -> dict[str, float]:
    """Home joint values by name: the robot MJCF keyframe `home_key`, then YAML overrides."""
    m = mujoco.MjModel.from_xml_path(str(robot.mjcf))
    out: dict[str, float] = {}
    if robot.home_key:
        k = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_KEY, robot.home_key)
        if k < 0:
            raise ConfigError(f"{robot.source}: home_key {robot.home_key!r} not in {robot.mjcf}")
        for j in range(m.njnt):
            if int(m.jnt_type[j]) in _SCALAR_JOINTS:
                out[m.joint(j).name] = float(m.key_qpos[k, m.jnt_qposadr[j]])
    out.update(robot.home)
    return out


def _set_position_servo(spec: mujoco.MjSpec, joint: mujoco.MjsJoint, g: ActuatorGroup) -> None:
    """Turn the actuator of ``joint`` (or a new one) into a PD position servo."""
    act = next(
        (
            a
            for a in spec.actuators
            if a.trntype == mujoco.mjtTrn.mjTRN_JOINT and a.target == joint.name
        ),
        None,
    )
    if act is None:
        act = spec.add_actuator(
            name=joint.name, target=joint.name, trntype=mujoco.mjtTrn.mjTRN_JOINT
        )
    torque = g.forcerange
    is_motor = (
        act.gaintype == mujoco.mjtGain.mjGAIN_FIXED and act.biastype == mujoco.mjtBias.mjBIAS_NONE
    )
    if torque is None and is_motor and act.ctrlrange[0] < act.ctrlrange[1]:
        torque = tuple(act.ctrlrange)  # a torque motor's ctrl range is its torque limit
    act.set_to_position(kp=float(g.kp), kv=float(g.kv))
    act.ctrlrange = list(joint.range)
    act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    if torque is not None:
        act.forcerange = list(torque)
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


def check_robot_model(spec: RobotSpec, model: mujoco.MjModel) -> None:
    """Raise ConfigError naming each joint/site/body/actuator/camera the YAML names but the MJCF
    lacks."""
    missing = []
    kinds = {
        "joint": mujoco.mjtObj.mjOBJ_JOINT,
        "site": mujoco.mjtObj.mjOBJ_SITE,
        "actuator": mujoco.mjtObj.mjOBJ_ACTUATOR,
        "camera": mujoco.mjtObj.mjOBJ_CAMERA,
        "body": mujoco.mjtObj.mjOBJ_BODY,
    }

    def need(kind: str, name: str | None, key: str) -> None:
        if name and mujoco.mj_name2id(model, kinds[kind], name) < 0:
            missing.append(f"{key}: {kind} {name!r}")

    for arm, a in spec.arms.items():
        for j in a.joints:
            need("joint", j, f"arms.{arm}.joints")
        need("site", a.ee_site, f"arms.{arm}.ee_site")
        need("body", a.shoulder_body, f"arms.{arm}.shoulder_body")
        if a.gripper:
            if a.gripper.weld:
                need("body", a.gripper.body, f"arms.{arm}.gripper.body")
            else:
                need("joint", a.gripper.joint, f"arms.{arm}.gripper.joint")
                need("actuator", a.gripper.actuator, f"arms.{arm}.gripper.actuator")
    for cam, mj in spec.cameras.items():
        need("camera", mj, f"cameras.{cam}")
    if missing:
        raise ConfigError(
            f"{spec.source}: robot {spec.name!r} names things its MJCF {spec.mjcf} lacks: "
            + "; ".join(missing)
        )
