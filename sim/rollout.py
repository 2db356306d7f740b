"""Execute a plan in physics and record an Episode: plan -> IK -> joint targets -> mj_step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.control.ik import ArmIK
from sim.control.plan import Plan, Targets, plan_targets
from sim.episode import Episode, EpisodeMeta
from sim.model.scene import Scene
from sim.render import CameraRig


@dataclass
class Recorder:
    """Accumulates per-step observations, actions, subtask signals and frames."""

    qpos: list = field(default_factory=list)
    qvel: list = field(default_factory=list)
    action: list = field(default_factory=list)
    ee: dict = field(default_factory=dict)
    gripper: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    subtasks: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)

    def add(self, scene: Scene, action: np.ndarray, frames: dict[str, np.ndarray] | None) -> None:
        obs = scene.observe()
        self.qpos.append(obs["qpos"])
        self.qvel.append(obs["qvel"])
        self.action.append(np.array(action, dtype=np.float64))  # copy: caller reuses its buffer
        for group in ("ee", "gripper", "objects"):
            for k, v in obs[group].items():
                getattr(self, group).setdefault(k, []).append(v)
        if scene.task is not None:
            for k, v in scene.task.subtasks(scene).items():
                self.subtasks.setdefault(k, []).append(bool(v))
        for k, v in (frames or {}).items():
            self.images.setdefault(k, []).append(v)

    def episode(self, scene: Scene, meta: EpisodeMeta) -> Episode:
        T = len(self.action)
        return Episode(
            meta=meta,
            time=np.arange(T) * scene.control_dt,
            joint_names=list(scene.joint_names),
            qpos=np.array(self.qpos),
            qvel=np.array(self.qvel),
            action_names=list(scene.action_names),
            action=np.array(self.action),
            ee={k: np.array(v) for k, v in self.ee.items()},
            gripper={k: np.array(v, dtype=np.float64) for k, v in self.gripper.items()},
            objects={k: np.array(v) for k, v in self.objects.items()},
            subtasks={k: np.array(v, dtype=bool) for k, v in self.subtasks.items()},
            images={k: np.stack(v) for k, v in self.images.items()},
        )


def check_plan_reach(ik: ArmIK, plan: Plan) -> None:
    """Raise ReachError naming the first waypoint beyond an arm's reach."""
    for arm, wps in plan.arms.items():
        for w in wps:
            ik.check_reach(arm, w.pose, f"waypoint {w.label!r}")


def track(
    scene: Scene,
    ik: ArmIK,
    targets: Targets,
    rig: CameraRig | None = None,
    recorder: Recorder | None = None,
) -> Recorder:
    """Follow per-step EE targets with IK + position control, recording every control step.

    Arms without targets hold their EE pose from the start. Observation at step t is recorded
    before action t is applied (LeRobot convention: obs_t, action_t).
    """
    rec = recorder or Recorder()
    hold = {arm: scene.ee_pose(arm) for arm in scene.arms if arm not in targets.pose}
    hold_grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
    ik.reset(scene.joint_qpos())
    n_joint = len(scene.joint_names)
    action = np.empty(len(scene.action_names))
    for t in range(len(targets)):
        goal = {arm: targets.pose[arm][t] for arm in targets.pose}
        goal.update(hold)
        action[:n_joint] = ik.solve(goal)
        for i, arm in enumerate(scene.gripper_arms):
            g = targets.gripper.get(arm)
            action[n_joint + i] = g[t] if g is not None else hold_grip[arm]
        rec.add(scene, action, rig.render(scene.data) if rig else None)
        scene.set_action(action)
        scene.step()
    return rec


def run_scripted(
    scene: Scene,
    ik: ArmIK,
    seed: int,
    level: str = "D0",
    rig: CameraRig | None = None,
    provenance: dict[str, Any] | None = None,
) -> Episode:
    """Reset with ``seed``, run the task's scripted demonstrator, judge success in physics."""
    assert scene.task is not None, "run_scripted needs a scene with a task"
    rng = np.random.default_rng(seed)
    scene.reset(rng, level)
    plan = scene.task.demo(scene, rng)
    check_plan_reach(ik, plan)
    start = {arm: scene.ee_pose(arm) for arm in scene.arms}
    grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
    targets = plan_targets(plan, start, grip, scene.control_dt)
    rec = track(scene, ik, targets, rig)
    meta = EpisodeMeta(
        task=scene.task.name,
        robot=scene.robot.name,
        fps=1.0 / scene.control_dt,
        source="scripted",
        success=bool(scene.task.success(scene)),
        seed=int(seed),
        instruction=scene.task.instruction,
        provenance={"level": level, "demonstrator": "scripted", **(provenance or {})},
    )
    return rec.episode(scene, meta)
