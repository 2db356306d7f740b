"""One train-and-evaluate run: dataset -> BC policy -> closed-loop success in physics.

The run folder holds ``config.json`` (the resolved config), ``checkpoint.pt``, ``metrics.json``
(success rate with a 95% Wilson interval, learning curve, losses, timings), ``learning_curve.png``
and ``rollouts.mp4`` (the first few evaluation rollouts).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ConfigError, OutputExistsError
from sim.learn.data import DEFAULT_OBS
from sim.learn.policy import PolicyConfig
from sim.learn.train import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    """Closed-loop evaluation.

    Attributes:
        rollouts: final evaluation rollouts (>= 50 for a reported number).
        seed: evaluation seed stream (reset seeds are drawn from it, dataset seeds skipped).
        level: reset level (None: the dataset's generation level, else D0).
        max_steps: control steps per rollout (None: 1.5 x the longest training episode).
        curve_every: gradient steps between learning-curve points (0: final point only).
        curve_rollouts: rollouts per intermediate learning-curve point.
        video_rollouts: rollouts recorded to rollouts.mp4 (0: no video).
        video_size: (H, W) [px]; ``video_camera`` robot camera name or MJCF camera.
    """

    rollouts: int = 50
    seed: int = 0
    level: str | None = None
    max_steps: int | None = None
    curve_every: int = 0
    curve_rollouts: int = 10
    video_rollouts: int = 3
    video_size: tuple[int, int] = (240, 320)
    video_camera: str = "head"


@dataclass(frozen=True)
class TrainEvalConfig:
    """A train-and-evaluate run.

    Attributes:
        dataset: LeRobot dataset directory (demoforge-written).
        output: run folder.
        task: expected task (None: the dataset's); a mismatch is an error.
        obs: observation feature keys (``prefix.*`` patterns allowed).
        cameras: image inputs (camera names of ``observation.images.<cam>``); empty: low-dim.
        image_size: (H, W) the images are stored at [px].
        episodes: train on the first this many episodes (None: all).
        checkpoint: evaluate this checkpoint instead of training one.
        overwrite: replace an existing run folder's results.
    """

    dataset: str = ""
    output: str = "runs/train_eval"
    task: str | None = None
    obs: tuple[str, ...] = DEFAULT_OBS
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (84, 84)
    episodes: int | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: str | None = None
    overwrite: bool = False


def _check_output(cfg: TrainEvalConfig) -> Path:
    out = Path(cfg.output)
    if (out / "metrics.json").exists() and not cfg.overwrite:
        raise OutputExistsError(
            f"run folder {out} already has metrics.json; choose another output or set "
            "overwrite=true"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def train_eval(cfg: TrainEvalConfig) -> dict[str, Any]:
    """Train (or load) a policy, evaluate it closed-loop, write the run folder; return metrics."""
    from sim.io.atomic import atomic_write_json
    from sim.learn.actions import GRIPPER, TARGET
    from sim.learn.checkpoint import PolicyMeta, load_checkpoint, save_checkpoint
    from sim.learn.data import load_bc_data
    from sim.learn.evaluate import Evaluator, eval_seeds, wilson_interval
    from sim.learn.train import action_targets, ee_space, make_policy, train

    if not cfg.dataset and not cfg.checkpoint:
        raise ConfigError("dataset is required (a LeRobot dataset directory), or a checkpoint")
    cfg.policy.validate()
    cfg.train.validate()
    if cfg.eval.rollouts < 1:
        raise ConfigError(f"eval.rollouts must be >= 1, got {cfg.eval.rollouts}")
    out = _check_output(cfg)
    atomic_write_json(out / "config.json", asdict(cfg))
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    data = None
    if cfg.checkpoint:
        policy, meta = load_checkpoint(cfg.checkpoint, cfg.task)
        where = str(cfg.checkpoint)
        exclude: frozenset[int] = frozenset()
    else:
        ee = cfg.policy.action_space == "ee"
        extra = (TARGET + "*", GRIPPER + "*") if ee else ()
        data = load_bc_data(cfg.dataset, cfg.obs, cfg.cameras, cfg.episodes, extra)
        if cfg.task is not None and cfg.task != data.task:
            raise ConfigError(
                f"dataset {cfg.dataset} holds task {data.task!r}, but task={cfg.task!r} was "
                "asked for"
            )
        targets = action_targets(data, cfg.policy)
        space = ee_space(data) if ee else None
        timing["load_s"] = time.perf_counter() - t0
        gc = data.gen_config
        meta = PolicyMeta(
            task=data.task,
            robot=gc.get("robot", data.robot),
            level=gc.get("level", "D0"),
            fps=float(data.fps),
            obs_keys=data.obs_keys,
            obs_names=data.obs_names,
            action_names=space.names if space else data.action_names,
            cameras=tuple(cfg.cameras),
            image_size=tuple(cfg.image_size),
            max_steps=int(1.5 * data.lengths.max()),
            dataset=str(cfg.dataset),
            train_steps=cfg.train.total_steps(len(data.episode)),
            task_params=dict(gc.get("task_params") or {}),
            action_arms=space.arms if space else (),
            gripper_arms=space.gripper_arms if space else (),
        )
        policy = make_policy(data, cfg.policy, tuple(cfg.cameras), cfg.train.seed, targets)
        where = str(out / "checkpoint.pt")
        exclude = data.seeds
    level = cfg.eval.level or meta.level
    max_steps = cfg.eval.max_steps or meta.max_steps
    evaluator = Evaluator(
        meta.task,
        meta.robot,
        level,
        meta.fps,
        meta.obs_keys,
        meta.obs_names,
        max_steps,
        meta.cameras,
        meta.image_size,
        where,
        meta.task_params,
        meta.action_space(),
    )
    seeds = eval_seeds(cfg.eval.rollouts, cfg.eval.seed, exclude)
    curve: list[dict[str, Any]] = []
    curve_s = [0.0]

    def on_eval(step: int, pol) -> None:
        if step >= meta.train_steps:
            return  # the final point is the full evaluation below
        t = time.perf_counter()
        r, _ = evaluator.run(pol, seeds[: cfg.eval.curve_rollouts])
        lo, hi = wilson_interval(r.successes, r.n)
        curve.append({"step": step, "success_rate": r.rate, "ci95": [lo, hi], "rollouts": r.n})
        log.info("step %d: success %d/%d", step, r.successes, r.n)
        curve_s[0] += time.perf_counter() - t

    losses: list[dict[str, float]] = []
    try:
        if data is not None:
            t = time.perf_counter()
            losses = train(data, policy, cfg.train, on_eval, cfg.eval.curve_every, targets)
            del targets
            timing["train_s"] = time.perf_counter() - t - curve_s[0]
            timing["curve_eval_s"] = curve_s[0]
            save_checkpoint(out / "checkpoint.pt", policy, meta)
        t = time.perf_counter()
        res, frames = evaluator.run(
            policy, seeds, cfg.eval.video_rollouts, cfg.eval.video_size, cfg.eval.video_camera
        )
        timing["eval_s"] = time.perf_counter() - t
    finally:
        evaluator.close()
    final = res.to_dict()
    curve.append(
        {
            "step": meta.train_steps if data is not None else 0,
            "success_rate": res.rate,
            "ci95": final["ci95"],
            "rollouts": res.n,
        }
    )
    if frames:
        from sim.render import write_video

        t = time.perf_counter()
        write_video(np.stack(frames), out / "rollouts.mp4", meta.fps)
        timing["video_s"] = time.perf_counter() - t
    timing["total_s"] = time.perf_counter() - t0
    metrics = {
        "task": meta.task,
        "robot": meta.robot,
        "level": level,
        "dataset": meta.dataset,
        "episodes": int(data.num_episodes) if data is not None else None,
        "frames": int(len(data.episode)) if data is not None else None,
        "checkpoint": where,
        "max_steps": max_steps,
        "eval": final,
        "learning_curve": curve,
        "losses": losses,
        "timing_s": timing,
    }
    atomic_write_json(out / "metrics.json", metrics)
    _plot_curve(curve, out / "learning_curve.png", meta.task)
    return metrics


def _plot_curve(curve: list[dict[str, Any]], path: Path, task: str) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [c["step"] for c in curve]
    rate = np.array([c["success_rate"] for c in curve])
    lo = np.array([c["ci95"][0] for c in curve])
    hi = np.array([c["ci95"][1] for c in curve])
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, rate, "o-")
    ax.fill_between(steps, lo, hi, alpha=0.25)
    ax.set(
        xlabel="training step",
        ylabel="success rate",
        ylim=(-0.02, 1.02),
        title=f"{task}: closed-loop success (95% Wilson)",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
