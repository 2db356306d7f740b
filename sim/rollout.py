"""Execute per-step targets in physics and record an Episode: targets -> IK -> joint targets ->
mj_step. One attempt (:func:`run_attempt`) is the same for every plan source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from sim.control.ik import ArmIK
from sim.control.plan import Plan, Targets, plan_targets
from sim.episode import Episode, EpisodeMeta
from sim.model.scene import Scene
from sim.render import CameraRig

#: MuJoCo state recorded per step (schema 1.1 ``Episode.state``): the integration state (physics,
#: controls, warmstart), so restoring step t and stepping reproduces step t+1 bit for bit.
STATE_SPEC = int(mujoco.mjtState.mjSTATE_INTEGRATION)


@dataclass
class Recorder:
    """Accumulates per-step observations, commands, segment labels, states and frames.

    Observation at step t is recorded before action t is applied (LeRobot convention). With
    ``video`` (a :class:`sim.io.lerobot.stream.VideoStream`), frames go to that encoder instead
    of being kept; the episode's ``images`` are then filled by the caller from ``video.finish()``.
    """

    qpos: list = field(default_factory=list)
    qvel: list = field(default_factory=list)
    action: list = field(default_factory=list)
    ee: dict = field(default_factory=dict)
    gripper: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    subtasks: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)
    gripper_cmd: dict = field(default_factory=dict)
    segment: dict = field(default_factory=dict)
    segment_ref: dict = field(default_factory=dict)
    state: list = field(default_factory=list)
    video: Any = None
    _state_size: int | None = field(default=None, repr=False)

    def add(
        self,
        scene: Scene,
        action: np.ndarray,
        frames: dict[str, np.ndarray] | None,
    ) -> None:
        """Record the current state and ``action`` (the commands of the whole attempt are
        recorded once, by :meth:`set_commands`)."""
        d = scene.data
        if self._state_size is None:
            self._start(scene)
        self.qpos.append(d.qpos[scene.qpos_adr])  # fancy indexing copies
        self.qvel.append(d.qvel[scene.dof_adr])
        self.action.append(np.array(action, dtype=np.float64))  # copy: caller reuses its buffer
        for arm, lst in self.ee.items():
            lst.append(scene.ee_pose(arm))
        for arm, lst in self.gripper.items():
            lst.append(scene.gripper_opening(arm))
        for name, lst in self.objects.items():
            lst.append(scene.body_pose(name))
        if scene.task is not None:
            for k, v in scene.task.subtasks(scene).items():
                self.subtasks.setdefault(k, []).append(bool(v))
        if frames and self.video is not None:
            self.video.push(frames)
        else:
            for k, v in (frames or {}).items():
                self.images.setdefault(k, []).append(v)
        st = np.empty(self._state_size)
        mujoco.mj_getState(scene.model, d, st, STATE_SPEC)
        self.state.append(st)

    def _start(self, scene: Scene) -> None:
        """First step: the per-arm and per-object series (same keys as ``Scene.observe``)."""
        self._state_size = mujoco.mj_stateSize(scene.model, STATE_SPEC)
        self.ee = {arm: [] for arm in scene.arms}
        self.gripper = {arm: [] for arm in scene.gripper_arms}
        self.objects = {o: [] for o in scene.object_names()}

    def set_commands(
        self,
        target: dict[str, np.ndarray],
        gripper: dict[str, np.ndarray],
        label: dict[str, Any],
        ref: dict[str, Any],
    ) -> None:
        """Commanded EE targets (T, 7), gripper commands (T,), segment labels and reference
        objects (T,) per arm for all recorded steps (what :func:`execute` commanded)."""
        self.target = {a: np.array(v, dtype=np.float64) for a, v in target.items()}
        self.gripper_cmd = {a: np.array(v, dtype=np.float64) for a, v in gripper.items()}
        self.segment = {a: list(v) for a, v in label.items()}
        self.segment_ref = {a: list(v) for a, v in ref.items()}

    def episode(self, scene: Scene, meta: EpisodeMeta) -> Episode:
        T = len(self.action)
        arm_joints = {a: list(s.joints) for a, s in scene.robot.arms.items()}
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
            target={k: np.array(v) for k, v in self.target.items()},
            gripper_cmd={k: np.array(v, dtype=np.float64) for k, v in self.gripper_cmd.items()},
            segment={k: np.array(v, dtype=str) for k, v in self.segment.items()},
            segment_ref={k: np.array(v, dtype=str) for k, v in self.segment_ref.items()},
            state=np.array(self.state) if self.state else None,
            state_spec=STATE_SPEC if self.state else None,
            arm_joints=arm_joints,
        )


def check_plan_reach(ik: ArmIK, plan: Plan) -> None:
    """Raise ReachError naming the first waypoint beyond an arm's reach."""
    for arm, wps in plan.arms.items():
        for w in wps:
            ik.check_reach(arm, w.pose, f"waypoint {w.label!r}")


def check_targets_reach(ik: ArmIK, targets: Targets, stride: int = 5) -> None:
    """Raise ReachError at the first (sub-sampled) per-step target beyond an arm's reach."""
    for arm, poses in targets.pose.items():
        labels = targets.label.get(arm) or [""] * len(poses)
        for t in range(0, len(poses), stride):
            ik.check_reach(arm, poses[t], f"target at step {t} ({labels[t] or 'unlabelled'})")


#: Noise hook: (targets, rng) -> targets with perturbed EE poses (see sim.augment).
NoiseFn = Callable[[Targets, np.random.Generator], Targets]


def execute(
    scene: Scene,
    ik: ArmIK,
    targets: Targets,
    rig: CameraRig | None = None,
    recorder: Recorder | None = None,
) -> Recorder:
    """Follow per-step EE targets with IK + position control, recording every control step.

    Arms without targets hold their EE pose from the start; their commanded target (the held
    pose) is recorded too, so every arm has ``target``/``gripper_cmd`` in the episode.
    """
    rec = recorder or Recorder()
    T = len(targets)
    hold = {arm: scene.ee_pose(arm) for arm in scene.arms if arm not in targets.pose}
    hold_grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
    # what each arm is commanded at every step (held arms keep their start pose and opening)
    target = {
        arm: targets.pose[arm] if arm in targets.pose else np.tile(hold[arm], (T, 1))
        for arm in scene.arms
    }
    grip = {
        arm: np.asarray(targets.gripper[arm], dtype=np.float64)
        if arm in targets.gripper
        else np.full(T, hold_grip.get(arm, 0.0))
        for arm in scene.arms
    }
    grip_cols = (
        np.stack([grip[arm] for arm in scene.gripper_arms], axis=1)
        if T and scene.gripper_arms
        else None
    )
    ik.reset(scene.joint_qpos())
    n_joint = len(scene.joint_names)
    action = np.empty(len(scene.action_names))
    poses = list(targets.pose.items())
    for t in range(T):
        goal = {arm: p[t] for arm, p in poses}
        goal.update(hold)
        action[:n_joint] = ik.solve(goal)
        if grip_cols is not None:
            action[n_joint:] = grip_cols[t]
        rec.add(scene, action, rig.render(scene.data) if rig else None)
        scene.set_action(action)
        scene.step()
    rec.set_commands(
        target,
        grip,
        {arm: targets.label.get(arm) or [""] * T for arm in scene.arms},
        {arm: targets.ref.get(arm) or [""] * T for arm in scene.arms},
    )
    return rec


def track(
    scene: Scene,
    ik: ArmIK,
    targets: Targets,
    rig: CameraRig | None = None,
    recorder: Recorder | None = None,
) -> Recorder:
    """Alias of :func:`execute` (kept for callers of the first API)."""
    return execute(scene, ik, targets, rig, recorder)


def episode_meta(
    scene: Scene, seed: int | None, source: str, provenance: dict[str, Any]
) -> EpisodeMeta:
    """Metadata of a simulated attempt, success judged by the task in physics now."""
    assert scene.task is not None
    return EpisodeMeta(
        task=scene.task.name,
        robot=scene.robot.name,
        fps=1.0 / scene.control_dt,
        source=source,
        success=bool(scene.task.success(scene)),
        seed=None if seed is None else int(seed),
        instruction=scene.task.instruction,
        provenance=provenance,
    )


def run_scripted(
    scene: Scene,
    ik: ArmIK,
    seed: int,
    level: str = "D0",
    rig: CameraRig | None = None,
    provenance: dict[str, Any] | None = None,
) -> Episode:
    """Reset with ``seed``, run the task's scripted demonstrator as is, judge success.

    A single rng drives reset and plan (the pipeline uses named streams instead, see
    :func:`sim.sources.attempt_streams`); kept for tests, thumbnails and the bridge.
    """
    assert scene.task is not None, "run_scripted needs a scene with a task"
    rng = np.random.default_rng(seed)
    scene.reset(rng, level)
    plan = scene.task.demo(scene, rng)
    check_plan_reach(ik, plan)
    start = {arm: scene.ee_pose(arm) for arm in scene.arms}
    grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
    targets = plan_targets(plan, start, grip, scene.control_dt)
    rec = execute(scene, ik, targets, rig)
    meta = episode_meta(
        scene, seed, "scripted", {"level": level, "demonstrator": "scripted", **(provenance or {})}
    )
    return rec.episode(scene, meta)
