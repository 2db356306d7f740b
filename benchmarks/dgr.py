"""Data generation rate (DGR) of the ``demos`` source at D0/D1/D2, beside MimicGen's numbers.

For each task: 10 source demos recorded with the scripted demonstrator at D0 (stand-ins for
human demos), then ``--attempts`` augmented attempts per level from the ``demos`` source
(the task's planner is not called), success judged in physics. Prints one row per task as it
finishes and, with ``--out``, writes the table as JSON.

    python benchmarks/dgr.py                       # all tasks, 30 attempts per cell
    python benchmarks/dgr.py --tasks stack_blocks --attempts 10 --levels D0,D1
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

# MimicGen (Mandlekar et al., CoRL 2023), Table 1: DGR [%] at D0 / D1 / D2 from 10 human demos.
MIMICGEN = {
    "Stack": (94.3, 90.0, None),
    "Square": (73.7, 48.9, 31.8),
    "Threading": (51.0, 39.2, 21.6),
    "Coffee": (78.2, 63.5, 27.7),
    "Mug Cleanup": (29.5, 17.0, None),
}
# Closest MimicGen analogue of each demoforge task (for reading the two tables side by side).
ANALOGUE = {"stack_blocks": "Stack", "insert_peg": "Square", "open_drawer": "Mug Cleanup"}


def run_task(task: str, levels: list[str], attempts: int, n_src: int, seed: int, robot: str):
    from sim.control.ik import ArmIK
    from sim.errors import SimError
    from sim.sources import make_source
    from sim.sources.scripted import run_attempt
    from sim.tasks import build_scene

    scene = build_scene(robot, task, control_hz=20)
    ik = ArmIK.for_scene(scene)
    scripted = make_source("scripted", scene)
    t0 = time.perf_counter()
    sources = [run_attempt(scene, ik, scripted, seed + 1000 + i, "D0") for i in range(n_src)]
    src_ok = sum(bool(e.meta.success) for e in sources)
    demos = make_source("demos", scene, episodes=sources)
    row = {"task": task, "sources": n_src, "sources_ok": src_ok, "levels": {}}
    for level in levels:
        ok, causes = 0, Counter()
        for k in range(attempts):
            try:
                ep = run_attempt(scene, ik, demos, seed + 5000 + k, level)
                ok += bool(ep.meta.success)
                if not ep.meta.success:
                    causes["failed"] += 1
            except SimError as e:
                causes[getattr(e, "cause", type(e).__name__)] += 1
        row["levels"][level] = {"success": ok, "attempts": attempts, "causes": dict(causes)}
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def fmt(cell: dict | None) -> str:
    if cell is None:
        return "-"
    return f"{100 * cell['success'] / cell['attempts']:.0f}% ({cell['success']}/{cell['attempts']})"


def main() -> None:
    from sim.tasks import known_tasks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(known_tasks()))
    ap.add_argument("--levels", default="D0,D1,D2")
    ap.add_argument("--attempts", type=int, default=30)
    ap.add_argument("--sources", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--robot", default="demoforge_humanoid")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    levels = a.levels.split(",")
    rows = []
    print(f"| task | {' | '.join(levels)} | MimicGen analogue (D0/D1/D2) |")
    print("|---|" + "---|" * len(levels) + "---|")
    for task in a.tasks.split(","):
        row = run_task(task, levels, a.attempts, a.sources, a.seed, a.robot)
        rows.append(row)
        ref = ANALOGUE.get(task)
        mg = "/".join("-" if v is None else f"{v}" for v in MIMICGEN[ref]) if ref else "-"
        cells = " | ".join(fmt(row["levels"].get(lv)) for lv in levels)
        print(f"| {task} | {cells} | {ref or '-'} {mg} |", flush=True)
        if a.out:
            with open(a.out, "w") as f:
                json.dump({"rows": rows, "mimicgen": MIMICGEN}, f, indent=1)
    print("\nMimicGen (CoRL 2023) DGR from 10 human demos, D0/D1/D2 [%]:")
    for k, v in MIMICGEN.items():
        print(f"  {k:12s} " + " / ".join("-" if x is None else f"{x}" for x in v))


if __name__ == "__main__":
    main()
