"""Scripted-demonstrator success rate per task and level (physics-judged).

Usage: python benchmarks/success_rates.py [--tasks a,b] [--levels D0,D1,D2] [--seeds 30]
       [--robot demoforge_humanoid]
Prints a markdown table: task | level | successes/seeds | s/episode.
"""

from __future__ import annotations

import argparse
import time

from sim.control.ik import ArmIK
from sim.rollout import run_scripted
from sim.tasks import build_scene, known_tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", default=",".join(known_tasks()))
    ap.add_argument("--levels", default="D0,D1,D2")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--robot", default="demoforge_humanoid")
    args = ap.parse_args()
    print("| task | level | success | rate | s/episode | failed seeds |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks.split(","):
        scene = build_scene(robot=args.robot, task=task)
        ik = ArmIK.for_scene(scene)
        for level in args.levels.split(","):
            t0, fails = time.perf_counter(), []
            for seed in range(args.seeds):
                if not run_scripted(scene, ik, seed, level).meta.success:
                    fails.append(seed)
            n_ok = args.seeds - len(fails)
            dt = (time.perf_counter() - t0) / args.seeds
            print(
                f"| {task} | {level} | {n_ok}/{args.seeds} | {n_ok / args.seeds:.0%} | "
                f"{dt:.2f} | {fails[:10]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
