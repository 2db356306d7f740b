"""Robot descriptions: one YAML in conf/robot/ plus an MJCF folder, no Python per robot."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import yaml

from sim.errors import ConfigError, UnknownNameError
from sim.paths import conf_dir, scenes_dir


@dataclass(frozen=True)
class GripperSpec:
    """A position-controlled gripper: actuator ctrl `closed`..`open` maps to opening 0..1."""

    actuator: str
    joint: str
    closed: float = 0.0
    open: float = 0.04
    weld: bool = False  # hands without fingers: grasp by a weld equality instead of contact


@dataclass(frozen=True)
class ArmSpec:
    """One arm: actuated joints in action order, EE site, gripper."""

    joints: tuple[str, ...]
    ee_site: str
    gripper: GripperSpec | None = None
    shoulder_body: str | None = None


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
        fixed_joints: joints locked at home (e.g. a humanoid's legs for tabletop work).
        base_body: body that is welded to the mount (free base removed).
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
    source: str = ""


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


def _resolve_mjcf(ref: str, source: str) -> Path:
    if ref.startswith("menagerie:"):
        return _menagerie_path(ref.split(":", 1)[1], source)
    ref = os.path.expandvars(os.path.expanduser(ref))
    p = Path(ref)
    if not p.is_absolute():
        cand = [scenes_dir() / p]
        if source.startswith("/"):
            cand.append(Path(source).parent / p)
        p = next((c for c in cand if c.exists()), cand[0])
    if not p.exists():
        raise ConfigError(f"{source}: key 'mjcf' points to {p}, which does not exist")
    return p


def _menagerie_path(name: str, source: str) -> Path:
    """Resolve a Menagerie model: $MENAGERIE_ROOT first, then the mujoco-menagerie package."""
    roots = []
    if os.environ.get("MENAGERIE_ROOT"):
        roots.append(Path(os.environ["MENAGERIE_ROOT"]))
    try:  # optional dependency; downloads models on first use
        import mujoco_menagerie  # type: ignore[import-not-found]

        roots.append(Path(mujoco_menagerie.__file__).parent)
    except ImportError:
        pass
    folder, _, file = name.partition("/")
    for root in roots:
        d = root / folder
        for f in ([file] if file else ["scene.xml", f"{folder}.xml"]) + [
            p.name for p in sorted(d.glob("*.xml"))
        ]:
            if (d / f).exists():
                return d / f
    raise ConfigError(
        f"{source}: menagerie model {name!r} not found; set MENAGERIE_ROOT to a local "
        "mujoco_menagerie checkout or `pip install mujoco-menagerie`"
    )


def robot_from_dict(raw: dict[str, Any], source: str) -> RobotSpec:
    """Parse the YAML dict of a robot, naming the key on error."""
    for key in ("name", "mjcf", "arms"):
        if key not in raw:
            raise ConfigError(f"{source}: missing key {key!r} in robot description")
    arms = {}
    for arm, a in raw["arms"].items():
        for key in ("joints", "ee_site"):
            if key not in a:
                raise ConfigError(f"{source}: arms.{arm} is missing key {key!r}")
        g = a.get("gripper")
        arms[arm] = ArmSpec(
            joints=tuple(a["joints"]),
            ee_site=a["ee_site"],
            gripper=GripperSpec(**g) if g else None,
            shoulder_body=a.get("shoulder_body"),
        )
    spec = RobotSpec(
        name=raw["name"],
        mjcf=_resolve_mjcf(str(raw["mjcf"]), source),
        arms=arms,
        cameras=dict(raw.get("cameras") or {}),
        home_key=raw.get("home_key", "home"),
        home={k: float(v) for k, v in (raw.get("home") or {}).items()},
        reach=float(raw.get("reach", 0.7)),
        fixed_joints=tuple(raw.get("fixed_joints") or ()),
        base_body=raw.get("base_body"),
        source=source,
    )
    return spec


def check_robot_model(spec: RobotSpec, model: mujoco.MjModel) -> None:
    """Raise ConfigError naming each joint/site/actuator/camera the YAML names but the MJCF lacks."""
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
            need("joint", a.gripper.joint, f"arms.{arm}.gripper.joint")
            if not a.gripper.weld:
                need("actuator", a.gripper.actuator, f"arms.{arm}.gripper.actuator")
    for cam, mj in spec.cameras.items():
        need("camera", mj, f"cameras.{cam}")
    for j in spec.fixed_joints:
        need("joint", j, "fixed_joints")
    if missing:
        raise ConfigError(
            f"{spec.source}: robot {spec.name!r} names things its MJCF {spec.mjcf} lacks: "
            + "; ".join(missing)
        )
