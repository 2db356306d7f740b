"""Cross-robot augmentation: demos recorded on a Panda-style test arm -> stack_blocks on ours.

1. Record ``--sources`` stack_blocks demos on ``test_panda`` (conf/robot/test_panda.yaml: grip
   site z along the fingers, base offset and rotated from our humanoid's arms). The task's
   scripted plan is made in the canonical grasp frame, mapped into the Panda's tool frame and
   executed through IK + physics on the Panda; the Episode keeps the Panda's own EE site poses
   and records its tool frame and base placement in provenance.
2. Augment them into stack_blocks on ``demoforge_humanoid`` with the ``demos`` plan source,
   declaring the source's tool frame, and report the data generation rate (DGR) at each level.

Run: ``python benchmarks/cross_robot.py --sources 10 --episodes 50 --levels D0``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from sim.augment.infer import (
    from_canonical,
    jaw_twin,
    prefer_jaw_twin,
    to_canonical,
    tool_frame_dict,
)
from sim.control.ik import ArmIK
from sim.control.plan import plan_targets
from sim.episode import Episode, EpisodeMeta
from sim.errors import SimError
from sim.model.scene import Scene
from sim.rollout import check_plan_reach, track
from sim.tasks import build_scene

SOURCE_ROBOT = "test_panda"


def record_demo(scene: Scene, ik: ArmIK, seed: int, level: str = "D0") -> Episode:
    """One scripted demo executed in the scene robot's own tool frame, recorded as an Episode.

    The task's demonstrator plans canonical grasp-frame waypoints; each arm's targets are mapped
    into that arm's tool frame (``RobotSpec`` ``tool_frame``) before IK, so the recorded EE track
    is the robot's own site pose, as a teleop log of that robot would have it.
    """
    assert scene.task is not None, "record_demo needs a scene with a task"
    rng = np.random.default_rng(seed)
    scene.reset(rng, level)
    plan = scene.task.demo(scene, rng)
    conv = scene.robot.tool_frames()
    start = {arm: to_canonical(scene.ee_pose(arm), conv[arm]) for arm in scene.arms}
    flipped = []
    for arm, wps in plan.arms.items():  # jaw symmetry: the grasp twin nearer the arm's home
        if prefer_jaw_twin(np.array([w.pose for w in wps]), start[arm]):
            plan.arms[arm] = [dataclasses.replace(w, pose=jaw_twin(w.pose)) for w in wps]
            flipped.append(arm)
    check_plan_reach(ik, plan)
    grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
    targets = plan_targets(plan, start, grip, scene.control_dt)
    targets.pose = {arm: from_canonical(p, conv[arm]) for arm, p in targets.pose.items()}
    rec = track(scene, ik, targets)
    mount = scene.model.site("robot_mount")
    meta = EpisodeMeta(
        task=scene.task.name,
        robot=scene.robot.name,
        fps=1.0 / scene.control_dt,
        source=f"recorded:{scene.robot.name}#{seed}",
        success=bool(scene.task.success(scene)),
        seed=int(seed),
        instruction=scene.task.instruction,
        provenance={
            "level": level,
            "recorder": "benchmarks/cross_robot.py:record_demo",
            "tool_frame": {arm: tool_frame_dict(c) for arm, c in conv.items()},
            "jaw_twin": flipped,
            "base": {
                "mount_pos": [float(x) for x in mount.pos],
                "mount_offset": list(scene.robot.mount_offset),
                "root_body": scene.model.body(scene.robot_root).name,
                "root_pose": [
                    float(x) for x in scene.body_pose(scene.model.body(scene.robot_root).name)
                ],
            },
        },
    )
    ep = rec.episode(scene, meta)
    ep.target = {arm: p for arm, p in targets.pose.items()}
    ep.gripper_cmd = {arm: g for arm, g in targets.gripper.items()}
    ep.segment = {arm: np.array(v) for arm, v in targets.label.items()}
    ep.segment_ref = {arm: np.array(v) for arm, v in targets.ref.items()}
    return ep


def record_demos(
    n: int,
    seed: int = 0,
    level: str = "D0",
    robot: str = SOURCE_ROBOT,
    task: str = "stack_blocks",
    max_tries: int | None = None,
) -> list[Episode]:
    """``n`` successful demos on ``robot`` (failed recordings are skipped and counted)."""
    scene = build_scene(robot, task)
    ik = ArmIK.for_scene(scene)
    out: list[Episode] = []
    tries = 0
    while len(out) < n:
        if max_tries is not None and tries >= max_tries:
            raise SimError(f"only {len(out)} of {n} {robot} demos succeeded in {tries} tries")
        ep = record_demo(scene, ik, seed + tries, level)
        tries += 1
        if ep.meta.success:
            out.append(ep)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--levels", nargs="+", default=["D0"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--contrast",
        type=int,
        default=10,
        help="D0 attempts with the Panda orientation copied as-is (no mapping)",
    )
    ap.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    demos = record_demos(args.sources, seed=args.seed)
    report: dict[str, Any] = {
        "source_robot": SOURCE_ROBOT,
        "source_tool_frame": demos[0].meta.provenance["tool_frame"],
        "sources": len(demos),
        "record_s": round(time.perf_counter() - t0, 2),
        "target_robot": "demoforge_humanoid",
        "levels": {},
    }
    for level in args.levels:
        report["levels"][level] = augment_dgr(demos, level, args.episodes, args.seed)
        print(json.dumps({level: report["levels"][level]}), flush=True)
    if args.contrast:  # what the issue saw: the Panda grip-site orientation copied as-is
        same = {a: {"approach": [0, 0, -1], "closing": [0, 1, 0]} for a in demos[0].ee}
        report["D0_orientation_copied_as_is"] = augment_dgr(
            demos, "D0", args.contrast, args.seed, tool_frame=same
        )
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return report


def source_params(
    scene: Scene,
    demos: list[Episode],
    tool_frame: Any,
    trim: tuple[str, float] | None = None,
    twins: bool = True,
) -> tuple[dict, str]:
    """Parameters for the ``demos`` plan source, with the source arm's tool frame declared.

    When the source takes a ``source_tool_frame`` parameter it gets the convention; otherwise
    the episodes are mapped onto the target robot's convention here (same result). ``trim``
    = (object, radius [m]) cuts each episode's free-space start before the EE first comes
    within ``radius`` of ``object`` (the source robot's own home pose and base).
    """
    import inspect

    from sim.augment.infer import (
        episode_jaw_twins,
        episode_tool_frames,
        to_canonical,
        trim_approach,
    )
    from sim.sources import _SOURCES, _load_builtin

    _load_builtin()
    if "demos" not in _SOURCES:
        raise SimError("the 'demos' plan source is not available (sim/sources/demos.py missing)")
    if trim is not None:
        demos = [trim_approach(ep, _active_arm(ep), trim[0], trim[1]) for ep in demos]
    sig = inspect.signature(_SOURCES["demos"])
    if "source_tool_frame" in sig.parameters:
        return {"episodes": demos, "source_tool_frame": tool_frame}, "source_tool_frame"
    target = scene.robot.tool_frames()
    first = target[scene.arms[0]]
    scene.reset(np.random.default_rng(0))  # home pose (each attempt resets again)
    home = {a: to_canonical(scene.ee_pose(a), target[a]) for a in scene.arms}
    mapped = []
    for ep in demos:
        can = episode_tool_frames(ep, tool_frame, None)  # canonical, per source arm
        record = can.meta.provenance["tool_frame"]
        if twins:  # jaw symmetry: the grasp twin nearer the target arm's home orientation
            can = episode_jaw_twins(can, {a: home.get(a, home[scene.arms[0]]) for a in can.ee})
        out = episode_tool_frames(can, None, {a: target.get(a, first) for a in can.ee})
        for a, r in out.meta.provenance["tool_frame"].items():
            r["source"] = record[a]["source"]
        mapped.append(out)
    return {"episodes": mapped}, "pre-mapped episodes"


def _active_arm(ep: Episode) -> str:
    """The source arm that moves most (one-arm sources: their only arm)."""
    return max(ep.ee, key=lambda a: float(np.ptp(np.asarray(ep.ee[a])[:, :3], axis=0).sum()))


def augment_dgr(
    demos: list[Episode],
    level: str,
    episodes: int,
    seed: int,
    robot: str = "demoforge_humanoid",
    task: str = "stack_blocks",
    tool_frame: Any = None,
    extra: dict | None = None,
    trim: tuple[str, float] | None = ("block_a", 0.15),
) -> dict[str, Any]:
    """Augment ``demos`` onto ``robot`` with the ``demos`` source; DGR = successes / attempts.

    The attempt loop is the pipeline's (named rng streams, reset, ``source.plan``, IK + physics,
    judged by the task); failures are counted by error type.
    """
    from collections import Counter

    from sim.sources import attempt_streams, make_source

    scene = build_scene(robot, task)
    ik = ArmIK.for_scene(scene)
    conv = tool_frame if tool_frame is not None else demos[0].meta.provenance["tool_frame"]
    params, how = source_params(scene, demos, conv, trim)
    source = make_source("demos", scene, **params, **(extra or {}))
    ok, failures = 0, Counter()
    t0 = time.perf_counter()
    for attempt in range(episodes):
        streams = attempt_streams(seed, attempt)
        scene.reset(streams.reset, level)
        try:
            targets = source.plan(scene, streams.source)
            track(scene, ik, targets)
        except SimError as e:
            failures[type(e).__name__] += 1
            continue
        if scene.task.success(scene):
            ok += 1
        else:
            failures["task_failed"] += 1
    return {
        "attempts": episodes,
        "successes": ok,
        "dgr": ok / max(episodes, 1),
        "failures": dict(failures),
        "tool_frame_via": how,
        "seconds": round(time.perf_counter() - t0, 2),
    }


if __name__ == "__main__":
    main()
