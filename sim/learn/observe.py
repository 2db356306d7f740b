"""Live observations in the dataset's feature layout, from a running scene.

The mapping mirrors the LeRobot writer (:mod:`sim.io.lerobot`): ``observation.state`` = joint
positions [rad] then gripper openings [0, 1]; ``observation.velocity`` = joint velocities
[rad/s]; ``observation.ee_pose.<arm>`` = EE pose in the world frame (pos [m] + quat w,x,y,z);
``observation.environment_state`` = object poses in the world frame, concatenated. Derived
features (``derived.*``, :mod:`sim.learn.features`) are computed from these columns by the same
function the data loader uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sim.errors import SchemaError
from sim.io.lerobot import POSE_NAMES
from sim.learn.features import ENV, TIMESTAMP, derive, derived_names, is_derived, sources

EE = "observation.ee_pose."


def scene_feature_names(scene: Any, key: str) -> list[str]:
    """Column names the scene produces for a feature key (same rules as the writer)."""
    if is_derived(key):
        need = sources(key, _base_keys(scene))
        return derived_names(key, {k: scene_feature_names(scene, k) for k in need})
    if key == TIMESTAMP:
        return [TIMESTAMP]
    if key == "observation.state":
        return list(scene.joint_names) + [f"{a}_gripper" for a in scene.gripper_arms]
    if key == "observation.velocity":
        return list(scene.joint_names)
    if key.startswith(EE) and key[len(EE) :] in scene.arms:
        return list(POSE_NAMES)
    if key == "observation.environment_state":
        return [f"{o}.{p}" for o in scene.object_names() for p in POSE_NAMES]
    raise SchemaError(
        f"feature {key!r} cannot be observed in a live scene; observable: observation.state, "
        f"observation.velocity, observation.ee_pose.<arm> for arms {scene.arms}, "
        "observation.environment_state"
    )


def _base_keys(scene: Any) -> list[str]:
    return ["observation.state", *(EE + a for a in scene.arms), ENV, TIMESTAMP]


def live_columns(
    scene: Any, o: dict[str, Any], keys: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """``scene.observe()`` output -> (feature key -> (1, W) values, key -> column names) in the
    dataset layout, for the base (non-derived) feature ``keys``."""
    cols = {k: _extractor(k)(o)[None].astype(np.float64) for k in keys}
    return cols, {k: scene_feature_names(scene, k) for k in keys}


def _extractor(key: str) -> Callable[[dict[str, Any]], np.ndarray]:
    if key == TIMESTAMP:
        return lambda o: np.array([o.get("time", 0.0)])
    if key == "observation.state":
        return lambda o: np.concatenate([o["qpos"], np.array(list(o["gripper"].values()))])
    if key == "observation.velocity":
        return lambda o: o["qvel"]
    if key.startswith(EE):
        arm = key[len(EE) :]
        return lambda o: o["ee"][arm]
    return lambda o: np.concatenate(list(o["objects"].values())) if o["objects"] else np.zeros(0)


class Observer:
    """Turns ``scene.observe()`` into the concatenated observation vector of a policy.

    Raises SchemaError at construction when the scene's column names differ from the ones the
    policy was trained on (another robot, other objects), naming the feature.
    """

    def __init__(
        self,
        scene: Any,
        obs_keys: tuple[str, ...],
        obs_names: dict[str, list[str]],
        where: str = "checkpoint",
    ):
        for key in obs_keys:
            live = scene_feature_names(scene, key)
            if live != list(obs_names[key]):
                raise SchemaError(
                    f"{where}: feature {key!r} was trained with columns {obs_names[key]} but the "
                    f"scene ({scene.robot.name}, task {getattr(scene.task, 'name', None)!r}) "
                    f"gives {live}"
                )
        self.scene = scene
        self.keys = tuple(obs_keys)
        derived = [k for k in obs_keys if is_derived(k)]
        base = [k for k in obs_keys if not is_derived(k)]
        need = sorted({s for k in derived for s in sources(k, _base_keys(scene))} | set(base))
        self._need = need
        self._names = {k: scene_feature_names(scene, k) for k in need}

    def __call__(self, step: int = 0) -> np.ndarray:
        """The observation vector now; ``step``: control steps since the reset (for the time
        feature)."""
        o = self.scene.observe()
        o["time"] = step * self.scene.control_dt
        cols = {k: _extractor(k)(o)[None].astype(np.float64) for k in self._need}
        parts = [
            derive(k, cols, self._names)[0][0] if is_derived(k) else cols[k][0] for k in self.keys
        ]
        return np.concatenate(parts).astype(np.float32)
