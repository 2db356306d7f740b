"""Closed-loop evaluation: a policy acts in the task's scene from held-out reset seeds; success
is judged by the task's physics predicate at every control step."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import PhysicsError, SchemaError
from sim.learn.actions import EEActionSpace, mean_pose

log = logging.getLogger(__name__)
EVAL_STREAM = 0x5EED_E7A1  # keeps evaluation seeds apart from generation seeds


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% for z = 1.96)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def eval_seeds(
    n: int, seed: int = 0, exclude: frozenset[int] | set[int] = frozenset()
) -> list[int]:
    """``n`` reset seeds from a stream of their own, skipping any in ``exclude`` (the training
    dataset's episode seeds), so evaluation scenes are held out."""
    out: list[int] = []
    i = 0
    while len(out) < n:
        s = int(np.random.SeedSequence([EVAL_STREAM, seed, i]).generate_state(1)[0])
        i += 1
        if s not in exclude:
            out.append(s)
    return out


@dataclass
class EvalResult:
    """Outcome of ``n`` rollouts."""

    successes: int
    n: int
    seeds: list[int]
    success: list[bool]
    steps: list[int]
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.successes / max(self.n, 1)

    def to_dict(self) -> dict[str, Any]:
        lo, hi = wilson_interval(self.successes, self.n)
        return {
            "success_rate": self.rate,
            "ci95": [lo, hi],
            "successes": self.successes,
            "rollouts": self.n,
            "seeds": self.seeds,
            "success": self.success,
            "steps": self.steps,
            "failures": self.failures,
            "seconds": self.seconds,
        }


class Evaluator:
    """Builds the task's scene once and runs rollouts of a policy in it.

    Args:
        task, robot, level, control_hz: the scene (control_hz must match the dataset's fps).
        obs_keys, obs_names: the policy's observation features (checked against the scene).
        cameras: policy image inputs (rendered at ``image_size``, quality "fast").
        max_steps: control steps per rollout before it counts as a timeout.
        where: name used in error messages (the checkpoint file).
        task_params: task constructor overrides (the dataset's ``task_params``).
        action_space: the policy's EE action space (None: joint targets). EE actions are
            decoded against the observed EE poses and executed as the generator does
            (:func:`sim.rollout.execute`): ``ArmIK`` reset to the joints at reset, one
            ``solve`` per control step for every arm (arms without predictions hold their
            pose, grippers without predictions their opening).
    """

    def __init__(
        self,
        task: str,
        robot: Any,
        level: str,
        control_hz: float,
        obs_keys: tuple[str, ...],
        obs_names: dict[str, list[str]],
        max_steps: int,
        cameras: tuple[str, ...] = (),
        image_size: tuple[int, int] = (84, 84),
        where: str = "policy",
        task_params: dict[str, Any] | None = None,
        action_space: EEActionSpace | None = None,
    ):
        from sim.learn.observe import Observer
        from sim.render import CameraRig, resolve_cameras
        from sim.tasks import build_scene

        self.scene = build_scene(robot, task, control_hz=control_hz, task_cfg=task_params)
        self.level, self.max_steps = level, int(max_steps)
        self.observer = Observer(self.scene, obs_keys, obs_names, where)
        self.cameras = tuple(cameras)
        self.rig = None
        if self.cameras:
            self.rig = CameraRig(
                self.scene.model,
                resolve_cameras(self.scene.robot.cameras, self.cameras),
                *image_size,
            )
        self._video_rig = None
        self.space = action_space
        self.ik = None
        if action_space is not None:
            from sim.control.ik import ArmIK

            bad = [a for a in action_space.arms if a not in self.scene.arms]
            bad += [a for a in action_space.gripper_arms if a not in self.scene.gripper_arms]
            if bad:
                raise SchemaError(
                    f"{where}: the policy commands arms {bad} the scene "
                    f"({self.scene.robot.name}) lacks; scene arms {list(self.scene.arms)}, "
                    f"gripper arms {list(self.scene.gripper_arms)}"
                )
            self.ik = ArmIK.for_scene(self.scene)

    def _ee_chunk(self, chunk: np.ndarray, ref: dict[str, np.ndarray] | None) -> np.ndarray:
        """Raw EE actions (C, A) -> (C, 7 * arms + grippers) absolute commands (poses world),
        relative to ``ref`` (the poses at reset) or, if None, to the EE poses now."""
        assert self.space is not None
        if ref is None:
            ref = {a: self.scene.ee_pose(a) for a in self.space.arms}
        poses, grip = self.space.decode(ref, chunk)
        return np.concatenate([*(poses[a] for a in self.space.arms), grip], axis=1)

    def _ensemble(self, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Weighted mean of K predictions (K, W) for one step (EE poses: :func:`mean_pose`)."""
        out = (w[:, None] * preds).sum(0) / w.sum()
        if self.space is not None:
            for i in range(len(self.space.arms)):
                out[7 * i : 7 * i + 7] = mean_pose(preds[:, 7 * i : 7 * i + 7], w)
        return out

    def _action(self, cmd: np.ndarray, hold: dict[str, np.ndarray], grip0: dict[str, float]):
        """One step's command -> the scene action (EE poses through IK; joint targets as is)."""
        if self.space is None:
            return cmd
        scene, n = self.scene, len(self.space.arms)
        goal = {a: cmd[7 * i : 7 * i + 7] for i, a in enumerate(self.space.arms)}
        goal.update(hold)
        grips = dict(zip(self.space.gripper_arms, cmd[7 * n :], strict=True))
        g = [grips.get(a, grip0.get(a, 0.0)) for a in scene.gripper_arms]
        return np.concatenate([self.ik.solve(goal), g])

    def _video_frame(self, size: tuple[int, int], camera: str) -> np.ndarray:
        from sim.render import CameraRig

        if self._video_rig is None:
            cam = self.scene.robot.cameras.get(camera, camera)
            self._video_rig = CameraRig(self.scene.model, {"view": cam}, *size)
        return self._video_rig.render(self.scene.data)["view"]

    def rollout(
        self,
        policy: Any,
        seed: int,
        video: list | None = None,
        video_size: tuple[int, int] = (240, 320),
        video_camera: str = "head",
    ) -> tuple[bool, int, str | None]:
        """One rollout from reset seed ``seed``; returns (success, steps, failure cause)."""
        scene, task = self.scene, self.scene.task
        scene.reset(np.random.default_rng(seed), self.level)
        hist: list[np.ndarray] = []
        imgs_hist: list[dict[str, np.ndarray]] = []
        h = getattr(policy, "history", 1)
        plan: list[np.ndarray] = []
        execute = policy.cfg.execute
        ens = float(getattr(policy.cfg, "ensemble", 0.0))
        pending: list[tuple[int, np.ndarray]] = []  # (query step, chunk) still covering steps
        hold: dict[str, np.ndarray] = {}
        grip0: dict[str, float] = {}
        ref = None  # EE reference poses: at reset, or None (the poses at each query)
        if self.ik is not None:
            self.ik.reset(scene.joint_qpos())
            if getattr(policy.cfg, "ee_reference", "query") == "reset":
                ref = {a: scene.ee_pose(a) for a in self.space.arms}
            hold = {a: scene.ee_pose(a) for a in scene.arms if a not in self.space.arms}
            grip0 = {a: scene.gripper_opening(a) for a in scene.gripper_arms}
        for t in range(self.max_steps):
            if video is not None:
                video.append(self._video_frame(video_size, video_camera))
            query = ens > 0 or not plan
            if query or h > 1:  # the rnn's history runs at the control rate
                hist.append(self.observer(t))
                if self.rig is not None:
                    imgs_hist.append(self.rig.render(scene.data))
                hist, imgs_hist = hist[-h:], imgs_hist[-h:]
            if query:
                obs = np.stack([hist[0]] * (h - len(hist)) + hist) if h > 1 else hist[-1]
                images = None
                if self.rig is not None:
                    seq = [imgs_hist[0]] * (h - len(imgs_hist)) + imgs_hist
                    images = (
                        {c: np.stack([f[c] for f in seq]) for c in self.cameras}
                        if h > 1
                        else seq[-1]
                    )
                chunk = policy.act(obs, images)
                if self.space is not None:
                    chunk = self._ee_chunk(chunk, ref)
                if ens > 0:
                    pending = [(q, c) for q, c in pending if t - q < len(c)] + [(t, chunk)]
                    preds = np.stack([c[t - q] for q, c in pending])  # oldest first
                    w = np.exp(-ens * np.arange(len(preds)))
                    plan = [self._ensemble(preds, w)]
                else:
                    plan = list(chunk[:execute])
            try:
                scene.set_action(self._action(plan.pop(0), hold, grip0))
                scene.step()
            except PhysicsError as e:
                log.info("rollout seed %d: unstable physics at step %d: %s", seed, t, e)
                return False, t + 1, "physics_unstable"
            if task.success(scene):
                if video is not None:
                    video.append(self._video_frame(video_size, video_camera))
                return True, t + 1, None
        return False, self.max_steps, "timeout"

    def run(
        self,
        policy: Any,
        seeds: list[int],
        video_rollouts: int = 0,
        video_size: tuple[int, int] = (240, 320),
        video_camera: str = "head",
    ) -> tuple[EvalResult, list[np.ndarray]]:
        """Roll out from each seed; frames of the first ``video_rollouts`` rollouts returned."""
        t0 = time.perf_counter()
        ok, steps, frames = [], [], []
        failures: Counter[str] = Counter()
        for i, seed in enumerate(seeds):
            video = [] if i < video_rollouts else None
            s, n, cause = self.rollout(policy, seed, video, video_size, video_camera)
            ok.append(s)
            steps.append(n)
            if cause:
                failures[cause] += 1
            if video:
                frames += video
        res = EvalResult(
            successes=int(sum(ok)),
            n=len(seeds),
            seeds=list(seeds),
            success=ok,
            steps=steps,
            failures=dict(failures),
            seconds=time.perf_counter() - t0,
        )
        return res, frames

    def close(self) -> None:
        for rig in (self.rig, self._video_rig):
            if rig is not None:
                rig.close()
        self.rig = self._video_rig = None
