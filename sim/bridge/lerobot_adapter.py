"""Use any LeRobot ``Robot`` as a demoforge :class:`~sim.bridge.protocol.Driver`.

LeRobot robots (FORMATS §3.1) expose flat feature dicts, e.g. ``{"shoulder_pan.pos": float, ...,
"gripper.pos": float, "front": (480, 640, 3)}``, in degrees (``use_degrees=True``) and a gripper
in 0..100. :class:`LeRobotDriver` maps them onto the Episode's names: joints -> ``qpos``
[rad], gripper -> ``gripper.<arm>`` opening [0, 1], cameras -> ``images.<camera>``; actions go
the other way, and ``send_action``'s return (what the robot really sent, possibly clipped by its
``max_relative_target``) is mapped back.

The robot is duck-typed (``observation_features``, ``action_features``, ``connect``,
``get_observation``, ``send_action``, ``disconnect``): lerobot itself is only imported by
:func:`make_lerobot_robot`, so this module works (and is tested) without it.

Example:
    robot = make_lerobot_robot("so101_follower", port="/dev/ttyACM0", id="arm1")
    driver = LeRobotDriver(robot)            # mapping inferred from the feature names
    serve(driver, "tcp://0.0.0.0:5555", SafetyConfig(max_step=0.05))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.bridge.protocol import Capabilities, as_action_vector, observation_features
from sim.errors import BridgeError, ConfigError


@dataclass(frozen=True)
class LeRobotMapping:
    """How LeRobot feature keys map to the Episode's names.

    Attributes:
        joints: our joint name -> LeRobot key (same key in observation and action).
        grippers: arm -> (LeRobot key, value when closed, value when open).
        velocities: our joint name -> LeRobot observation key of its velocity (optional).
        cameras: our camera name -> LeRobot observation key.
        angle_scale: multiply LeRobot joint values by this to get [rad] (pi/180 for degrees).
        lower: per joint lower limit [rad] (LeRobot does not expose limits); default -pi.
        upper: per joint upper limit [rad]; default pi.
    """

    joints: dict[str, str]
    grippers: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    velocities: dict[str, str] = field(default_factory=dict)
    cameras: dict[str, str] = field(default_factory=dict)
    angle_scale: float = float(np.pi / 180.0)
    lower: dict[str, float] = field(default_factory=dict)
    upper: dict[str, float] = field(default_factory=dict)


def infer_mapping(
    robot: Any,
    angle_scale: float = float(np.pi / 180.0),
    gripper_range: tuple[float, float] = (0.0, 100.0),
) -> LeRobotMapping:
    """Mapping from a robot's feature names.

    ``<name>.pos`` action keys are joints (``<name>``), unless the name contains "gripper": then
    it is the gripper of arm ``<prefix>`` for ``<prefix>_gripper.pos`` (``main`` for a bare
    ``gripper.pos``), with ``gripper_range`` = (closed, open). ``<name>.vel`` observation keys
    are velocities; observation features with a 3-tuple shape are cameras.
    """
    joints: dict[str, str] = {}
    grippers: dict[str, tuple[str, float, float]] = {}
    for key in robot.action_features:
        name, _, kind = key.rpartition(".")
        if kind != "pos" or not name:
            raise ConfigError(
                f"lerobot action key {key!r} is not '<name>.pos'; pass a LeRobotMapping"
            )
        if "gripper" in name:
            arm = name.replace("gripper", "").strip("_") or "main"
            grippers[arm] = (key, *gripper_range)
        else:
            joints[name] = key
    obs = robot.observation_features
    vel = {k[: -len(".vel")]: k for k in obs if k.endswith(".vel") and k[:-4] in joints}
    cams = {k: k for k, v in obs.items() if isinstance(v, tuple) and len(v) == 3}
    return LeRobotMapping(
        joints=joints, grippers=grippers, velocities=vel, cameras=cams, angle_scale=angle_scale
    )


class LeRobotDriver:
    """Driver wrapping a (duck-typed) LeRobot ``Robot``.

    Args:
        robot: a LeRobot Robot instance (not necessarily connected).
        mapping: key mapping; inferred with :func:`infer_mapping` when None.
        fps: preferred command rate [Hz] (LeRobot records at 30 by default).
        name: robot name; default ``robot.name`` or the class name.
    """

    def __init__(
        self,
        robot: Any,
        mapping: LeRobotMapping | None = None,
        fps: float = 30.0,
        name: str | None = None,
    ) -> None:
        self.robot = robot
        self.map = mapping or infer_mapping(robot)
        self.fps = fps
        obs_keys = set(robot.observation_features)
        act_keys = set(robot.action_features)
        need_obs = set(self.map.joints.values()) | {g[0] for g in self.map.grippers.values()}
        need_obs |= set(self.map.velocities.values()) | set(self.map.cameras.values())
        need_act = set(self.map.joints.values()) | {g[0] for g in self.map.grippers.values()}
        missing = sorted(need_obs - obs_keys) + sorted(need_act - act_keys)
        if missing:
            raise ConfigError(
                f"lerobot robot {type(robot).__name__}: mapping keys {missing} not "
                f"in its features (observation {sorted(obs_keys)}, action "
                f"{sorted(act_keys)})"
            )
        joints = list(self.map.joints)
        arms = list(self.map.grippers)
        shapes = {c: tuple(robot.observation_features[k]) for c, k in self.map.cameras.items()}
        self._caps = Capabilities(
            robot=name or getattr(robot, "name", None) or type(robot).__name__,
            driver="lerobot",
            joint_names=joints,
            action_names=joints + [f"{a}_gripper" for a in arms],
            arms=[],
            fps_max=fps,
            control_dt=1.0 / fps,
            lower=[self.map.lower.get(j, -np.pi) for j in joints] + [0.0] * len(arms),
            upper=[self.map.upper.get(j, np.pi) for j in joints] + [1.0] * len(arms),
            has_cameras=bool(shapes),
            cameras=list(shapes),
        )
        feats = observation_features(self._caps, shapes)
        if not self.map.velocities:
            feats.pop("qvel")
        self._features = feats

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def observation_features(self) -> dict[str, tuple[int, ...]]:
        return dict(self._features)

    @property
    def action_features(self) -> dict[str, tuple[int, ...]]:
        return {"action": (len(self._caps.action_names),)}

    def connect(self) -> None:
        if not getattr(self.robot, "is_connected", False):
            self.robot.connect()

    def disconnect(self) -> None:
        if getattr(self.robot, "is_connected", True):
            self.robot.disconnect()

    def get_observation(self) -> dict[str, np.ndarray]:
        raw = self.robot.get_observation()
        try:
            s = self.map.angle_scale
            obs = {"qpos": np.array([float(raw[k]) * s for k in self.map.joints.values()])}
            if self.map.velocities:
                obs["qvel"] = np.array(
                    [float(raw[self.map.velocities[j]]) * s for j in self.map.joints]
                )
            for arm, (key, closed, opened) in self.map.grippers.items():
                g = (float(raw[key]) - closed) / (opened - closed)
                obs[f"gripper.{arm}"] = np.asarray(float(np.clip(g, 0.0, 1.0)))
            for cam, key in self.map.cameras.items():
                obs[f"images.{cam}"] = np.asarray(raw[key], dtype=np.uint8)
        except KeyError as e:
            raise BridgeError(
                f"lerobot robot {self._caps.robot!r}: observation lacks {e}"
            ) from None
        return obs

    def send_action(self, action: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Send in LeRobot units; return what the robot reports it sent, in ours."""
        a = as_action_vector(action, self._caps.action_names)
        d = self.to_lerobot(a)
        sent = self.robot.send_action(d)
        return self.from_lerobot(sent if isinstance(sent, Mapping) else d)

    def to_lerobot(self, a: np.ndarray) -> dict[str, float]:
        """Our action vector -> LeRobot action dict."""
        s = self.map.angle_scale
        n = len(self.map.joints)
        out = {k: float(a[j]) / s for j, k in enumerate(self.map.joints.values())}
        for i, (key, closed, opened) in enumerate(self.map.grippers.values()):
            out[key] = closed + float(a[n + i]) * (opened - closed)
        return out

    def from_lerobot(self, d: Mapping[str, Any]) -> np.ndarray:
        """LeRobot action dict -> our action vector."""
        s = self.map.angle_scale
        try:
            out = [float(d[k]) * s for k in self.map.joints.values()]
            out += [
                (float(d[key]) - closed) / (opened - closed)
                for key, closed, opened in self.map.grippers.values()
            ]
        except KeyError as e:
            raise BridgeError(f"lerobot robot {self._caps.robot!r}: action lacks {e}") from None
        return np.asarray(out, dtype=np.float64)


def make_lerobot_robot(robot_type: str, **config: Any) -> Any:
    """Instantiate a LeRobot robot by its registered type (needs ``pip install lerobot``).

    Raises:
        BridgeError: lerobot is not installed (it needs Python >= 3.12) or the type is unknown.
    """
    try:
        from lerobot.robots import RobotConfig, make_robot_from_config
    except ImportError as e:
        raise BridgeError(
            f"LeRobot robot {robot_type!r} needs the 'lerobot' package "
            f"(pip install lerobot; Python >= 3.12): {e}"
        ) from None
    try:
        cfg_cls = RobotConfig.get_choice_class(robot_type)
    except Exception as e:  # noqa: BLE001 - draccus raises its own types
        raise BridgeError(f"unknown LeRobot robot type {robot_type!r}: {e}") from None
    return make_robot_from_config(cfg_cls(**config))
