"""Contact sheet of domain-randomized episodes: a grid PNG per task, to check DR by eye.

Usage: python benchmarks/contact_sheet.py [--tasks stack_blocks carry_tray] [--episodes 6]
       [--preset default] [--size 160] [--quality high] [--out out]

For each episode (seed i): reset -> ``Randomizer.apply`` -> the task's scripted plan -> physics,
capturing the head camera and one wrist camera at the first step and at the middle of the plan.
One row per episode: [head t0 | wrist t0 | head mid | wrist mid], labelled with the seed, the
success judged in physics and a few of the sampled values. Writes ``out/contact_sheet_<task>.png``
and prints the success count and the cost of ``apply`` as a ratio of one control step of physics.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from sim.augment.randomize import Randomizer, build_randomized_scene, load_preset  # noqa: E402
from sim.control.ik import ArmIK  # noqa: E402
from sim.control.plan import plan_targets  # noqa: E402
from sim.render import CameraRig  # noqa: E402
from sim.rollout import track  # noqa: E402

WRIST = {"stack_blocks": "right_wrist", "carry_tray": "left_wrist"}


class SparseRig:
    """Renders only at chosen control steps (keeps them itself); returns no frames to track()."""

    def __init__(self, rig: CameraRig, steps: set[int]):
        self.rig, self.steps, self.t = rig, steps, 0
        self.frames: dict[int, dict[str, np.ndarray]] = {}

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        if self.t in self.steps:
            self.frames[self.t] = self.rig.render(data)
        self.t += 1
        return {}


def _summary(values: dict) -> str:
    parts = []
    phys = values.get("physics", {})
    if phys.get("friction"):
        f = list(phys["friction"].values())
        parts.append(f"mu x{min(f):.2f}-{max(f):.2f}")
    vis = values.get("visual", {})
    if "headlight_scale" in vis:
        parts.append(f"head-light x{vis['headlight_scale']:.2f}")
    if "distractors" in values:
        parts.append(f"{values['distractors']['count']} distractors")
    return ", ".join(parts)


def sheet(task: str, episodes: int, preset: str, size: int, quality: str, out: Path) -> Path:
    cfg = load_preset(preset)
    scene = build_randomized_scene("demoforge_humanoid", task, cfg)
    ik = ArmIK.for_scene(scene)
    rand = Randomizer.from_scene(scene, cfg)
    cams = {"head": scene.robot.cameras["head"], "wrist": scene.robot.cameras[WRIST[task]]}
    rig = CameraRig(scene.model, cams, size, size, quality)
    label_h = 30
    grid = Image.new("RGB", (4 * size, episodes * (size + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    apply_s, ok = [], 0
    for i in range(episodes):
        rng = np.random.default_rng(i)
        scene.reset(rng)
        t0 = time.perf_counter()
        values = rand.apply(scene.model, scene.data, np.random.default_rng(1000 + i))
        apply_s.append(time.perf_counter() - t0)
        plan = scene.task.demo(scene, rng)
        start = {arm: scene.ee_pose(arm) for arm in scene.arms}
        grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
        targets = plan_targets(plan, start, grip, scene.control_dt)
        mid = len(targets) // 2
        sparse = SparseRig(rig, {0, mid})
        track(scene, ik, targets, sparse)  # type: ignore[arg-type]  # duck-typed rig
        success = bool(scene.task.success(scene))
        ok += success
        y = i * (size + label_h)
        for j, (t, cam) in enumerate(((0, "head"), (0, "wrist"), (mid, "head"), (mid, "wrist"))):
            grid.paste(Image.fromarray(sparse.frames[t][cam]), (j * size, y + label_h))
        text = f"seed {i}  success={success}  {_summary(values)}"
        draw.text((4, y + 4), text, fill="black")
        draw.text((4, y + 16), "head t0 | wrist t0 | head mid | wrist mid", fill="gray")
    rig.close()
    rand.restore(scene.model, scene.data)
    # cost of apply vs one control step of physics on the same model
    t0 = time.perf_counter()
    for _ in range(20):
        scene.step()
    step_s = (time.perf_counter() - t0) / 20
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"contact_sheet_{task}.png"
    grid.save(path)
    print(
        f"{task}: {ok}/{episodes} successes with preset {preset!r}; apply "
        f"{1e3 * np.mean(apply_s):.2f} ms = {np.mean(apply_s) / step_s:.2f} control steps of "
        f"physics (measured under load) -> {path}"
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["stack_blocks", "carry_tray"])
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--quality", default="high", choices=["fast", "high"])
    ap.add_argument("--out", type=Path, default=Path("out"))
    args = ap.parse_args()
    for task in args.tasks:
        sheet(task, args.episodes, args.preset, args.size, args.quality, args.out)


if __name__ == "__main__":
    main()
