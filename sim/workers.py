"""Where attempts run: the per-process context (scene, IK, cameras, source, randomizer built
once) and the executors that yield attempt results in attempt order (in-process, a process
pool with a bounded number of attempts in flight, or Ray, in :mod:`sim.distributed`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any

from sim.errors import PhysicsError, PlanError, ReachError

if TYPE_CHECKING:
    from sim.episode import Episode
    from sim.generate import GenerateConfig

log = logging.getLogger(__name__)

#: MimicGen's action-noise unit: the 5 cm per-step range of an OSC controller [m].
NOISE_RANGE_M = 0.05


@dataclass
class AttemptResult:
    """One attempt: the episode when it succeeded, else the failure cause and message."""

    index: int
    episode: Episode | None
    cause: str | None
    message: str = ""
    cpu_seconds: float = 0.0
    reset_xy: tuple[float, float] | None = None  # first task object at reset [m, world]
    smoothness: dict[str, float] = field(default_factory=dict)


@dataclass
class Context:
    """Everything an attempt needs, built once per process and reused across attempts."""

    cfg: GenerateConfig
    scene: Any
    ik: Any
    rig: Any
    source: Any
    randomizer: Any
    video_dir: Any = None  # where attempts encode their mp4s (LeRobot output, local executors)


def build_context(cfg: GenerateConfig) -> Context:
    """Build scene, IK, camera rig, plan source and randomizer (errors name the config key)."""
    from sim.control.ik import ArmIK
    from sim.render import CameraRig, resolve_cameras
    from sim.sources import make_source
    from sim.tasks import build_scene

    randomize = _randomize_config(cfg)
    edits = []
    if randomize is not None:
        from sim.augment.randomize import edit_spec

        edits.append(functools.partial(edit_spec, cfg=randomize))
    scene = build_scene(
        cfg.robot,
        cfg.task.name,
        control_hz=cfg.control_hz,
        task_cfg=cfg.task.params,
        spec_edits=edits,
    )
    rig = None
    if cfg.cameras.names:
        unknown = [
            n
            for n in cfg.cameras.names
            if n not in scene.robot.cameras
            and n not in {scene.model.camera(i).name for i in range(scene.model.ncam)}
        ]
        if unknown:
            from sim.errors import UnknownNameError

            raise UnknownNameError("cameras.names entry", unknown[0], sorted(scene.robot.cameras))
        cams = resolve_cameras(scene.robot.cameras, cfg.cameras.names)
        rig = CameraRig(
            scene.model, cams, cfg.cameras.height, cfg.cameras.width, cfg.cameras.quality
        )
    source = make_source(cfg.source_name, scene, **cfg.resolved_source_params)
    randomizer = _make_randomizer(scene, randomize, rig)
    video_dir = None
    if rig is not None and cfg.output.format == "lerobot" and cfg.executor == "local":
        from sim.io.lerobot.stream import scratch_dir

        video_dir = scratch_dir(cfg.output.dir)
    return Context(
        cfg=cfg,
        scene=scene,
        ik=ArmIK.for_scene(scene),
        rig=rig,
        source=source,
        randomizer=randomizer,
        video_dir=video_dir,
    )


def _randomize_config(cfg: GenerateConfig) -> Any:
    """The domain-randomization config object, or None for ``none``."""
    r = cfg.augment.randomize
    if r in (None, "none", {}, ""):
        return None
    from sim.augment.randomize import load_preset, randomize_config

    rc = load_preset(r) if isinstance(r, str) else randomize_config(dict(r))
    return rc if rc.enabled else None


def _make_randomizer(scene: Any, randomize: Any, rig: Any) -> Any:
    if randomize is None:
        return None
    from sim.augment.randomize import Randomizer

    return Randomizer.from_scene(scene, randomize)


# ------------------------------------------------------------------ one attempt
def run_attempt(ctx: Context, index: int) -> AttemptResult:
    """Run attempt ``index``; never raises for a failed attempt (the cause is returned)."""
    from sim.generate import episode_seed
    from sim.quality import classify_failure, smoothness, stability_violation
    from sim.rollout import Recorder, check_targets_reach, episode_meta, execute
    from sim.sources import attempt_streams

    cfg, scene = ctx.cfg, ctx.scene
    cpu0 = time.process_time()
    streams = attempt_streams(cfg.seed, index)
    seed = episode_seed(cfg.seed, index)
    reset_xy = None

    def fail(cause: str, msg: str, ep: Episode | None = None) -> AttemptResult:
        """A failed attempt; with ``output.keep_failures`` it carries its episode (if it ran)."""
        nonlocal video
        log.info("attempt %d: %s: %s", index, cause, msg)
        kept = None
        if ep is not None and cfg.output.keep_failures:
            prov = {**ep.meta.provenance, "failure": {"cause": cause, "message": msg}}
            kept = dataclasses.replace(
                ep, meta=dataclasses.replace(ep.meta, success=False, provenance=prov)
            )
            if video is not None:
                kept.images = video.finish()
                video = None
        return AttemptResult(index, kept, cause, msg, time.process_time() - cpu0, reset_xy)

    video: Any = None
    if ctx.video_dir is not None:
        from sim.io.lerobot.stream import VideoStream

        video = VideoStream(ctx.video_dir, f"attempt_{index:06d}", round(1 / scene.control_dt))
    try:
        if ctx.randomizer is not None:
            ctx.randomizer.restore(scene.model)
        scene.reset(streams.reset, cfg.level)
        objs = scene.object_names()
        if objs:
            reset_xy = tuple(float(v) for v in scene.body_pose(objs[0])[:2])
        randomized = {}
        if ctx.randomizer is not None:
            randomized = ctx.randomizer.apply(scene.model, scene.data, streams.randomize)
        targets = ctx.source.plan(scene, streams.source)
        check_targets_reach(ctx.ik, targets)
        if cfg.augment.noise > 0:
            from sim.augment.noise import position_noise

            std = NOISE_RANGE_M * cfg.augment.noise
            targets = dataclasses.replace(
                targets,
                pose={
                    arm: position_noise(p, streams.noise, std) for arm, p in targets.pose.items()
                },
            )
        rec = execute(scene, ctx.ik, targets, ctx.rig, Recorder(video=video))
        provenance = {
            "attempt": index,
            "run_seed": cfg.seed,
            "level": cfg.level,
            "source": cfg.source_name,
            "streams": {k: str(v) for k, v in streams.seeds.items()},
            "plan": targets.provenance,
            "randomization": randomized,
            "augment": {"noise": cfg.augment.noise},
        }
        ep = rec.episode(scene, episode_meta(scene, seed, cfg.source_name, provenance))
        bad = stability_violation(
            ep.qvel, ep.objects, scene.control_dt, ep.joint_names, cfg.stability
        )
        if bad:
            return fail("physics_unstable", bad, ep)
        if not ep.meta.success:
            return fail(classify_failure(ep.subtasks), "task not solved at the end", ep)
        if video is not None:
            ep.images = video.finish()
            video = None
    except PhysicsError as e:
        return fail("physics_unstable", str(e))
    except ReachError as e:
        return fail("unreachable", str(e))
    except PlanError as e:
        return fail(e.cause, str(e))
    finally:
        if video is not None:
            video.abort()
    return AttemptResult(
        index,
        ep,
        None,
        "",
        time.process_time() - cpu0,
        reset_xy,
        smoothness(ep.qvel, scene.control_dt),
    )


# ------------------------------------------------------------------ executors
_CTX: dict[str, Context] = {}


def local_context(cfg: GenerateConfig) -> Context:
    """This process's context for ``cfg`` (built once, reused while the config is the same)."""
    ctx = _CTX.get("ctx")
    if ctx is None or ctx.cfg != cfg:
        ctx = build_context(cfg)
        _CTX["ctx"] = ctx
    return ctx


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when its parent dies (no orphans)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(cfg: GenerateConfig) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _CTX["ctx"] = build_context(cfg)


def _worker_attempt(index: int) -> AttemptResult:
    return run_attempt(_CTX["ctx"], index)


def _ready() -> bool:
    return True


def start_pool(cfg: GenerateConfig) -> ProcessPoolExecutor | None:
    """Start the local worker processes now (``workers > 1``), so that they import and build
    their scene while the parent validates the config and opens the writers; None otherwise."""
    if cfg.workers == 1 or cfg.executor != "local":
        return None
    ctx_mp = get_context("spawn")  # GL contexts must not cross a fork
    pool = ProcessPoolExecutor(
        cfg.workers, mp_context=ctx_mp, initializer=_init_worker, initargs=(cfg,)
    )
    for _ in range(cfg.workers):  # processes spawn on demand: one per queued call
        pool.submit(_ready)
    return pool


def attempt_results(
    cfg: GenerateConfig, start: int, stop: int, pool: ProcessPoolExecutor | None = None
) -> Iterator[AttemptResult]:
    """Attempt results for indices ``start..stop-1`` in index order, on the configured executor.

    At most ``2 * workers`` attempts are in flight; the caller may stop iterating at any time.
    ``pool`` is a pool from :func:`start_pool` (one is started here otherwise); it is shut down
    when the iteration ends.
    """
    if cfg.executor == "ray":
        from sim.distributed import ray_attempt_results

        yield from ray_attempt_results(cfg, start, stop)
        return
    if cfg.workers == 1:
        ctx = local_context(cfg)
        for i in range(start, stop):
            yield run_attempt(ctx, i)
        return
    pool = pool or start_pool(cfg)
    assert pool is not None
    window = 2 * cfg.workers
    pending: dict[int, Future] = {}
    nxt = start
    try:
        for i in range(start, stop):
            while nxt < stop and len(pending) < window:
                pending[nxt] = pool.submit(_worker_attempt, nxt)
                nxt += 1
            yield pending.pop(i).result()
    finally:
        stop_pool(pool, pending)


def stop_pool(pool: ProcessPoolExecutor, pending: dict[int, Future] | None = None) -> None:
    """Shut the pool down without waiting for work nobody will read.

    Attempts still running past the last one needed (the in-flight window) are killed instead
    of being run to the end: their results would be dropped, and each costs a whole episode of
    wall time at the end of every run. A killed attempt leaves at most a temporary file in the
    scratch folder, as a crash would; nothing it wrote is ever read. Idempotent.
    """
    running = [f for f in (pending or {}).values() if not f.cancel()]
    if running or pending is None:  # None: never used for attempts (an error on the way)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):  # no API < 3.14
            if proc.is_alive():
                proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
