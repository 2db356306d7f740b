"""Head-camera thumbnails of a task (shown in the README); the command is
``python -m sim.cli.thumbnails [--out scenes/thumbnails] [--size 480x640]``.
"""

from __future__ import annotations

import numpy as np

from sim.render import CameraRig
from sim.tasks import build_scene


def render_task(task: str, height: int, width: int, robot: str = "demoforge_humanoid"):
    """Head-camera frame of ``task`` right after a D0 reset (seed 0), high quality."""
    scene = build_scene(robot, task)
    scene.reset(np.random.default_rng(0), "D0")
    scene.step(50)  # let props settle
    rig = CameraRig(scene.model, {"head": scene.robot.cameras["head"]}, height, width, "high")
    frame = rig.render(scene.data)["head"]
    rig.close()
    return scene.room, frame
