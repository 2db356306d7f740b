"""The robot protocol: what every driver (twin, client, vendor adapter) looks like.

A :class:`Driver` is LeRobot-shaped (``observation_features``, ``action_features``, ``connect``,
``get_observation``, ``send_action`` returning what was actually sent, ``disconnect``) but speaks
the Episode's feature names, so record/replay/compare never care which robot is behind it:

observation keys (flat, ``.`` separates the group from the member):
    ``qpos`` (n,) joint positions [rad or m], columns = ``capabilities.joint_names``;
    ``qvel`` (n,) joint velocities [rad/s or m/s];
    ``ee.<arm>`` (7,) end-effector pose in the world frame: pos [m] + quat w, x, y, z;
    ``gripper.<arm>`` () opening in [0, 1], 0 = closed;
    ``objects.<name>`` (7,) object pose in the world frame (simulated drivers only);
    ``images.<camera>`` (H, W, 3) uint8.
action: one vector (m,) with names ``capabilities.action_names`` = the joints (absolute targets
    [rad or m]) then ``<arm>_gripper`` openings in [0, 1]. ``action_features`` is
    ``{"action": (m,)}``; :func:`as_action_vector` also accepts a dict keyed by action name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sim.errors import BridgeError

GROUPS = ("ee", "gripper", "objects", "images")


@dataclass
class Capabilities:
    """What a driver can do; sent to clients in the ``hello`` reply.

    Attributes:
        robot: robot name (becomes the Episode's ``meta.robot``).
        driver: driver kind ("twin", "bridge-client", "unitree-dds", "lerobot", ...).
        joint_names: names of the ``qpos``/``qvel`` columns.
        action_names: names of the action vector: joints then ``<arm>_gripper``.
        arms: arm names with an EE pose in the observation.
        fps_max: highest command rate the driver accepts [Hz].
        control_dt: nominal command period [s] (1 / preferred fps).
        lower: lower bound per action dim (joint limits [rad or m], gripper 0).
        upper: upper bound per action dim (gripper 1).
        has_cameras: whether observations carry ``images.<camera>``.
        cameras: camera names.
        objects: object names in the observation (simulated drivers only).
        extra: driver-specific facts (latency, noise, DDS domain, ...).
    """

    robot: str
    driver: str
    joint_names: list[str]
    action_names: list[str]
    arms: list[str]
    fps_max: float
    control_dt: float
    lower: list[float]
    upper: list[float]
    has_cameras: bool = False
    cameras: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = len(self.action_names)
        if len(self.lower) != m or len(self.upper) != m:
            raise BridgeError(
                f"capabilities of {self.robot!r}: lower/upper need {m} values (one per action "
                f"name), got {len(self.lower)}/{len(self.upper)}"
            )

    @property
    def fps(self) -> float:
        """Preferred command rate [Hz]."""
        return 1.0 / self.control_dt

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Capabilities:
        """Inverse of :meth:`to_dict`; unknown keys raise BridgeError naming them."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise BridgeError(f"capabilities: unknown keys {unknown}; expected {sorted(known)}")
        try:
            return cls(**{k: d[k] for k in d})
        except TypeError as e:
            raise BridgeError(f"capabilities: {e}") from None


@runtime_checkable
class Driver(Protocol):
    """A robot (real, simulated or remote) seen through the Episode's feature names."""

    @property
    def observation_features(self) -> dict[str, tuple[int, ...]]:
        """Observation key -> per-step shape (see module docstring)."""
        ...

    @property
    def action_features(self) -> dict[str, tuple[int, ...]]:
        """``{"action": (m,)}``; names in ``capabilities.action_names``."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def get_observation(self) -> dict[str, np.ndarray]: ...

    def send_action(self, action: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Command the robot; return the action actually sent (possibly clamped), shape (m,)."""
        ...


def observation_features(
    caps: Capabilities, image_shapes: Mapping[str, tuple] | None = None
) -> dict[str, tuple[int, ...]]:
    """Feature dict for a driver with these capabilities (names per the module docstring)."""
    n = len(caps.joint_names)
    feats: dict[str, tuple[int, ...]] = {"qpos": (n,), "qvel": (n,)}
    for arm in caps.arms:
        feats[f"ee.{arm}"] = (7,)
    for name in caps.action_names[n:]:
        feats[f"gripper.{gripper_arm(name)}"] = ()
    for obj in caps.objects:
        feats[f"objects.{obj}"] = (7,)
    for cam, shape in (image_shapes or {}).items():
        feats[f"images.{cam}"] = tuple(shape)
    return feats


def gripper_arm(action_name: str) -> str:
    """``"left_gripper"`` -> ``"left"``; raises BridgeError for non-gripper names."""
    if not action_name.endswith("_gripper"):
        raise BridgeError(f"action name {action_name!r} is not '<arm>_gripper'")
    return action_name[: -len("_gripper")]


def as_action_vector(
    action: Mapping[str, Any] | np.ndarray | Sequence[float], names: Sequence[str]
) -> np.ndarray:
    """Action as a float64 vector in ``names`` order.

    Accepts an array-like of shape (m,), ``{"action": array}``, or ``{name: value}`` with every
    name. NaN/inf pass through (the safety layer rejects them); shape/key errors raise
    BridgeError naming what was expected.
    """
    m = len(names)
    if isinstance(action, Mapping):
        if "action" in action and len(action) == 1:
            action = action["action"]
        else:
            missing = [n for n in names if n not in action]
            extra = sorted(set(action) - set(names))
            if missing or extra:
                raise BridgeError(
                    f"action dict: missing keys {missing}, unexpected keys {extra}; "
                    f"expected {list(names)}"
                )
            action = [action[n] for n in names]
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise BridgeError(f"action is not numeric: {e}") from None
    if a.shape != (m,):
        raise BridgeError(f"action must have shape ({m},) = {list(names)}, got {a.shape}")
    return a


def action_from_observation(obs: Mapping[str, Any], caps: Capabilities) -> np.ndarray:
    """The action that holds the observed state: measured joints + measured gripper openings."""
    q = np.asarray(obs["qpos"], dtype=np.float64)
    out = list(q[: len(caps.joint_names)])
    for name in caps.action_names[len(caps.joint_names) :]:
        key = f"gripper.{gripper_arm(name)}"
        out.append(float(np.asarray(obs.get(key, 0.0))))
    return np.asarray(out, dtype=np.float64)


def split_observation(obs: Mapping[str, Any]) -> dict[str, Any]:
    """Flat observation -> ``{"qpos", "qvel", "ee": {arm: ..}, "gripper", "objects", "images"}``."""
    out: dict[str, Any] = {g: {} for g in GROUPS}
    for key, value in obs.items():
        group, _, member = key.partition(".")
        if member and group in GROUPS:
            out[group][member] = value
        else:
            out[key] = value
    return out


def flatten_observation(nested: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Scene-style nested observation (``ee: {arm: pose}``) -> flat driver observation."""
    out: dict[str, np.ndarray] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            for member, v in value.items():
                dtype = None if key == "images" else np.float64
                out[f"{key}.{member}"] = np.asarray(v, dtype=dtype)
        else:
            out[key] = np.asarray(value, dtype=np.float64)
    return out
