"""Free-camera rendering for replays and writing the replay video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from sim.errors import ConfigError
from sim.model.scene import Scene
from sim.render import CameraRig, make_renderer, resolve_cameras, write_video
from sim.replay.report import ReplayReport

#: bodies a free camera looks at, first found wins (then the first body under the world).
LOOKAT_BODIES = ("torso_link", "torso", "pelvis", "base_link", "base")


def _lookat_body(model: mujoco.MjModel) -> int:
    for name in LOOKAT_BODIES:
        b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if b >= 0:
            return b
    return 1 if model.nbody > 1 else 0


class FreeCameraRig:
    """Renders one free camera (``mujoco.MjvCamera``) looking at a body; CameraRig-compatible.

    Args:
        model: the model to render.
        size: (height, width) [px].
        body: body to look at (default: torso/pelvis/first body).
        distance: camera distance from the body [m]; azimuth/elevation [deg] (azimuth 150 looks
            at a robot facing +x from its front-left).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        size: tuple[int, int] = (240, 320),
        body: str | None = None,
        distance: float = 1.8,
        azimuth: float = 150.0,
        elevation: float = -20.0,
        name: str = "free",
    ):
        h, w = int(size[0]), int(size[1])
        if h <= 0 or w <= 0:
            raise ConfigError(f"replay video size must be > 0, got {h}x{w}")
        model.vis.global_.offwidth = max(w, model.vis.global_.offwidth)
        model.vis.global_.offheight = max(h, model.vis.global_.offheight)
        self.renderer = make_renderer(model, h, w)
        flags = self.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        if body is not None:
            self.body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            if self.body < 0:
                raise ConfigError(f"camera look-at body {body!r} is not in the model")
        else:
            self.body = _lookat_body(model)
        self.cam = mujoco.MjvCamera()
        self.cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.cam.distance, self.cam.azimuth, self.cam.elevation = distance, azimuth, elevation
        self.name = name

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """One (H, W, 3) uint8 frame of the current state (after mj_forward/kinematics)."""
        self.cam.lookat[:] = data.xpos[self.body]
        self.renderer.update_scene(data, camera=self.cam)
        return {self.name: self.renderer.render().copy()}

    def close(self) -> None:
        self.renderer.close()


def scene_rig(scene: Scene, camera: str | None, size: tuple[int, int]) -> Any:
    """A free camera (``camera`` None) or one named robot/MJCF camera of the scene."""
    if camera is None:
        return FreeCameraRig(scene.model, size)
    return CameraRig(scene.model, resolve_cameras(scene.robot.cameras, [camera]), *size)


def write_replay_video(
    report: ReplayReport,
    frames: list[np.ndarray],
    video: str | Path | None,
    fps: float,
    stride: int,
) -> None:
    if video is None or not frames:
        return
    arr = np.stack(frames)
    write_video(arr, video, fps / stride)
    report.video = str(video)
    report.video_frames = int(len(arr))
    report.video_size = (int(arr.shape[1]), int(arr.shape[2]))
    report.video_stride = int(stride)
