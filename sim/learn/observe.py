"""Live observations in the dataset's feature layout, from a running scene.

The mapping mirrors the LeRobot writer (:mod:`sim.io.lerobot`): ``observation.state`` = joint
positions [rad] then gripper openings [0, 1]; ``observation.velocity`` = joint velocities
[rad/s]; ``observation.ee_pose.<arm>`` = EE pose in the world frame (pos [m] + quat w,x,y,z);
``observation.environment_state`` = object poses in the world frame, concatenated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sim.errors import SchemaError
from sim.io.lerobot import POSE_NAMES

EE = "observation.ee_pose."


def scene_feature_names(scene: Any, key: str) -> list[str]:
    """Column names the scene produces for a feature key (same rules as the writer)."""
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


def _extractor(key: str) -> Callable[[dict[str, Any]], np.ndarray]:
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
        self._fns = [_extractor(k) for k in obs_keys]

    def __call__(self) -> np.ndarray:
        o = self.scene.observe()
        return np.concatenate([f(o) for f in self._fns]).astype(np.float32)
