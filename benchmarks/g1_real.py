"""Real Unitree G1 teleoperation (joints only) -> pick_bottle on the G1 and on our humanoid.

``../shared/data/g1_pick_bottle`` (LeRobot v2.1, real G1 with Inspire hands, 30 fps) has joint
angles and a head video, but no EE poses and no object poses. For each of ``--sources``
episodes:

1. EE poses by G1 forward kinematics (``conf/robot/unitree_g1.yaml`` mounted in the home room,
   :func:`sim.augment.infer.ingest_joint_episode`), resampled to the 20 Hz control rate;
2. the right hand's opening from its finger joints; the grasp = its longest closed run;
3. the bottle's frame inferred from the EE pose at gripper closure (it then moves with the
   hand until release), the coaster's from the bottle's position at release; both recorded in
   provenance (``inferred_objects``);
4. mapped into each target robot's tool frame (jaw twin nearest its home), the robot-specific
   free-space start cut (EE > 15 cm from the bottle), written as a demoforge LeRobot dataset;
5. ``sim.generate`` with ``source=<that dataset>`` (the ``demos`` plan source): ``--episodes``
   physics-verified pick_bottle episodes per robot; DGR = episodes / attempts.

The bottle is round: on our humanoid (parallel jaws) the grasp heading about the bottle's axis
is turned to ``--humanoid-heading`` (default 90 deg: from the robot's right, inside its wrist
range); on the G1 the source's own heading is kept.

Run: ``python benchmarks/g1_real.py --sources 10 --episodes 100 --out /tmp/g1_real``.
Skips (exit 0, says why) when the data or the G1 MJCF is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "g1_pick_bottle"
G1_XML = SHARED / "robots" / "unitree_g1" / "g1_29dof.xml"
HANDS = {
    side: [f"k{side.title()}Hand{f}" for f in ("Pinky", "Ring", "Middle", "Index")]
    for side in ("left", "right")
}
TARGETS = ("unitree_g1", "demoforge_humanoid")


def missing_inputs() -> str | None:
    """Why the benchmark cannot run here, or None."""
    if not (DATA / "meta" / "info.json").is_file():
        return f"G1 teleoperation data not found at {DATA}"
    if not G1_XML.is_file():
        return f"Unitree G1 MJCF not found at {G1_XML}"
    return None


def ingest(indices: list[int], scene: Any = None, heading: float | None = None) -> list:
    """Source episodes ``indices`` of the G1 data, made augmentable on pick_bottle.

    Args:
        scene: a G1 pick_bottle scene (built when None; kinematics only).
        heading: None keeps the source's grasp heading (bottle frame aligned with the world);
            a value [rad] turns each grasp about the bottle's axis to arrive at that heading.
    """
    from sim.augment.infer import HeldObject, SupportObject, ingest_joint_episode
    from sim.io import read_episodes
    from sim.tasks import build_scene
    from sim.tasks.pick_bottle import COASTER_HALF_T, HALF_H, RADIUS

    scene = scene or build_scene("unitree_g1", "pick_bottle")
    # the G1 EE site is 2 cm out from the palm: the bottle axis lies RADIUS - 2 cm beyond it
    held = HeldObject("bottle", "right", depth=RADIUS - 0.02)
    if heading is not None:
        held = HeldObject("bottle", "right", RADIUS - 0.02, "yaw", float(heading))
    support = SupportObject("coaster", "bottle", below=HALF_H + COASTER_HALF_T)
    out = []
    for ep in read_episodes(DATA, episodes=indices):
        out.append(ingest_joint_episode(ep, scene, HANDS, [held], [support]))
    return out


def write_sources(episodes: list, path: Path) -> Path:
    """Write source episodes as a demoforge LeRobot dataset (read back by the demos source)."""
    from sim.io.writer import open_writer

    with open_writer("lerobot", path, fps=int(round(episodes[0].meta.fps)), overwrite=True) as w:
        for ep in episodes:
            w.add(ep)
        return w.finalize()


def run_robot(
    robot: str,
    srcs: list,
    out: Path,
    episodes: int,
    level: str,
    seed: int,
    workers: int,
    max_attempts: int | None = None,
) -> dict[str, Any]:
    """Map ``srcs`` onto ``robot``, write them, generate ``episodes`` pick_bottle episodes."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cross_robot import source_params

    from sim.generate import GenerateConfig, OutputConfig, generate
    from sim.render import CameraConfig
    from sim.tasks import build_scene

    scene = build_scene(robot, "pick_bottle")
    params, how = source_params(
        scene, srcs, srcs[0].meta.provenance["tool_frame"], trim=("bottle", 0.15)
    )
    src_path = write_sources(params["episodes"], out / f"sources_{robot}")
    cfg = GenerateConfig(
        task="pick_bottle",
        robot=robot,
        episodes=episodes,
        seed=seed,
        level=level,
        workers=workers,
        max_attempts=max_attempts,
        source=str(src_path),
        cameras=CameraConfig(names=()),
        output=OutputConfig(dir=str(out / f"pick_bottle_{robot}_{level}"), overwrite=True),
        progress=False,
    )
    t0 = time.perf_counter()
    res = generate(cfg)
    return {
        "robot": robot,
        "level": level,
        "sources": len(srcs),
        "source_dataset": str(src_path),
        "tool_frame_via": how,
        "dataset": res.path,
        "episodes": res.episodes,
        "attempts": res.attempts,
        "dgr": round(res.success_rate, 4),
        "failures": res.failures,
        "seconds": round(time.perf_counter() - t0, 1),
        "episodes_per_min": round(res.episodes_per_min, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=10, help="first N real episodes")
    ap.add_argument("--episodes", type=int, default=100, help="episodes generated per robot")
    ap.add_argument("--level", default="D0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-attempts", type=int, default=None, help="per robot (default: run's)")
    ap.add_argument("--robots", nargs="+", default=list(TARGETS))
    ap.add_argument("--humanoid-heading", type=float, default=90.0, help="deg")
    ap.add_argument("--out", type=Path, default=Path("/tmp/demoforge_g1_real"))
    args = ap.parse_args(argv)
    why = missing_inputs()
    if why:
        print(json.dumps({"skipped": why}))
        return {"skipped": why}
    from sim.tasks import build_scene

    args.out.mkdir(parents=True, exist_ok=True)
    g1 = build_scene("unitree_g1", "pick_bottle")
    idx = list(range(args.sources))
    report: dict[str, Any] = {"data": str(DATA), "source_episodes": idx, "results": []}
    for robot in args.robots:
        heading = None if robot == "unitree_g1" else np.radians(args.humanoid_heading)
        srcs = ingest(idx, g1, heading)
        report["inferred_objects"] = {
            s.meta.source: s.meta.provenance["inferred_objects"] for s in srcs[:2]
        }
        report["results"].append(
            run_robot(
                robot,
                srcs,
                args.out,
                args.episodes,
                args.level,
                args.seed,
                args.workers,
                args.max_attempts,
            )
        )
        print(json.dumps(report["results"][-1]), flush=True)
    (args.out / "g1_real_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({r["robot"]: r["dgr"] for r in report["results"]}))
    return report


if __name__ == "__main__":
    main()
