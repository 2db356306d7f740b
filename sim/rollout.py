"""Execute per-step targets in physics and record an Episode: targets -> IK -> joint targets ->
mj_step. One attempt (:func:`run_attempt`) is the same for every plan source.

IK runs on the robot-alone model and never reads the physics, so :func:`execute` solves it for
the whole attempt first, converts the actions to actuator targets in one go
(:meth:`Scene.action_ctrl`), then steps physics with only the recording (and the cameras)
between steps: less Python interleaved with ``mj_step``, the same bytes as stepping one action
at a time.
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

    Observation at step t is recorded before action t is applied (LeRobot convention). A step
    stores only what MuJoCo computed for it (the integration state, EE site and object frames)
    into arrays sized by :meth:`begin`; joint positions, velocities and gripper openings are
    sliced from the states, and quaternions converted, once per episode in :meth:`episode`.
    With ``video`` (a :class:`sim.io.lerobot.stream.VideoStream`), frames go to that encoder
    instead of being kept; the episode's ``images`` are then filled by the caller from
    ``video.finish()``.
    """

    video: Any = None
    action: np.ndarray | None = None
    subtasks: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)
    gripper_cmd: dict = field(default_factory=dict)
    segment: dict = field(default_factory=dict)
    segment_ref: dict = field(default_factory=dict)
    n: int = 0  # steps recorded so far
    _state: np.ndarray | None = field(default=None, repr=False)
    _site_pos: np.ndarray | None = field(default=None, repr=False)
    _site_mat: np.ndarray | None = field(default=None, repr=False)
    _obj_pos: np.ndarray | None = field(default=None, repr=False)
    _obj_quat: np.ndarray | None = field(default=None, repr=False)
    _weld_opening: dict = field(default_factory=dict, repr=False)

    def begin(self, scene: Scene, steps: int) -> None:
        """Size the per-step arrays for ``steps`` control steps of ``scene``."""
        m = scene.model
        self.n = 0
        self._arms = list(scene.arms)
        self._sites = np.array([scene.ee_site[a] for a in self._arms], dtype=np.intp)
        self._objs = scene.object_names()
        self._bodies = np.array([scene.body_id(o) for o in self._objs], dtype=np.intp)
        self._state = np.empty((steps, mujoco.mj_stateSize(m, STATE_SPEC)))
        self._site_pos = np.empty((steps, len(self._sites), 3))
        self._site_mat = np.empty((steps, len(self._sites), 9))
        self._obj_pos = np.empty((steps, len(self._bodies), 3))
        self._obj_quat = np.empty((steps, len(self._bodies), 4))
        self._weld_opening = {
            a: []
            for a in scene.gripper_arms
            if scene.robot.arms[a].gripper.weld  # type: ignore[union-attr]
        }

    def add(self, scene: Scene, frames: dict[str, np.ndarray] | None) -> None:
        """Record the current state (the action applied next is recorded with the commands)."""
        d, t = scene.data, self.n
        mujoco.mj_getState(scene.model, d, self._state[t], STATE_SPEC)
        self._site_pos[t] = d.site_xpos[self._sites]
        self._site_mat[t] = d.site_xmat[self._sites]
        self._obj_pos[t] = d.xpos[self._bodies]
        self._obj_quat[t] = d.xquat[self._bodies]
        for arm, lst in self._weld_opening.items():
            lst.append(scene.gripper_opening(arm))
        if scene.task is not None:
            for k, v in scene.task.subtasks(scene).items():
                self.subtasks.setdefault(k, []).append(bool(v))
        if frames and self.video is not None:
            self.video.push(frames)
        else:
            for k, v in (frames or {}).items():
                self.images.setdefault(k, []).append(v)
        self.n = t + 1

    def set_commands(
        self,
        action: np.ndarray,
        target: dict[str, np.ndarray],
        gripper: dict[str, np.ndarray],
        label: dict[str, Any],
        ref: dict[str, Any],
    ) -> None:
        """The applied actions (T, n_action), commanded EE targets (T, 7), gripper commands
        (T,), segment labels and reference objects (T,) per arm for all recorded steps (what
        :func:`execute` commanded)."""
        self.action = np.array(action, dtype=np.float64)
        self.target = {a: np.array(v, dtype=np.float64) for a, v in target.items()}
        self.gripper_cmd = {a: np.array(v, dtype=np.float64) for a, v in gripper.items()}
        self.segment = {a: list(v) for a, v in label.items()}
        self.segment_ref = {a: list(v) for a, v in ref.items()}

    def episode(self, scene: Scene, meta: EpisodeMeta) -> Episode:
        T, m = self.n, scene.model
        state = self._state[:T] if self._state is not None else np.empty((0, 0))
        at = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_TIME)  # qpos, then qvel
        qpos_all = state[:, at : at + m.nq]
        qvel = state[:, at + m.nq + scene.dof_adr]
        gripper = {}
        for arm in scene.gripper_arms:
            g = scene.robot.arms[arm].gripper
            if arm in self._weld_opening:
                gripper[arm] = np.array(self._weld_opening[arm], dtype=np.float64)
            elif g is None or arm not in scene.gripper_qpos_adr:
                gripper[arm] = np.zeros(T)
            else:  # as Scene.gripper_opening, for every step at once
                q = qpos_all[:, scene.gripper_qpos_adr[arm]]
                gripper[arm] = np.clip(g.opening_for(q), 0.0, 1.0)
        quat = np.empty((T, len(self._arms), 4))
        for t in range(T):  # MuJoCo's own conversion, as Scene.ee_pose
            for i in range(len(self._arms)):
                mujoco.mju_mat2Quat(quat[t, i], self._site_mat[t, i])
        arm_joints = {a: list(s.joints) for a, s in scene.robot.arms.items()}
        action = self.action if self.action is not None else np.empty((0, len(scene.action_names)))
        return Episode(
            meta=meta,
            time=np.arange(T) * scene.control_dt,
            joint_names=list(scene.joint_names),
            qpos=qpos_all[:, scene.qpos_adr],
            qvel=qvel,
            action_names=list(scene.action_names),
            action=action[:T],
            ee={
                a: np.concatenate([self._site_pos[:T, i], quat[:, i]], axis=1)
                for i, a in enumerate(self._arms)
            },
            gripper=gripper,
            objects={
                o: np.concatenate([self._obj_pos[:T, i], self._obj_quat[:T, i]], axis=1)
                for i, o in enumerate(self._objs)
            },
            subtasks={k: np.array(v, dtype=bool) for k, v in self.subtasks.items()},
            images={k: np.stack(v) for k, v in self.images.items()},
            target={k: np.array(v) for k, v in self.target.items()},
            gripper_cmd={k: np.array(v, dtype=np.float64) for k, v in self.gripper_cmd.items()},
            segment={k: np.array(v, dtype=str) for k, v in self.segment.items()},
            segment_ref={k: np.array(v, dtype=str) for k, v in self.segment_ref.items()},
            state=state if T else None,
            state_spec=STATE_SPEC if T else None,
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
    # IK first, for the whole attempt: it tracks the targets on the robot-alone model from its
    # own previous solution, never from the physics, so the actions are known before any step
    ik.reset(scene.joint_qpos())
    n_joint = len(scene.joint_names)
    actions = np.empty((T, len(scene.action_names)))
    poses = list(targets.pose.items())
    for t in range(T):
        goal = {arm: p[t] for arm, p in poses}
        goal.update(hold)
        actions[t, :n_joint] = ik.solve(goal)
    if grip_cols is not None:
        actions[:, n_joint:] = grip_cols
    ctrl = scene.action_ctrl(actions)  # None: a weld gripper reacts to contacts step by step
    d = scene.data
    rec.begin(scene, T)
    for t in range(T):
        rec.add(scene, rig.render(d) if rig else None)
        if ctrl is None:
            scene.set_action(actions[t])
        else:
            idx, values = ctrl
            d.ctrl[idx] = values[t]
        scene.step()
    rec.set_commands(
        actions,
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
