"""Generation throughput vs raw MuJoCo on the same model, in the same run.

Usage: python benchmarks/generate.py [--episodes 10] [--size 84] [--workers 1]

Runs the full pipeline (reset -> scripted plan -> IK -> physics -> 2 cameras -> LeRobot v3
dataset with mp4s) for stack_blocks at 20 Hz and prints episodes/min (also normalised to
100-control-step episodes, the MimicGen-style reference), physics steps/s, frames/s, and the
ratios to raw ``mj_step`` and raw ``mujoco.Renderer`` (default model visuals) on this model.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from sim.generate import GenerateConfig, generate  # noqa: E402
from sim.model.scene import build_scene  # noqa: E402
from sim.render import CameraConfig  # noqa: E402

CAMS = ("head", "right_wrist")


def raw_mj_step(model: mujoco.MjModel, data: mujoco.MjData, n: int = 20000) -> float:
    """Physics steps/s of bare mj_step on the scene (robot holding home, blocks resting)."""
    t = time.perf_counter()
    for _ in range(n):
        mujoco.mj_step(model, data)
    return n / (time.perf_counter() - t)


def raw_renderer(model: mujoco.MjModel, data: mujoco.MjData, size: int, cams, n: int = 200):
    """Frames/s of a plain mujoco.Renderer (model's own visual settings) over the cameras."""
    r = mujoco.Renderer(model, size, size)
    t = time.perf_counter()
    for i in range(n):
        r.update_scene(data, camera=cams[i % len(cams)])
        r.render()
    fps = n / (time.perf_counter() - t)
    r.close()
    return fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--size", type=int, default=84)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    scene = build_scene("demoforge_humanoid", "stack_blocks")
    scene.reset(np.random.default_rng(0), "D0")
    mj_cams = [scene.robot.cameras[c] for c in CAMS]
    step_rate = raw_mj_step(scene.model, scene.data)
    render_fps = raw_renderer(scene.model, scene.data, args.size, mj_cams)

    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for label, cams in (("with 2 cameras", CAMS), ("no cameras", ())):
            cfg = GenerateConfig(
                episodes=args.episodes, workers=args.workers, output=str(Path(tmp) / label),
                cameras=CameraConfig(names=cams, height=args.size, width=args.size),
            )
            t = time.perf_counter()
            res = generate(cfg, progress=False)
            wall = time.perf_counter() - t
            info = json.loads((Path(res.path) / "meta" / "info.json").read_text())
            runs[label] = (res, wall, info["total_frames"])

    res, wall, frames = runs["with 2 cameras"]
    steps = frames * scene.n_substeps  # control steps x physics substeps
    print(f"model: nq={scene.model.nq} nbody={scene.model.nbody} ngeom={scene.model.ngeom}; "
          f"{args.episodes} episodes, {frames / res.episodes:.0f} control steps each at 20 Hz, "
          f"{len(CAMS)} cameras {args.size}x{args.size}, workers={args.workers}")
    print(f"raw mj_step:            {step_rate:,.0f} steps/s")
    print(f"raw mujoco.Renderer:    {render_fps:,.0f} frames/s ({args.size}x{args.size})")
    for label, (r, w, f) in runs.items():
        st = f * scene.n_substeps
        print(f"pipeline {label:15s} {60 * r.episodes / w:6.1f} episodes/min  "
              f"({60 * r.episodes / w * f / r.episodes / 100:.1f} per 100-step episode), "
              f"{st / w:,.0f} physics steps/s, attempts {r.attempts}")
    print(f"frames/s (2 cameras):   {frames * len(CAMS) / wall:,.0f}")
    print(f"ratio physics steps/s vs raw mj_step (full pipeline): {steps / wall / step_rate:.3f}")
    print(f"ratio frames/s vs raw mujoco.Renderer (full pipeline): "
          f"{frames * len(CAMS) / wall / render_fps:.3f}")
    print("reference: MimicGen on robosuite 1.5.2 here: 5.3 episodes/min (100 steps, 2 cams 84x84)")


if __name__ == "__main__":
    main()
