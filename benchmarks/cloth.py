"""Physics speed of the fold_cloth scene (robot + 9x9 flex cloth) against raw mj_step.

Usage: python benchmarks/cloth.py [--seeds 3] [--level D0]

For each seed it runs the scripted fold (IK -> joint targets -> Scene.step), records the control
sequence, then replays that sequence with raw ``mujoco.mj_step`` on the same model from the same
initial state, and once more on the same robot and room without the cloth. Prints steps/s,
real-time factor (simulated s per wall s; the target is >= 1) and ratios. The 2 ms timestep
means 1x real time = 500 steps/s. The CPU load average is printed because these numbers are
only comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import time

import mujoco
import numpy as np

from sim.control.ik import ArmIK
from sim.control.plan import plan_targets
from sim.model.scene import Scene
from sim.tasks import build_scene


def scripted_ctrl(scene: Scene, ik: ArmIK, seed: int, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Run the scripted fold; return the per-control-step ctrl (T, nu) and Scene.step wall (T,)
    [s]."""
    assert scene.task is not None
    rng = np.random.default_rng(seed)
    scene.reset(rng, level)
    plan = scene.task.demo(scene, rng)
    start = {arm: scene.ee_pose(arm) for arm in scene.arms}
    grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
    targets = plan_targets(plan, start, grip, scene.control_dt)
    ik.reset(scene.joint_qpos())
    n = len(scene.joint_names)
    action = np.zeros(len(scene.action_names))
    ctrl, wall = [], []
    for t in range(len(targets)):
        action[:n] = ik.solve({arm: targets.pose[arm][t] for arm in targets.pose})
        for i, arm in enumerate(scene.gripper_arms):
            action[n + i] = targets.gripper[arm][t]
        scene.set_action(action)
        ctrl.append(scene.data.ctrl.copy())
        t0 = time.perf_counter()
        scene.step()
        wall.append(time.perf_counter() - t0)
    return np.array(ctrl), np.array(wall)


def raw_replay(model: mujoco.MjModel, data: mujoco.MjData, ctrl: np.ndarray, n_sub: int) -> float:
    """Replay a ctrl sequence with raw mj_step from the state in ``data``; wall time [s]."""
    t0 = time.perf_counter()
    for c in ctrl:
        data.ctrl[:] = c
        for _ in range(n_sub):
            mujoco.mj_step(model, data)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--level", default="D0")
    args = ap.parse_args()
    cloth = build_scene(task="fold_cloth")
    bare = build_scene(task=None, room=cloth.room)  # same robot and room, no cloth
    ik = ArmIK.for_scene(cloth)
    m = cloth.model
    print(
        f"model: nv={m.nv} (robot {bare.model.nv}), flex vertices={m.nflexvert}, "
        f"timestep={m.opt.timestep * 1e3:.0f} ms, load average={os.getloadavg()[0]:.2f}"
    )
    print(
        "| seed | steps | Scene.step steps/s | RTF | slowest 1 s RTF | raw mj_step steps/s | RTF "
        "| Scene/raw | robot-only raw steps/s | cloth scene / robot-only speed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    tot = np.zeros(4)
    worst = np.inf
    for seed in range(args.seeds):
        ctrl, walls = scripted_ctrl(cloth, ik, seed, args.level)
        per_s = round(1.0 / cloth.control_dt)  # control steps in 1 s of simulated time
        window = np.convolve(walls, np.ones(per_s), "valid")  # wall time of each 1 s window
        slow = 1.0 / window.max()
        worst = min(worst, slow)
        wall = float(walls.sum())
        steps = len(ctrl) * cloth.n_substeps
        cloth.reset(np.random.default_rng(seed), args.level)  # same initial state again
        raw = raw_replay(m, cloth.data, ctrl, cloth.n_substeps)
        bare.reset(np.random.default_rng(seed))
        robot = raw_replay(bare.model, bare.data, ctrl, bare.n_substeps)
        sps = [steps / wall, steps / raw, steps / robot]
        tot += [steps, wall, raw, robot]
        print(
            f"| {seed} | {steps} | {sps[0]:.0f} | {sps[0] * m.opt.timestep:.2f} | {slow:.2f} "
            f"| {sps[1]:.0f} "
            f"| {sps[1] * m.opt.timestep:.2f} | {raw / wall:.2f} | {sps[2]:.0f} "
            f"| {robot / raw:.2f} |",
            flush=True,
        )
    steps, wall, raw, robot = tot
    print(
        f"| all | {steps:.0f} | {steps / wall:.0f} | {steps / wall * m.opt.timestep:.2f} "
        f"| {worst:.2f} "
        f"| {steps / raw:.0f} | {steps / raw * m.opt.timestep:.2f} | {raw / wall:.2f} "
        f"| {steps / robot:.0f} | {robot / raw:.2f} |"
    )


if __name__ == "__main__":
    main()
