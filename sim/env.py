"""Gymnasium environments, one registration per task: ``demoforge/StackBlocks-v0`` etc.

Observation (dict, Episode names): ``qpos``/``qvel`` (n,), ``ee`` arm -> (7,) world pose
(pos [m] + quat w,x,y,z), ``gripper`` arm -> (1,) opening [0, 1], ``objects`` name -> (7,),
optional ``images`` camera -> (H, W, 3) uint8. Action: absolute joint targets [rad] followed by
gripper openings [0, 1] (``env.unwrapped.action_names``). Reward 1 on success (sparse),
terminated on success.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.render import CameraRig, resolve_cameras
from sim.tasks import build_scene, known_tasks


def env_id(task: str) -> str:
    """Gymnasium id of a task: stack_blocks -> demoforge/StackBlocks-v0."""
    return "demoforge/" + "".join(p.capitalize() for p in task.split("_")) + "-v0"


class DemoforgeEnv(gym.Env):
    """A task in its room with a robot, stepped at ``control_hz``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: str = "stack_blocks",
        robot: str = "demoforge_humanoid",
        level: str = "D0",
        cameras: tuple[str, ...] = (),
        image_size: tuple[int, int] = (84, 84),
        control_hz: float = 20.0,
        render_mode: str | None = None,
        render_camera: str = "head",
    ):
        self.scene = build_scene(robot, task, control_hz=control_hz)
        self.level = level
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": control_hz}
        s, m = self.scene, self.scene.model
        self.action_names = list(s.action_names)
        lo = np.concatenate([m.actuator_ctrlrange[s.joint_act, 0], np.zeros(len(s.gripper_arms))])
        hi = np.concatenate([m.actuator_ctrlrange[s.joint_act, 1], np.ones(len(s.gripper_arms))])
        self.action_space = spaces.Box(
            lo.astype(np.float32), hi.astype(np.float32), dtype=np.float32
        )
        n = len(s.joint_names)
        obs: dict[str, spaces.Space] = {
            "qpos": spaces.Box(-np.inf, np.inf, (n,), np.float64),
            "qvel": spaces.Box(-np.inf, np.inf, (n,), np.float64),
            "ee": spaces.Dict({a: spaces.Box(-np.inf, np.inf, (7,), np.float64) for a in s.arms}),
            "gripper": spaces.Dict(
                {a: spaces.Box(0.0, 1.0, (1,), np.float64) for a in s.gripper_arms}
            ),
            "objects": spaces.Dict(
                {o: spaces.Box(-np.inf, np.inf, (7,), np.float64) for o in s.object_names()}
            ),
        }
        h, w = image_size
        self.rig = None
        if cameras:
            self.rig = CameraRig(m, resolve_cameras(s.robot.cameras, cameras), h, w)
            obs["images"] = spaces.Dict(
                {c: spaces.Box(0, 255, (h, w, 3), np.uint8) for c in cameras}
            )
        self.observation_space = spaces.Dict(obs)
        self._render_rig = None
        self._render_camera = s.robot.cameras.get(render_camera, render_camera)

    def _obs(self) -> dict[str, Any]:
        o = self.scene.observe()
        o["gripper"] = {k: np.array([v]) for k, v in o["gripper"].items()}
        if self.rig is not None:
            o["images"] = self.rig.render(self.scene.data)
        return o

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        level = (options or {}).get("level", self.level)
        self.scene.reset(self.np_random, level)
        return self._obs(), {"level": level, "action_names": self.action_names}

    def step(self, action):
        self.scene.set_action(np.asarray(action, dtype=np.float64))
        self.scene.step()
        task = self.scene.task
        success = bool(task.success(self.scene)) if task else False
        info = {"success": success, **(task.subtasks(self.scene) if task else {})}
        return self._obs(), float(success), success, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._render_rig is None:
            self._render_rig = CameraRig(
                self.scene.model, {"view": self._render_camera}, 240, 320, "high"
            )
        return self._render_rig.render(self.scene.data)["view"]

    def close(self):
        for rig in (self.rig, self._render_rig):
            if rig is not None:
                rig.close()
        self.rig = self._render_rig = None


def register_all() -> list[str]:
    """Register one env per registered task (idempotent); return the ids."""
    ids = []
    for task in known_tasks():
        eid = env_id(task)
        if eid not in gym.registry:
            gym.register(
                id=eid,
                entry_point="sim.env:DemoforgeEnv",
                kwargs={"task": task},
                max_episode_steps=400,
            )
        ids.append(eid)
    return ids


register_all()
