"""Regenerate the head-camera thumbnails shown in the README.

Usage: python -m sim.thumbnails [--out scenes/thumbnails] [--size 480x640]
Writes one PNG per task (``<task>.png``) and one per room (``room_<room>.png``, its first task).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from sim.model.scene import build_scene
from sim.render import CameraRig
from sim.tasks import known_tasks


def render_task(task: str, height: int, width: int, robot: str = "demoforge_humanoid"):
    """Head-camera frame of ``task`` right after a D0 reset (seed 0), high quality."""
    scene = build_scene(robot, task)
    scene.reset(np.random.default_rng(0), "D0")
    scene.step(50)  # let props settle
    rig = CameraRig(scene.model, {"head": scene.robot.cameras["head"]}, height, width, "high")
    frame = rig.render(scene.data)["head"]
    rig.close()
    return scene.room, frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="scenes/thumbnails")
    ap.add_argument("--size", default="480x640")
    ap.add_argument("--tasks", default=",".join(known_tasks()))
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rooms_done: set[str] = set()
    for task in args.tasks.split(","):
        room, frame = render_task(task, h, w)
        iio.imwrite(out / f"{task}.png", frame)
        if room not in rooms_done:
            iio.imwrite(out / f"room_{room}.png", frame)
            rooms_done.add(room)
        print(f"{task} ({room}) -> {out / f'{task}.png'}")


if __name__ == "__main__":
    main()
