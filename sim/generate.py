"""The generation pipeline: sample scene -> plan -> execute -> success filter -> record.

Determinism: attempt ``i`` of a run with seed ``s`` uses the episode seed derived from
``SeedSequence([s, i])``; successes are kept in attempt order, so the dataset is byte-identical
for any number of workers. Resume: progress is kept beside the writer's staged episodes and a
re-run with ``resume=True`` continues after the last staged attempt.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ConfigError, OutputExistsError, PhysicsError, ReachError, UnknownNameError
from sim.render import CameraConfig

log = logging.getLogger(__name__)
FORMATS = ("lerobot", "robomimic")
DATA_KEYS = ("task", "robot", "seed", "level", "control_hz", "cameras", "task_params", "format")


@dataclass(frozen=True)
class GenerateConfig:
    """A generation run. ``robot`` is a registry name, YAML path or parsed robot dict."""

    task: str = "stack_blocks"
    robot: Any = "demoforge_humanoid"
    episodes: int = 10
    seed: int = 0
    level: str = "D0"
    workers: int = 1
    control_hz: float = 20.0
    max_attempts: int | None = None
    cameras: CameraConfig = field(default_factory=CameraConfig)
    output: str = "data/stack_blocks"
    format: str = "lerobot"
    overwrite: bool = False
    resume: bool = False
    task_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerateResult:
    """What a run produced; also written as ``meta/demoforge_report.json``."""

    path: str
    episodes: int
    attempts: int
    failures: dict[str, int]
    seconds: float
    episodes_per_min: float

    @property
    def success_rate(self) -> float:
        return self.episodes / max(self.attempts, 1)


def episode_seed(seed: int, index: int) -> int:
    """Seed of attempt ``index`` in a run with ``seed`` (independent of worker count)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def validate(cfg: GenerateConfig) -> None:
    """Fail fast, naming the config key, before any work starts."""
    from sim.model.robot import load_robot
    from sim.tasks import LEVELS, known_tasks

    if cfg.task not in known_tasks():
        raise UnknownNameError("task", cfg.task, known_tasks())
    load_robot(cfg.robot)
    if cfg.level not in LEVELS:
        raise UnknownNameError("level", cfg.level, LEVELS)
    if cfg.format not in FORMATS:
        raise UnknownNameError("output format", cfg.format, FORMATS)
    for key, v in (("episodes", cfg.episodes), ("workers", cfg.workers)):
        if v < 1:
            raise ConfigError(f"{key} must be >= 1, got {v}")
    c = cfg.cameras
    if c.names and (c.height <= 0 or c.width <= 0):
        raise ConfigError(f"cameras.height and cameras.width must be > 0, got {c.height}x{c.width}")
    out = Path(cfg.output)
    if out.exists() and not cfg.overwrite:
        raise OutputExistsError(
            f"output {out} already exists; choose another output.dir or set output.overwrite=true"
        )


# ------------------------------------------------------------------ worker side
_WORKER: dict[str, Any] = {}


def _init_worker(cfg: GenerateConfig) -> None:
    """Build scene, IK and renderer once per process; reused for every episode."""
    from sim.control.ik import ArmIK
    from sim.model.scene import build_scene
    from sim.render import CameraRig, resolve_cameras

    scene = build_scene(cfg.robot, cfg.task, control_hz=cfg.control_hz, task_cfg=cfg.task_params)
    rig = None
    if cfg.cameras.names:
        cams = resolve_cameras(scene.robot.cameras, cfg.cameras.names)
        rig = CameraRig(scene.model, cams, cfg.cameras.height, cfg.cameras.width,
                        cfg.cameras.quality)
    _WORKER.update(cfg=cfg, scene=scene, ik=ArmIK(scene), rig=rig)


def _attempt(index: int):
    """Run attempt ``index``; return (index, episode or None, failure reason or None)."""
    from sim.rollout import run_scripted

    cfg: GenerateConfig = _WORKER["cfg"]
    seed = episode_seed(cfg.seed, index)
    try:
        ep = run_scripted(
            _WORKER["scene"], _WORKER["ik"], seed, cfg.level, _WORKER["rig"],
            provenance={"attempt": index, "run_seed": cfg.seed},
        )
    except PhysicsError as e:
        log.warning("attempt %d (seed %d): unstable physics: %s", index, seed, e)
        return index, None, "physics_unstable"
    except ReachError as e:
        log.warning("attempt %d (seed %d): %s", index, seed, e)
        return index, None, "unreachable"
    if not ep.meta.success:
        return index, None, "task_failed"
    return index, ep, None


def _results(cfg: GenerateConfig, start: int, stop: int) -> Iterator[tuple]:
    """Yield attempt results in attempt order, from one process or a pool."""
    if cfg.workers == 1:
        if not _WORKER or _WORKER.get("cfg") != cfg:
            _init_worker(cfg)
        for i in range(start, stop):
            yield _attempt(i)
        return
    ctx = get_context("spawn")  # GL contexts must not cross a fork
    with ProcessPoolExecutor(cfg.workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(cfg,)) as pool:
        yield from pool.map(_attempt, range(start, stop), chunksize=1)


# ------------------------------------------------------------------ driver
def generate(cfg: GenerateConfig, progress: bool = True) -> GenerateResult:
    """Generate ``cfg.episodes`` successful episodes and write the dataset atomically."""
    validate(cfg)
    os.environ.setdefault("LP_NUM_THREADS", "1" if cfg.workers > 1 else "0")
    out = Path(cfg.output)
    max_attempts = cfg.max_attempts or max(3 * cfg.episodes, cfg.episodes + 10)
    writer, state_file = _open_writer(cfg, out)
    state = _load_progress(state_file, writer.num_staged) if cfg.resume else None
    written = writer.num_staged
    next_attempt = state["next_attempt"] if state else 0
    failures: Counter[str] = Counter(state["failures"] if state else {})
    t0 = time.perf_counter()
    bar = _progress_bar(progress, cfg.episodes, written, cfg.task)
    try:
        if written < cfg.episodes and next_attempt < max_attempts:
            for index, ep, reason in _results(cfg, next_attempt, max_attempts):
                if reason:
                    failures[reason] += 1
                else:
                    _save_progress(state_file, written, index, failures, pending=index)
                    writer.add(ep)
                    written += 1
                    if bar:
                        bar.update(1)
                _save_progress(state_file, written, index + 1, failures)
                next_attempt = index + 1
                if bar:
                    bar.set_postfix(attempts=next_attempt, failed=sum(failures.values()))
                if written >= cfg.episodes:
                    break
    finally:
        if bar:
            bar.close()
    if written == 0:
        raise PhysicsError(
            f"no successful episode in {next_attempt} attempts of task {cfg.task!r} "
            f"(failures: {dict(failures)}); nothing written, staging kept at {state_file.parent}"
        )
    seconds = time.perf_counter() - t0
    result = GenerateResult(
        path=str(out), episodes=written, attempts=next_attempt, failures=dict(failures),
        seconds=seconds, episodes_per_min=60 * (written - (state or {}).get("written", 0))
        / max(seconds, 1e-9),
    )
    _finish(cfg, writer, out, result)
    state_file.unlink(missing_ok=True)  # (inside .partial for LeRobot, already gone with it)
    return result


def _open_writer(cfg: GenerateConfig, out: Path):
    from sim.io.lerobot import LeRobotWriter

    # only what determines the data: resuming with other values is refused by the writer
    config = {k: v for k, v in asdict(cfg).items() if k in DATA_KEYS}
    if cfg.format == "lerobot":
        w = LeRobotWriter(out, fps=int(round(cfg.control_hz)), config=config,
                          overwrite=cfg.overwrite, resume=cfg.resume)
        return w, w.partial / "generate_progress.json"
    return _MemoryWriter(cfg, out), out.with_name(out.name + ".progress.json")


class _MemoryWriter:
    """Collects episodes for formats written in one go (robomimic HDF5, written atomically)."""

    def __init__(self, cfg: GenerateConfig, out: Path):
        self.cfg, self.out, self.episodes = cfg, out, []
        self.partial = out.with_name(out.name + ".partial")

    @property
    def num_staged(self) -> int:
        return len(self.episodes)

    def add(self, ep) -> None:
        self.episodes.append(ep)

    def finalize(self) -> Path:
        from sim.io.robomimic import write_robomimic

        env_args = {"env_name": self.cfg.task, "env_version": "demoforge", "type": 4,
                    "env_kwargs": {"robot": str(self.cfg.robot), "level": self.cfg.level}}
        write_robomimic(self.episodes, self.out, env_args=env_args)
        return self.out


def _finish(cfg: GenerateConfig, writer, out: Path, result: GenerateResult) -> None:
    """Finalize the dataset (atomic rename), then write the quality report beside it."""
    from sim.io.atomic import atomic_write_json

    final = Path(writer.finalize())
    report = {**asdict(result), "success_rate": result.success_rate, "config": asdict(cfg)}
    path = final / "meta" / "demoforge_report.json" if final.is_dir() else final.with_suffix(
        ".report.json")
    atomic_write_json(path, report)


def _save_progress(path: Path, written: int, next_attempt: int, failures: Counter,
                   pending: int | None = None) -> None:
    from sim.io.atomic import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"written": written, "next_attempt": next_attempt,
                             "failures": dict(failures), "pending": pending})


def _load_progress(path: Path, staged: int) -> dict | None:
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if staged == state["written"] + 1 and state.get("pending") is not None:
        state.update(written=staged, next_attempt=state["pending"] + 1, pending=None)
    elif staged != state["written"]:
        raise ConfigError(
            f"{path}: records {state['written']} written episodes but {staged} are staged; "
            "cannot resume safely (use output.overwrite=true)"
        )
    return state


def _progress_bar(enabled: bool, total: int, initial: int, task: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"generate {task}", unit="ep")
