"""The ``scripted`` plan source: the task's demonstrator with human-like time warp.

``task.demo(scene, rng)`` returns a waypoint plan with nominal durations; this source warps
them (:func:`sim.augment.retime.warp_plan`, leaving the task's ``timed_labels`` as planned),
checks reach and samples the plan at the control period (:func:`sim.control.plan.plan_targets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.augment.retime import HUMAN_WARP, check_range, warp_plan
from sim.control.plan import Targets, plan_targets
from sim.errors import ConfigError
from sim.sources import register_source

if TYPE_CHECKING:
    from sim.control.ik import ArmIK
    from sim.model.scene import Scene


@dataclass
class ScriptedSource:
    """Plan source wrapping ``scene.task.demo``.

    Attributes:
        time_warp: (lo, hi) range of the per-waypoint duration factor (1, 1 = as planned).
        ik: when given, every waypoint is checked against the arm's reach (ReachError).
    """

    time_warp: tuple[float, float] = HUMAN_WARP
    ik: ArmIK | None = None
    name: str = "scripted"

    def plan(self, scene: Scene, rng: np.random.Generator) -> Targets:
        task = scene.task
        if task is None:
            raise ConfigError("the scripted source needs a scene with a task")
        plan = task.demo(scene, rng)
        keep = tuple(getattr(task, "timed_labels", ()))
        plan = warp_plan(plan, rng, *self.time_warp, keep=keep)
        if self.ik is not None:
            for arm, wps in plan.arms.items():
                for w in wps:
                    self.ik.check_reach(arm, w.pose, f"waypoint {w.label!r}")
        start = {arm: scene.ee_pose(arm) for arm in scene.arms}
        grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
        targets = plan_targets(plan, start, grip, scene.control_dt)
        targets.provenance = {
            "source": "scripted",
            "time_warp": list(self.time_warp),
            "durations": {a: [round(w.duration, 6) for w in wps] for a, wps in plan.arms.items()},
        }
        return targets


@register_source("scripted")
def make_scripted(
    scene: Scene,
    time_warp: tuple[float, float] | list[float] = HUMAN_WARP,
    ik: ArmIK | None = None,
) -> ScriptedSource:
    """Factory: ``make_source("scripted", scene, time_warp=(0.9, 1.15))``."""
    if len(time_warp) != 2:
        raise ConfigError(f"source.time_warp must be (lo, hi), got {time_warp!r}")
    return ScriptedSource(time_warp=check_range("source.time_warp", *time_warp), ik=ik)


def run_attempt(
    scene: Scene,
    ik: ArmIK,
    source,
    seed: int,
    level: str = "D0",
    provenance: dict | None = None,
):
    """One attempt for tests and benchmarks: reset, plan, track, judge; an Episode with the
    schema-1.1 command fields (``target``, ``gripper_cmd``, ``segment``, ``segment_ref``).

    ``sim.generate`` runs the production loop (named streams, randomization, writers); this is
    the minimal version: one ``np.random.default_rng(seed)`` for reset and source.
    """
    from sim.episode import EpisodeMeta
    from sim.rollout import track

    assert scene.task is not None, "run_attempt needs a scene with a task"
    rng = np.random.default_rng(seed)
    scene.reset(rng, level)
    targets = source.plan(scene, rng)
    rec = track(scene, ik, targets)
    meta = EpisodeMeta(
        task=scene.task.name,
        robot=scene.robot.name,
        fps=1.0 / scene.control_dt,
        source=source.name,
        success=bool(scene.task.success(scene)),
        seed=int(seed),
        instruction=scene.task.instruction,
        provenance={"level": level, **targets.provenance, **(provenance or {})},
    )
    ep = rec.episode(scene, meta)
    T = len(ep)
    for arm in targets.pose:
        ep.target[arm] = np.asarray(targets.pose[arm][:T])
        ep.segment[arm] = np.asarray(targets.label[arm][:T], dtype=str)
        ep.segment_ref[arm] = np.asarray(targets.ref.get(arm, [""] * T)[:T], dtype=str)
        if arm in targets.gripper:
            ep.gripper_cmd[arm] = np.asarray(targets.gripper[arm][:T], float)
    return ep
