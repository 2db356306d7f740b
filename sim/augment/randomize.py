"""Domain randomization: physics, visual, camera and distractor values written into a model.

Nothing is recompiled between episodes. A :class:`Randomizer` snapshots the nominal value of every
``model`` array element it may write when it is made; :meth:`Randomizer.apply` restores those,
draws new values from the injected rng only, writes them, runs ``mj_forward`` and returns exactly
what it drew (JSON-able, for the episode's provenance); :meth:`Randomizer.restore` writes the
nominal values back (bit-identical).

What each part acts on (derived from the scene, see :func:`targets_from_scene`):

- *task objects*: ``scene.task.objects`` (bodies).
- *props*: every body (and world geom) of the task's props MJCF, plus the task objects.
- *table*: the room body carrying the collidable geom right under the room's ``workspace`` site
  (``table`` in home, ``overbed_table`` in elder_care, ``bench`` in assembly_line); its
  ``support`` geom is the table top.
- *walls*: room geoms matching ``visual.walls`` (fnmatch patterns, default the ``wall_back``,
  ``wall_left``, ``wall_right``, ``wall_front`` geoms of the shipped rooms).
- *robot*: the subtree of the robot's root body; never recoloured unless ``visual.robot``.

Parts and their ``model`` arrays:

- physics: sliding friction of the task objects' geoms and the table top (``geom_friction[:, 0]``,
  one scale per body); mass and inertia of the task objects (``body_mass``, ``body_inertia``, one
  scale per body, i.e. density); damping of the robot's arm joints (``dof_damping``, one scale per
  joint); gains of the robot's position actuators (``actuator_gainprm[:, 0]`` and
  ``actuator_biasprm[:, 1]`` scaled together, so they stay ``kp`` and ``-kp``). Derived constants
  (``body_subtreemass``, ``dof_invweight0``) are left at their compiled values.
- visual: colours as ``geom_rgba`` (a non-default geom rgba overrides its material's colour, so
  shared materials are never touched), one rgb offset per (body, material) so a multi-geom object
  stays one colour; light position, direction and diffuse intensity (``light_pos``, ``light_dir``,
  ``light_diffuse``) and the headlight intensity (``vis.headlight.ambient``/``diffuse``).
- camera: pose jitter of the robot cameras in their body frame (``cam_pos``, ``cam_quat``) and
  optionally ``cam_fovy``.
- distractors: ``max_count`` small free bodies ``distractor_<i>`` added at build time by
  :func:`edit_spec`, compiled parked under the floor (no contacts, gravity compensated, so they
  stay put); :meth:`Randomizer.apply` places a drawn number of them on the table (``data.qpos``)
  and turns their contacts and gravity on (``geom_contype``/``geom_conaffinity`` and the bodies'
  ``body_contype``/``body_conaffinity`` that the broadphase filters on, ``body_gravcomp``) with a
  random colour.

Each part draws from its own child generator (seeded from the rng passed to ``apply``), so turning
one part on or off never shifts the others' values.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from sim.errors import ConfigError
from sim.transforms import quat_mul

if TYPE_CHECKING:
    from sim.model.scene import Scene
    from sim.tasks.base import Task

Range = tuple[float, float]

DISTRACTOR_PREFIX = "distractor_"
#: geom type of distractor i cycles through these (half-size ``size`` in every direction)
DISTRACTOR_SHAPES = ("box", "cylinder", "sphere", "capsule")
_DEFAULT_RGBA = np.array([0.5, 0.5, 0.5, 1.0], dtype=np.float32)  # geom rgba that defers to mat
PARK_Z = -0.5  # distractors wait this far below the floor [m]
_SCALAR_JOINTS = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


# ---------------------------------------------------------------------------------- config
def _as_range(key: str, value: Any, *, scale: bool = False) -> Range:
    """Validate one (lo, hi) range; ``scale`` ranges must also be >= 0."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{key}: expected a range [lo, hi] of two numbers, got {value!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"{key}: range must be finite, got ({lo}, {hi})")
    if lo > hi:
        raise ConfigError(f"{key}: range lo > hi: ({lo}, {hi}); expected lo <= hi")
    if scale and lo < 0:
        raise ConfigError(f"{key}: a scale factor range must be >= 0, got ({lo}, {hi})")
    return (lo, hi)


def _check(obj: Any, key: str, scales: Sequence[str], offsets: Sequence[str]) -> None:
    for name in scales:
        object.__setattr__(obj, name, _as_range(f"{key}.{name}", getattr(obj, name), scale=True))
    for name in offsets:
        object.__setattr__(obj, name, _as_range(f"{key}.{name}", getattr(obj, name)))


@dataclass(frozen=True)
class PhysicsConfig:
    """Physics randomization; every range is (lo, hi) of a scale factor (1 = nominal).

    Attributes:
        friction: sliding friction of the task objects and the table top.
        mass: mass and inertia of each task object.
        damping: damping of each robot arm joint.
        actuator_gain: kp of each robot position actuator.
    """

    enabled: bool = False
    friction: Range = (0.8, 1.2)
    mass: Range = (0.8, 1.2)
    damping: Range = (0.8, 1.2)
    actuator_gain: Range = (0.9, 1.1)

    def __post_init__(self) -> None:
        _check(self, "randomize.physics", ("friction", "mass", "damping", "actuator_gain"), ())


@dataclass(frozen=True)
class VisualConfig:
    """Visual randomization.

    Attributes:
        props_rgb, table_rgb, walls_rgb, robot_rgb: offset added to each rgb channel (in [0, 1]
            units, result clipped to [0, 1]); one draw per (body, material) for props, table and
            robot, per geom for walls.
        robot: recolour the robot too (off by default).
        walls: fnmatch patterns of the room's wall geom names.
        light_pos: offset per axis of every light's position, in its body frame [m].
        light_dir: offset per axis added to every light's unit direction, then renormalized.
        light_diffuse: scale of every light's diffuse intensity.
        headlight: scale of the headlight's ambient and diffuse intensity.
    """

    enabled: bool = False
    props_rgb: Range = (-0.08, 0.08)
    table_rgb: Range = (-0.15, 0.15)
    walls_rgb: Range = (-0.2, 0.2)
    robot: bool = False
    robot_rgb: Range = (-0.1, 0.1)
    walls: tuple[str, ...] = ("wall_back", "wall_left", "wall_right", "wall_front")
    light_pos: Range = (-0.3, 0.3)
    light_dir: Range = (-0.2, 0.2)
    light_diffuse: Range = (0.7, 1.3)
    headlight: Range = (0.8, 1.2)

    def __post_init__(self) -> None:
        object.__setattr__(self, "walls", tuple(str(w) for w in self.walls))
        _check(
            self,
            "randomize.visual",
            ("light_diffuse", "headlight"),
            ("props_rgb", "table_rgb", "walls_rgb", "robot_rgb", "light_pos", "light_dir"),
        )


@dataclass(frozen=True)
class CameraJitterConfig:
    """Camera pose jitter, in each camera's parent-body frame.

    Attributes:
        cameras: dataset camera names (robot YAML ``cameras`` keys) or MJCF camera names to
            jitter; empty = every camera of the robot.
        pos: offset per axis [m].
        rot: rotation-vector component per axis, applied in the camera frame [deg].
        fovy: offset of the vertical field of view [deg].
    """

    enabled: bool = False
    cameras: tuple[str, ...] = ()
    pos: Range = (-0.01, 0.01)
    rot: Range = (-2.0, 2.0)
    fovy: Range = (0.0, 0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(str(c) for c in self.cameras))
        _check(self, "randomize.camera", (), ("pos", "rot", "fovy"))


@dataclass(frozen=True)
class DistractorConfig:
    """Distractor objects: ``max_count`` bodies compiled in, ``count`` of them placed per episode.

    Attributes:
        max_count: bodies added by :func:`edit_spec` (build time).
        size: half-size of each distractor in every direction [m] (build time).
        mass: mass of each distractor [kg] (build time).
        count: (lo, hi) integer range of distractors placed per episode (inclusive).
        x, y: placement range relative to the room's ``workspace`` site (table-top centre) [m].
        clearance: minimum xy gap between a distractor's bounding circle and those of the
            props' bodies and of other distractors [m]. Placement is also kept on the table top.
        rgb: range of each rgb channel of a placed distractor.
    """

    enabled: bool = False
    max_count: int = 4
    size: float = 0.02
    mass: float = 0.05
    count: tuple[int, int] = (1, 4)
    x: Range = (-0.2, 0.2)
    y: Range = (-0.4, 0.4)
    clearance: float = 0.03
    rgb: Range = (0.1, 0.9)

    def __post_init__(self) -> None:
        key = "randomize.distractors"
        if int(self.max_count) < 0:
            raise ConfigError(f"{key}.max_count must be >= 0, got {self.max_count}")
        object.__setattr__(self, "max_count", int(self.max_count))
        for name in ("size", "mass", "clearance"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{key}.{name} must be a finite number >= 0, got {v}")
            object.__setattr__(self, name, v)
        if self.size <= 0 or self.mass <= 0:
            raise ConfigError(f"{key}.size and {key}.mass must be > 0")
        lo, hi = _as_range(f"{key}.count", self.count, scale=True)
        if lo != int(lo) or hi != int(hi):
            raise ConfigError(f"{key}.count: expected integers, got ({lo}, {hi})")
        if hi > self.max_count:
            raise ConfigError(f"{key}.count: hi {int(hi)} > max_count {self.max_count}")
        object.__setattr__(self, "count", (int(lo), int(hi)))
        _check(self, key, ("rgb",), ("x", "y"))
        if self.rgb[1] > 1:
            raise ConfigError(f"{key}.rgb: channels are in [0, 1], got {self.rgb}")


@dataclass(frozen=True)
class RandomizeConfig:
    """Domain randomization; the ``randomize`` config group (presets in conf/randomize/)."""

    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    visual: VisualConfig = field(default_factory=VisualConfig)
    camera: CameraJitterConfig = field(default_factory=CameraJitterConfig)
    distractors: DistractorConfig = field(default_factory=DistractorConfig)

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name).enabled for f in fields(self))


_SECTIONS = {
    "physics": PhysicsConfig,
    "visual": VisualConfig,
    "camera": CameraJitterConfig,
    "distractors": DistractorConfig,
}


def randomize_config(d: Mapping[str, Any] | RandomizeConfig | None) -> RandomizeConfig:
    """Build a :class:`RandomizeConfig` from a plain mapping (e.g. a parsed preset).

    Unknown keys raise :class:`ConfigError` naming them (``randomize.physics.frction``).
    """
    if d is None:
        return RandomizeConfig()
    if isinstance(d, RandomizeConfig):
        return d
    if not isinstance(d, Mapping):
        raise ConfigError(f"randomize: expected a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"randomize.{unknown[0]}: unknown key; expected one of {list(_SECTIONS)}")
    parts = {}
    for name, cls in _SECTIONS.items():
        sub = d.get(name) or {}
        if not isinstance(sub, Mapping):
            raise ConfigError(f"randomize.{name}: expected a mapping, got {sub!r}")
        known = [f.name for f in fields(cls)]
        bad = sorted(set(sub) - set(known))
        if bad:
            raise ConfigError(f"randomize.{name}.{bad[0]}: unknown key; expected one of {known}")
        parts[name] = cls(**dict(sub))
    return RandomizeConfig(**parts)


def known_presets() -> list[str]:
    """Preset names shipped in conf/randomize/."""
    from sim.paths import conf_dir

    return sorted(p.stem for p in (conf_dir() / "randomize").glob("*.yaml"))


def load_preset(name: str | Path) -> RandomizeConfig:
    """Load a preset by name (conf/randomize/<name>.yaml) or from a YAML path."""
    import yaml

    from sim.errors import UnknownNameError
    from sim.paths import conf_dir

    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = conf_dir() / "randomize" / f"{name}.yaml"
        if not path.exists():
            raise UnknownNameError("randomize preset", str(name), known_presets())
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read randomize preset: {e}") from None
    try:
        return randomize_config(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


# ---------------------------------------------------------------------------------- build time
def edit_spec(spec: mujoco.MjSpec, cfg: DistractorConfig | RandomizeConfig) -> list[str]:
    """Add ``cfg.max_count`` parked distractor bodies to a scene spec (call before compiling).

    Each is a free body ``distractor_<i>`` with one geom of the same name (shape cycling through
    :data:`DISTRACTOR_SHAPES`, half-size ``size``), parked ``PARK_Z`` below the room's
    ``workspace`` site's xy, with contacts off and gravity compensated. Returns the body names.
    """
    if isinstance(cfg, RandomizeConfig):
        cfg = cfg.distractors
    ws = spec.site("workspace")
    base = np.array(ws.pos, dtype=float) if ws is not None else np.zeros(3)
    names = []
    s = cfg.size
    for i in range(cfg.max_count):
        name = f"{DISTRACTOR_PREFIX}{i}"
        if spec.body(name) is not None:
            raise ConfigError(f"edit_spec: the spec already has a body {name!r}")
        pos = [base[0] + 3 * s * (i - (cfg.max_count - 1) / 2), base[1], PARK_Z]
        body = spec.worldbody.add_body(name=name, pos=pos, gravcomp=1.0)
        body.add_freejoint(name=name)
        shape = DISTRACTOR_SHAPES[i % len(DISTRACTOR_SHAPES)]
        size = {
            "box": [s, s, s],
            "cylinder": [s, s, 0.0],
            "sphere": [s, 0.0, 0.0],
            "capsule": [s / 2, s / 2, 0.0],  # radius, half-length: total half-height s
        }[shape]
        body.add_geom(
            name=name,
            type=getattr(mujoco.mjtGeom, f"mjGEOM_{shape.upper()}"),
            size=size,
            mass=cfg.mass,
            contype=0,
            conaffinity=0,
            condim=4,
            rgba=[0.6, 0.6, 0.6, 1.0],
        )
        names.append(name)
    return names


def with_distractors(task: Task, cfg: DistractorConfig | RandomizeConfig) -> Task:
    """Make ``task``'s build-time ``edit_spec`` hook also add the distractors (adapter).

    ``build_scene`` calls ``task.edit_spec(spec)`` before compiling; this chains
    :func:`edit_spec` after the task's own edit, so
    ``build_scene(robot, with_distractors(make_task(name), cfg))`` compiles them in once.
    """
    if isinstance(cfg, RandomizeConfig):
        cfg = cfg.distractors
    previous = getattr(task, "edit_spec", None)

    def edit(spec: mujoco.MjSpec) -> None:
        if previous is not None:
            previous(spec)
        edit_spec(spec, cfg)

    task.edit_spec = edit  # type: ignore[attr-defined]  # instance attribute on a plain dataclass
    return task


def build_randomized_scene(
    robot: Any, task: str | Task, cfg: RandomizeConfig, **kwargs: Any
) -> Scene:
    """``build_scene`` with the distractors of ``cfg`` compiled in when they are enabled."""
    from sim.tasks import build_scene, make_task

    task_obj = (
        make_task(task, **kwargs.pop("task_cfg", None) or {}) if isinstance(task, str) else task
    )
    if cfg.distractors.enabled:
        with_distractors(task_obj, cfg)
    return build_scene(robot, task_obj, **kwargs)


# ---------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Targets:
    """What the randomizer acts on, by name (see :func:`targets_from_scene`).

    Attributes:
        objects: task object bodies (friction, mass, colour).
        props: every body of the props MJCF (colour), task objects included.
        props_geoms: world geoms of the props MJCF (colour).
        table: table body ("" if the support geom sits on the world body).
        table_geom: the table-top (support) geom ("" = no table found).
        robot_root: root body of the robot's subtree.
        joints: the robot's arm joints (damping).
        cameras: camera name -> MJCF camera name (jitter candidates).
    """

    objects: tuple[str, ...] = ()
    props: tuple[str, ...] = ()
    props_geoms: tuple[str, ...] = ()
    table: str = ""
    table_geom: str = ""
    robot_root: str = ""
    joints: tuple[str, ...] = ()
    cameras: dict[str, str] = field(default_factory=dict)


def _props_names(props: str | Path | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Body names and world-geom names of a props MJCF (relative to scenes/ or absolute)."""
    if not props:
        return (), ()
    from sim.paths import scenes_dir

    path = Path(props)
    if not path.is_absolute():
        path = scenes_dir() / path
    spec = mujoco.MjSpec.from_file(str(path))
    bodies = tuple(b.name for b in spec.bodies if b.name and b.name != "world")
    geoms = tuple(g.name for g in spec.worldbody.geoms if g.name)
    return bodies, geoms


def support_geom(model: mujoco.MjModel, site: str = "workspace", exclude=()) -> int:
    """Id of the collidable (non-plane) geom whose top face is right under ``site`` (-1: none).

    The geom must contain the site's xy in its world AABB (at ``qpos0``) and its top must be
    within 2 cm of the site height; among several, the highest top wins. ``exclude``: body ids.
    """
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
    if sid < 0:
        return -1
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    p = data.site_xpos[sid]
    best, best_top = -1, -np.inf
    excl = set(int(b) for b in exclude)
    for g in range(model.ngeom):
        if model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0:
            continue
        if int(model.geom_bodyid[g]) in excl or model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE:
            continue
        center, half = geom_box(model, data, g)
        top = center[2] + half[2]
        if np.all(np.abs(p[:2] - center[:2]) <= half[:2]) and abs(top - p[2]) < 0.02:
            if top > best_top:
                best, best_top = g, top
    return best


def geom_box(model: mujoco.MjModel, data: mujoco.MjData, g: int) -> tuple[np.ndarray, np.ndarray]:
    """World axis-aligned bounding box of geom ``g`` in ``data``: (centre, half-extents) [m]."""
    rot = data.geom_xmat[g].reshape(3, 3)
    return rot @ model.geom_aabb[g, :3] + data.geom_xpos[g], np.abs(rot) @ model.geom_aabb[g, 3:]


def targets_from_scene(scene: Scene) -> Targets:
    """Derive the randomization targets of a built scene (see the module docstring)."""
    from sim.model.contacts import subtree_bodies

    model = scene.model
    objects = tuple(scene.object_names())
    props_bodies, props_geoms = _props_names(getattr(scene.task, "props", None))
    props = tuple(dict.fromkeys(props_bodies + objects))
    exclude = set(subtree_bodies(model, scene.robot_root).tolist())
    for name in props:
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if b >= 0:
            exclude.add(b)
    exclude.update(
        b for b in range(model.nbody) if model.body(b).name.startswith(DISTRACTOR_PREFIX)
    )
    g = support_geom(model, "workspace", exclude)
    table_geom = model.geom(g).name if g >= 0 else ""
    table = ""
    if g >= 0 and model.geom_bodyid[g] != 0:
        table = model.body(int(model.geom_bodyid[g])).name
    return Targets(
        objects=objects,
        props=props,
        props_geoms=props_geoms,
        table=table,
        table_geom=table_geom,
        robot_root=model.body(scene.robot_root).name,
        joints=tuple(scene.joint_names),
        cameras=dict(scene.robot.cameras),
    )


# ---------------------------------------------------------------------------------- randomizer
@dataclass(frozen=True)
class _Slot:
    """Model array elements written: ``path`` (e.g. 'geom_rgba', 'vis.headlight.ambient'),
    row indices (None = the whole array) and a column span [start, stop) (None = all)."""

    path: str
    rows: tuple[int, ...] | None
    cols: tuple[int, int] | None = None


def _get(model: mujoco.MjModel, path: str) -> np.ndarray:
    obj: Any = model
    for part in path.split("."):
        obj = getattr(obj, "global_" if part == "global" else part)
    return obj


def _name(model: mujoco.MjModel, obj: mujoco.mjtObj, i: int) -> str:
    return mujoco.mj_id2name(model, obj, i) or f"#{i}"


def _rgb(x: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in x]


class Randomizer:
    """Randomizes one compiled model between episodes and restores its nominal values.

    Args:
        model: the compiled scene model (its values now are the nominal ones).
        cfg: what to randomize.
        targets: what to act on (usually :func:`targets_from_scene`).

    Raises:
        ConfigError: a configured camera or the distractors are not in the model.
    """

    def __init__(self, model: mujoco.MjModel, cfg: RandomizeConfig, targets: Targets):
        from sim.model.contacts import subtree_bodies

        self.cfg = cfg
        self.targets = targets
        m = model
        B, G, J = mujoco.mjtObj.mjOBJ_BODY, mujoco.mjtObj.mjOBJ_GEOM, mujoco.mjtObj.mjOBJ_JOINT

        def body_id(name: str) -> int:
            return mujoco.mj_name2id(m, B, name)

        def geoms_of(bodies: Sequence[int]) -> np.ndarray:
            return np.flatnonzero(np.isin(m.geom_bodyid, np.asarray(bodies, dtype=int)))

        self._objects = [(n, body_id(n)) for n in targets.objects if body_id(n) >= 0]
        robot_root = body_id(targets.robot_root) if targets.robot_root else -1
        robot_bodies = subtree_bodies(m, robot_root) if robot_root >= 0 else np.zeros(0, int)
        # physics targets
        self._friction: list[tuple[str, np.ndarray]] = [
            (n, geoms_of([b])) for n, b in self._objects
        ]
        tg = mujoco.mj_name2id(m, G, targets.table_geom) if targets.table_geom else -1
        if tg >= 0:
            self._friction.append((targets.table_geom, np.array([tg])))
        self._mass = [(n, b) for n, b in self._objects if m.body_mass[b] > 0]
        self._dofs = []
        for jn in targets.joints:
            j = mujoco.mj_name2id(m, J, jn)
            if j >= 0 and int(m.jnt_type[j]) in _SCALAR_JOINTS:
                self._dofs.append((jn, int(m.jnt_dofadr[j])))
        self._acts = []
        for a in range(m.nu):
            if (
                m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
                and m.actuator_gaintype[a] == mujoco.mjtGain.mjGAIN_FIXED
                and m.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE
                and m.actuator_gainprm[a, 0] > 0
                and m.actuator_biasprm[a, 1] == -m.actuator_gainprm[a, 0]
                and int(m.jnt_bodyid[m.actuator_trnid[a, 0]]) in set(robot_bodies.tolist())
            ):
                self._acts.append((_name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a), a))
        # visual targets: (label, geoms, range-key)
        self._colors: list[tuple[str, np.ndarray, str]] = []

        def by_material(prefix: str, geoms: np.ndarray, key: str, per_body: bool) -> None:
            groups: dict[tuple[int, int], list[int]] = {}
            for gid in geoms:
                b = int(m.geom_bodyid[gid]) if per_body else -1
                groups.setdefault((b, int(m.geom_matid[gid])), []).append(int(gid))
            for (b, mat), gids in groups.items():
                owner = _name(m, B, b) if b >= 0 else prefix
                what = _name(m, mujoco.mjtObj.mjOBJ_MATERIAL, mat) if mat >= 0 else "rgba"
                self._colors.append((f"{owner}/{what}", np.array(gids), key))

        props_b = [body_id(n) for n in targets.props if body_id(n) >= 0]
        props_g = [mujoco.mj_name2id(m, G, n) for n in targets.props_geoms]
        props_geoms = np.union1d(geoms_of(props_b), np.array([g for g in props_g if g >= 0], int))
        by_material("props", props_geoms.astype(int), "props_rgb", per_body=True)
        tb = body_id(targets.table) if targets.table else -1
        table_geoms = geoms_of([tb]) if tb >= 0 else (np.array([tg]) if tg >= 0 else np.zeros(0))
        by_material("table", table_geoms.astype(int), "table_rgb", per_body=False)
        for gid in range(m.ngeom):
            name = _name(m, G, gid)
            if m.geom_bodyid[gid] not in robot_bodies and any(
                fnmatch.fnmatchcase(name, p) for p in cfg.visual.walls
            ):
                self._colors.append((f"wall/{name}", np.array([gid]), "walls_rgb"))
        if cfg.visual.robot:
            by_material("robot", geoms_of(robot_bodies), "robot_rgb", per_body=False)
        # cameras
        wanted = cfg.camera.cameras or tuple(targets.cameras)
        self._cams = []
        for c in wanted:
            mj = targets.cameras.get(c, c)
            cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, mj)
            if cid < 0:
                if cfg.camera.enabled:
                    raise ConfigError(
                        f"randomize.camera.cameras: camera {c!r} not in the model; expected "
                        f"one of {sorted(targets.cameras)}"
                    )
                continue
            self._cams.append((c, cid))
        # distractors
        self._distractors = []
        for b in range(m.nbody):
            name = m.body(b).name
            if name.startswith(DISTRACTOR_PREFIX):
                j = int(m.body_jntadr[b])
                self._distractors.append(
                    (name, b, geoms_of([b]), int(m.jnt_qposadr[j]), int(m.jnt_dofadr[j]))
                )
        if cfg.distractors.enabled and len(self._distractors) < cfg.distractors.count[1]:
            raise ConfigError(
                f"randomize.distractors: the model has {len(self._distractors)} distractor "
                f"bodies, count asks for up to {cfg.distractors.count[1]}; build the scene with "
                "sim.augment.randomize.edit_spec (or build_randomized_scene)"
            )
        ws = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "workspace")
        self._workspace = m.site_pos[ws].copy() if ws >= 0 else np.zeros(3)
        probe = mujoco.MjData(m)
        mujoco.mj_kinematics(m, probe)
        self._table_box = geom_box(m, probe, tg) if tg >= 0 else None
        self._keep_clear = []  # (body, xy radius of its geoms' bounding boxes about the body)
        for b in props_b:
            gs = geoms_of([b])
            if len(gs):
                r = max(
                    float(np.linalg.norm(c[:2] - probe.xpos[b, :2]) + np.linalg.norm(h[:2]))
                    for c, h in (geom_box(m, probe, int(g)) for g in gs)
                )
                self._keep_clear.append((b, r))
        self._shape = (m.nbody, m.ngeom, m.nu, m.ncam, m.nlight)
        self._slots = self._make_slots(m)
        self._nominal = {s: _get(m, s.path)[self._index(s)].copy() for s in self._slots}

    # ------------------------------------------------------------------ slots
    def _make_slots(self, m: mujoco.MjModel) -> list[_Slot]:
        c = self.cfg
        out: list[_Slot] = []
        if c.physics.enabled:
            fr = tuple(int(g) for _, gs in self._friction for g in gs)
            out.append(_Slot("geom_friction", fr, (0, 1)))
            out.append(_Slot("body_mass", tuple(b for _, b in self._mass)))
            out.append(_Slot("body_inertia", tuple(b for _, b in self._mass)))
            out.append(_Slot("dof_damping", tuple(d for _, d in self._dofs)))
            acts = tuple(a for _, a in self._acts)
            out.append(_Slot("actuator_gainprm", acts, (0, 1)))
            out.append(_Slot("actuator_biasprm", acts, (1, 2)))
        rgba_rows: set[int] = set()  # geoms recoloured; alpha too where a material is overridden
        if c.visual.enabled:
            rgba_rows.update(int(g) for _, gs, _ in self._colors for g in gs)
            lights = tuple(range(m.nlight))
            out += [_Slot("light_pos", lights), _Slot("light_dir", lights)]
            out.append(_Slot("light_diffuse", lights))
            out += [_Slot("vis.headlight.ambient", None), _Slot("vis.headlight.diffuse", None)]
        if c.camera.enabled:
            cams = tuple(cid for _, cid in self._cams)
            out += [_Slot("cam_pos", cams), _Slot("cam_quat", cams), _Slot("cam_fovy", cams)]
        if c.distractors.enabled:
            gs = tuple(int(g) for d in self._distractors for g in d[2])
            rgba_rows.update(gs)
            bs = tuple(d[1] for d in self._distractors)
            out += [_Slot("geom_contype", gs), _Slot("geom_conaffinity", gs)]
            out += [_Slot("body_contype", bs), _Slot("body_conaffinity", bs)]
            out.append(_Slot("body_gravcomp", bs))
        if rgba_rows:
            mat = tuple(g for g in sorted(rgba_rows) if m.geom_matid[g] >= 0)
            rgb = tuple(g for g in sorted(rgba_rows) if m.geom_matid[g] < 0)
            out += [_Slot("geom_rgba", mat), _Slot("geom_rgba", rgb, (0, 3))]  # alpha: task state
        return [s for s in out if s.rows is None or len(s.rows)]

    @staticmethod
    def _index(s: _Slot) -> Any:
        if s.rows is None:
            return slice(None)
        rows = np.array(s.rows, dtype=int)
        return rows if s.cols is None else (rows, slice(*s.cols))

    @property
    def arrays(self) -> list[str]:
        """Names of the model arrays this randomizer may write."""
        return sorted({s.path for s in self._slots})

    @classmethod
    def from_scene(cls, scene: Scene, cfg: RandomizeConfig) -> Randomizer:
        """A randomizer for a built scene, targets derived with :func:`targets_from_scene`."""
        return cls(scene.model, cfg, targets_from_scene(scene))

    def restore(self, model: mujoco.MjModel, data: mujoco.MjData | None = None) -> None:
        """Write every nominal value back; with ``data``, also park the distractors again."""
        if (model.nbody, model.ngeom, model.nu, model.ncam, model.nlight) != self._shape:
            raise ConfigError(
                "randomize: this Randomizer was made for another model (body/geom/actuator/"
                "camera/light counts differ); make one per compiled scene"
            )
        for s, v in self._nominal.items():
            _get(model, s.path)[self._index(s)] = v
        if data is not None and self._distractors:
            for _, _, _, qa, va in self._distractors:
                data.qpos[qa : qa + 7] = model.qpos0[qa : qa + 7]
                data.qvel[va : va + 6] = 0.0
            mujoco.mj_forward(model, data)

    # ------------------------------------------------------------------ apply
    def apply(
        self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator
    ) -> dict[str, Any]:
        """Restore nominal values, draw new ones from ``rng``, write them, ``mj_forward``.

        Call after the scene's reset (distractors are placed clear of the task objects' poses
        in ``data``). Returns what was drawn, per part, JSON-able (floats, lists, strings).
        """
        self.restore(model)
        seeds = rng.integers(0, 2**63 - 1, size=4)
        streams = [np.random.default_rng(int(s)) for s in seeds]
        out: dict[str, Any] = {}
        if self.cfg.physics.enabled:
            out["physics"] = self._physics(model, streams[0])
        if self.cfg.visual.enabled:
            out["visual"] = self._visual(model, streams[1])
        if self.cfg.camera.enabled:
            out["camera"] = self._camera(model, streams[2])
        if self.cfg.distractors.enabled:
            out["distractors"] = self._place_distractors(model, data, streams[3])
        mujoco.mj_forward(model, data)
        return out

    def _physics(self, m: mujoco.MjModel, rng: np.random.Generator) -> dict[str, Any]:
        c = self.cfg.physics
        friction = {}
        for name, geoms in self._friction:
            s = float(rng.uniform(*c.friction))
            m.geom_friction[geoms, 0] *= s
            friction[name] = s
        mass = {}
        for name, b in self._mass:
            s = float(rng.uniform(*c.mass))
            m.body_mass[b] *= s
            m.body_inertia[b] *= s
            mass[name] = s
        damping = {}
        for name, d in self._dofs:
            s = float(rng.uniform(*c.damping))
            m.dof_damping[d] *= s
            damping[name] = s
        gain = {}
        for name, a in self._acts:
            s = float(rng.uniform(*c.actuator_gain))
            m.actuator_gainprm[a, 0] *= s
            m.actuator_biasprm[a, 1] = -m.actuator_gainprm[a, 0]
            gain[name] = s
        return {"friction": friction, "mass": mass, "damping": damping, "actuator_gain": gain}

    def _visual(self, m: mujoco.MjModel, rng: np.random.Generator) -> dict[str, Any]:
        c = self.cfg.visual
        colors = {}
        for label, geoms, key in self._colors:
            delta = rng.uniform(*getattr(c, key), size=3)
            for g in geoms:
                mat = int(m.geom_matid[g])
                uses_mat = mat >= 0 and np.array_equal(m.geom_rgba[g], _DEFAULT_RGBA)
                base = m.mat_rgba[mat] if uses_mat else m.geom_rgba[g]
                rgb = np.clip(base[:3] + delta, 0.0, 1.0)
                if uses_mat:  # overriding the material: keep its alpha
                    m.geom_rgba[g, 3] = base[3]
                if uses_mat and np.allclose(rgb, 0.5, atol=0, rtol=0):
                    rgb[0] += 1e-3  # exactly the default would defer to the material again
                m.geom_rgba[g, :3] = rgb
            colors[label] = _rgb(delta)
        lights = {}
        for i in range(m.nlight):
            dp = rng.uniform(*c.light_pos, size=3)
            dd = rng.uniform(*c.light_dir, size=3)
            s = float(rng.uniform(*c.light_diffuse))
            m.light_pos[i] += dp
            d = m.light_dir[i] + dd
            n = float(np.linalg.norm(d))
            if n > 1e-9:
                m.light_dir[i] = d / n
            m.light_diffuse[i] *= s
            lights[_name(m, mujoco.mjtObj.mjOBJ_LIGHT, i)] = {
                "pos_offset": _rgb(dp),
                "dir": _rgb(m.light_dir[i]),
                "diffuse_scale": s,
            }
        s = float(rng.uniform(*c.headlight))
        m.vis.headlight.ambient *= s
        m.vis.headlight.diffuse *= s
        return {"rgb_offset": colors, "lights": lights, "headlight_scale": s}

    def _camera(self, m: mujoco.MjModel, rng: np.random.Generator) -> dict[str, Any]:
        c = self.cfg.camera
        out = {}
        for name, cid in self._cams:
            dp = rng.uniform(*c.pos, size=3)
            rv = np.deg2rad(rng.uniform(*c.rot, size=3))
            df = float(rng.uniform(*c.fovy))
            angle = float(np.linalg.norm(rv))
            dq = np.array([1.0, 0.0, 0.0, 0.0])
            if angle > 0:
                dq = np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * rv / angle])
            m.cam_pos[cid] += dp
            q = quat_mul(m.cam_quat[cid], dq)
            m.cam_quat[cid] = q / np.linalg.norm(q)
            m.cam_fovy[cid] += df
            out[name] = {
                "pos_offset": _rgb(dp),
                "rot_vec_deg": _rgb(np.rad2deg(rv)),
                "fovy_offset": df,
            }
        return out

    def _place_distractors(
        self, m: mujoco.MjModel, d: mujoco.MjData, rng: np.random.Generator
    ) -> dict[str, Any]:
        c = self.cfg.distractors
        for _, _, _, qa, va in self._distractors:  # park all, then place k of them
            d.qpos[qa : qa + 7] = m.qpos0[qa : qa + 7]
            d.qvel[va : va + 6] = 0.0
        mujoco.mj_kinematics(m, d)
        taken = [(d.xpos[b, :2].copy(), r) for b, r in self._keep_clear]
        radius = c.size * math.sqrt(2.0)
        lo = self._workspace[:2] + np.array([c.x[0], c.y[0]])
        hi = self._workspace[:2] + np.array([c.x[1], c.y[1]])
        if self._table_box is not None:  # stay on the table top
            center, half = self._table_box
            lo = np.maximum(lo, center[:2] - half[:2] + radius)
            hi = np.maximum(np.minimum(hi, center[:2] + half[:2] - radius), lo)
        k = int(rng.integers(c.count[0], c.count[1] + 1))
        placed = []
        for i, (name, b, geoms, qa, va) in enumerate(self._distractors):
            if i >= k:
                break
            xy = None
            for _ in range(50):
                cand = np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1])])
                if all(np.linalg.norm(cand - p) >= r + radius + c.clearance for p, r in taken):
                    xy = cand
                    break
            yaw = float(rng.uniform(-np.pi, np.pi))
            rgb = rng.uniform(*c.rgb, size=3)
            if xy is None:  # no room left on the table: stays parked, and says so
                placed.append({"name": name, "parked": True})
                continue
            taken.append((xy, radius))
            top = self._workspace[2]
            if self._table_box is not None:
                top = self._table_box[0][2] + self._table_box[1][2]
            pos = np.array([xy[0], xy[1], top + c.size + 1e-3])
            d.qpos[qa : qa + 7] = np.concatenate(
                [pos, [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]]
            )
            d.qvel[va : va + 6] = 0.0
            m.geom_contype[geoms] = 1
            m.geom_conaffinity[geoms] = 1
            m.body_contype[b] = 1  # the broadphase filters on the bodies' OR of their geoms'
            m.body_conaffinity[b] = 1
            m.body_gravcomp[b] = 0.0
            m.geom_rgba[geoms, :3] = rgb
            placed.append({"name": name, "pos": _rgb(pos), "yaw": yaw, "rgb": _rgb(rgb)})
        return {"count": k, "placed": placed}


def randomizer_for(scene: Scene, cfg: RandomizeConfig | Mapping[str, Any] | None) -> Randomizer:
    """Convenience: a :class:`Randomizer` for ``scene`` from a config or a plain mapping."""
    return Randomizer.from_scene(scene, randomize_config(cfg))


__all__ = [
    "CameraJitterConfig",
    "DistractorConfig",
    "PhysicsConfig",
    "RandomizeConfig",
    "Randomizer",
    "Targets",
    "VisualConfig",
    "build_randomized_scene",
    "edit_spec",
    "load_preset",
    "randomize_config",
    "randomizer_for",
    "support_geom",
    "targets_from_scene",
    "with_distractors",
]
