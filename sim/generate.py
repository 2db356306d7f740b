"""The generation pipeline, written once for every plan source.

One attempt (:mod:`sim.workers`): named rng streams -> reset -> randomize -> ``source.plan`` ->
execute (IK -> joint targets -> physics) -> stability check -> success judged in physics.
This module validates the whole config before touching the disk, opens a staged writer, runs
the attempts on an executor (in-process, a process pool or Ray), keeps successes in attempt
order, stages the report and plots beside the data and publishes everything with one rename.

Determinism: attempt ``i`` of a run seeded ``s`` draws only from streams derived from
``(s, i)``; successes are kept in attempt order, so the data is byte-identical for any number
of workers or executor. Resume: progress is kept inside the staging folder and a re-run with
``output.resume=true`` continues after the last staged attempt (also after a crash in
finalize).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ConfigError, OutputExistsError, PhysicsError, UnknownNameError
from sim.quality import StabilityLimits
from sim.render import QUALITY, CameraConfig

log = logging.getLogger(__name__)
FORMATS = ("lerobot", "robomimic")
EXECUTORS = ("local", "ray")
MAX_WORKERS = 256
PROGRESS_FILE = "generate_progress.json"
#: per-attempt quality rows (reset pose, success, smoothness), appended at each commit: the
#: progress file stays small, so saving it costs the same at attempt 10 and at attempt 100,000
STATS_LOG = "generate_stats.jsonl"


@dataclass(frozen=True)
class TaskConfig:
    """The task by registry name and its constructor parameters (``conf/task/<name>.yaml``)."""

    name: str = "stack_blocks"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputConfig:
    """Where and how the dataset is written.

    Attributes:
        dir: final dataset directory (staged as ``<dir>.partial`` until complete).
        format: ``lerobot`` (v3.0) or ``robomimic`` (``<dir>/demo.hdf5``).
        overwrite: replace an existing dataset / discard an unfinished one.
        resume: continue an unfinished run of the same config.
        keep_failures: also write the failed attempts that ran to the end (task not solved,
            unstable physics after the fact) to a second dataset ``<dir>_failed`` of the same
            format (MimicGen's ``demo_failed.hdf5``), each with ``success`` False and its cause
            in ``provenance["failure"]``; never mixed into the training data.
    """

    dir: str = "data/out"
    format: str = "lerobot"
    overwrite: bool = False
    resume: bool = False
    keep_failures: bool = False


@dataclass(frozen=True)
class AugmentConfig:
    """Perturbations applied on top of any plan source.

    Attributes:
        noise: action noise scale in MimicGen's convention (a fraction of a controller's
            5 cm per-step range): every step's EE target position gets Gaussian noise of std
            ``0.05 * noise`` m, drawn from the attempt's ``noise`` stream (0 = none; MimicGen
            uses 0.05, i.e. 2.5 mm).
        randomize: domain randomization preset name (``conf/randomize/<name>.yaml``) or an
            inline config (physics, visual, camera, distractors); ``none`` for none.
    """

    noise: float = 0.0
    randomize: Any = "none"


@dataclass(frozen=True)
class GenerateConfig:
    """A generation run; also the typed schema of ``demoforge-generate`` (sim/cli/generate.py).

    ``robot`` is a registry name, YAML path or parsed robot dict. From Python, ``task`` may be
    a name (with ``task_params``) and ``output`` a directory path.

    ``source`` is a plan-source name (``scripted``, ``demos``) or a path to a dataset of source
    demos (shorthand for ``source=demos`` with ``source_params.path=<path>``).
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    robot: Any = "demoforge_humanoid"
    episodes: int = 10
    seed: int = 0
    level: str = "D0"
    workers: int = 1
    control_hz: float = 20.0
    max_attempts: int | None = None
    cameras: CameraConfig = field(default_factory=CameraConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    task_params: dict[str, Any] = field(default_factory=dict)
    source: str = "scripted"
    source_params: dict[str, Any] = field(default_factory=dict)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    stability: StabilityLimits = field(default_factory=StabilityLimits)
    executor: str = "local"
    ray_address: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        # Python convenience: output="path"; Hydra/OmegaConf hands tuples over as lists.
        if isinstance(self.output, (str, os.PathLike)):
            object.__setattr__(self, "output", OutputConfig(dir=str(self.output)))
        if isinstance(self.task, str):
            object.__setattr__(self, "task", TaskConfig(self.task, dict(self.task_params)))
        elif self.task_params:
            object.__setattr__(
                self, "task", replace(self.task, params={**self.task.params, **self.task_params})
            )
        object.__setattr__(self, "task_params", {})
        c = self.cameras
        if not isinstance(c.names, tuple):
            object.__setattr__(self, "cameras", replace(c, names=tuple(c.names)))

    @property
    def source_name(self) -> str:
        from sim.sources import known_sources

        return self.source if self.source in known_sources() else "demos"

    @property
    def resolved_source_params(self) -> dict[str, Any]:
        params = dict(self.source_params)
        if self.source_name != self.source:
            params.setdefault("path", self.source)
        return params


#: Config keys that determine the data (resuming with other values is refused).
DATA_KEYS = (
    "task",
    "robot",
    "seed",
    "level",
    "control_hz",
    "cameras",
    "task_params",
    "source",
    "source_params",
    "augment",
    "stability",
    "format",
)


@dataclass
class GenerateResult:
    """What a run produced (the report in ``meta/demoforge_report.json`` has more)."""

    path: str
    episodes: int
    attempts: int
    failures: dict[str, int]
    seconds: float
    episodes_per_min: float
    cpu_seconds: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return self.episodes / max(self.attempts, 1)


def episode_seed(seed: int, index: int) -> int:
    """Seed recorded as ``meta.seed`` for attempt ``index`` of a run with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def data_config(cfg: GenerateConfig) -> dict[str, Any]:
    """The part of the config that determines the data, JSON-able (stored in the dataset)."""
    d = asdict(cfg)
    d.update(task=cfg.task.name, task_params=dict(cfg.task.params), format=cfg.output.format)
    return json.loads(json.dumps({k: d[k] for k in DATA_KEYS}, default=str))


def config_hash(cfg: GenerateConfig) -> str:
    """sha256 (16 hex digits) of :func:`data_config`."""
    blob = json.dumps(data_config(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# ------------------------------------------------------------------ validation
def validate(cfg: GenerateConfig, build: bool = True) -> None:
    """Check every setting before anything touches the disk; errors name the key.

    With ``build``, also builds the scene once (robot, task params, cameras and control rate
    are checked against the compiled model) and the plan source (source files are read and
    checked).
    """
    from sim.tasks import LEVELS, known_tasks

    if cfg.task.name not in known_tasks():
        raise UnknownNameError("task", cfg.task.name, known_tasks())
    if cfg.level not in LEVELS:
        raise UnknownNameError("level", cfg.level, LEVELS)
    if cfg.output.format not in FORMATS:
        raise UnknownNameError("output format", cfg.output.format, FORMATS)
    from sim.sources import known_sources

    if cfg.source not in known_sources() and not Path(cfg.source).exists():
        raise ConfigError(
            f"source {cfg.source!r} is neither a plan source ({', '.join(known_sources())}) nor "
            "an existing dataset path"
        )
    if cfg.executor not in EXECUTORS:
        raise UnknownNameError("executor", cfg.executor, EXECUTORS)
    _check_int("episodes", cfg.episodes, 1, 10**9)
    _check_int("seed", cfg.seed, 0, 2**63 - 1)
    _check_int("workers", cfg.workers, 1, MAX_WORKERS)
    if cfg.max_attempts is not None:
        _check_int("max_attempts", cfg.max_attempts, 1, 10**10)
    if not (
        isinstance(cfg.control_hz, (int, float))
        and np.isfinite(cfg.control_hz)
        and cfg.control_hz > 0
    ):
        raise ConfigError(f"control_hz must be a number > 0 [Hz], got {cfg.control_hz!r}")
    c = cfg.cameras
    if c.names and (c.height <= 0 or c.width <= 0):
        raise ConfigError(f"cameras.height and cameras.width must be > 0, got {c.height}x{c.width}")
    if c.quality not in QUALITY:
        raise UnknownNameError("cameras.quality", c.quality, list(QUALITY))
    if len(set(c.names)) != len(c.names):
        raise ConfigError(f"cameras.names has duplicates: {list(c.names)}")
    if not (np.isfinite(cfg.augment.noise) and cfg.augment.noise >= 0):
        raise ConfigError(f"augment.noise must be >= 0, got {cfg.augment.noise!r}")
    for f in fields(StabilityLimits):
        v = getattr(cfg.stability, f.name)
        if not (isinstance(v, (int, float)) and v > 0):
            raise ConfigError(f"stability.{f.name} must be > 0, got {v!r}")
    out = Path(cfg.output.dir)
    partial = out.with_name(out.name + ".partial")
    crashed_after_publish = cfg.output.resume and partial.exists()
    if out.exists() and not (cfg.output.overwrite or crashed_after_publish):
        raise OutputExistsError(
            f"output {out} already exists; choose another output.dir or set output.overwrite=true"
        )
    if partial.exists() and not (cfg.output.resume or cfg.output.overwrite):
        raise OutputExistsError(
            f"unfinished run {partial} exists; set output.resume=true to continue it or "
            "output.overwrite=true to discard it"
        )
    if cfg.output.resume and partial.exists():
        _check_resume(cfg, partial)
    if build:
        from sim.workers import local_context

        local_context(cfg)  # scene, cameras, source, randomizer: raises naming the key (cached)


def _check_int(key: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ConfigError(f"{key} must be >= {lo} and <= {hi} (an integer), got {v!r}")


def _check_resume(cfg: GenerateConfig, partial: Path) -> None:
    """Refuse to resume with another data config (naming the keys) or fewer episodes."""
    p = partial / PROGRESS_FILE
    if not p.exists():
        return
    try:
        state = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: progress file unreadable ({e}); use output.overwrite=true") from e
    old, new = state.get("config", {}), data_config(cfg)
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        detail = "; ".join(f"{k}: staged {old.get(k)!r} vs now {new.get(k)!r}" for k in diff)
        raise ConfigError(
            f"cannot resume {partial}: config keys differ from the staged run ({detail}); "
            "rerun with the same values or use output.overwrite=true"
        )
    if state.get("written", 0) > cfg.episodes:  # the exact count is checked once it is open
        raise ConfigError(
            f"cannot resume {partial}: {state['written']} episodes are already staged but "
            f"episodes={cfg.episodes}; ask for at least {state['written']}"
        )


# ------------------------------------------------------------------ driver
def generate(cfg: GenerateConfig, progress: bool | None = None) -> GenerateResult:
    """Generate ``cfg.episodes`` successful episodes and publish the dataset atomically."""
    from sim.workers import local_context, start_pool, stop_pool

    validate(cfg, build=False)  # settings only; workers then start while the parent builds
    pool = start_pool(cfg)
    try:
        local_context(cfg)  # scene, cameras, source, randomizer: raises naming the key
        return _generate(cfg, progress, pool)
    finally:
        if pool is not None:
            stop_pool(pool)  # a no-op after a finished run (attempt_results shut it down)


def _generate(cfg: GenerateConfig, progress: bool | None, pool: Any) -> GenerateResult:
    from sim.workers import attempt_results

    progress = cfg.progress if progress is None else progress
    out = Path(cfg.output.dir)
    max_attempts = cfg.max_attempts or max(3 * cfg.episodes, cfg.episodes + 10)
    writer = _open_writer(cfg, out)
    if getattr(writer, "published", False):  # killed after the rename: only clean up
        return _published_result(Path(writer.finalize()))
    failed_writer = _open_writer(cfg, failed_dir(out)) if cfg.output.keep_failures else None
    state_file = writer.partial / PROGRESS_FILE
    n_failed = failed_writer.num_staged if failed_writer else 0
    state = (
        _load_progress(state_file, writer.num_staged, n_failed, cfg.output.keep_failures)
        if cfg.output.resume
        else None
    )
    fresh = state is None
    state = state or {
        "written": 0,
        "next_attempt": 0,
        "failures": {},
        "cpu_seconds": 0.0,
        "failed_written": 0,
    }
    if writer.num_staged > cfg.episodes:  # the exact count, known once the writer is open
        raise ConfigError(
            f"cannot resume {writer.partial}: {writer.num_staged} episodes are already staged "
            f"but episodes={cfg.episodes}; ask for at least {writer.num_staged}"
        )
    failures: Counter[str] = Counter(state["failures"])
    failed_written = state.get("failed_written", 0)
    stats_log = writer.partial / STATS_LOG
    if fresh:
        stats_log.unlink(missing_ok=True)
    stats = _new_stats() if fresh else _resume_stats(stats_log, state)
    unsaved: list[dict[str, Any]] = []  # stats rows of attempts since the last save
    written, next_attempt = writer.num_staged, state["next_attempt"]
    written_before = written
    t0, cpu0 = time.perf_counter(), time.process_time()
    cpu_attempts = 0.0
    bar = _progress_bar(progress, cfg.episodes, written, cfg.task.name)

    def save(next_attempt: int, **pending: Any) -> None:
        cpu = state["cpu_seconds"] + cpu_attempts
        _append_stats(stats_log, unsaved)  # first: the progress file then vouches for them
        unsaved.clear()
        _save_progress(
            state_file, cfg, written, next_attempt, failures, cpu,
            failed_written=failed_written, **pending,
        )  # fmt: skip

    try:
        if written < cfg.episodes and next_attempt < max_attempts:
            for res in attempt_results(cfg, next_attempt, max_attempts, pool):
                cpu_attempts += res.cpu_seconds
                row = _stats_row(res)
                if row is not None:
                    _add_stats(stats, row)
                    unsaved.append(row)
                if res.cause:
                    if failed_writer is not None and res.episode is not None:
                        save(res.index, pending_failed=[res.index, res.cause])
                        failed_writer.add(res.episode)
                        failed_written += 1
                    failures[res.cause] += 1
                else:
                    save(res.index, pending=res.index)
                    _kill_point(f"saved:{res.index}")
                    writer.add(res.episode)
                    written += 1
                    if bar:
                        bar.update(1)
                # No save per attempt: the state is saved with each commit (pending above);
                # attempts after the last commit are simply run again on resume (same seeds,
                # same results), so their counts can't be lost or doubled.
                next_attempt = res.index + 1
                if bar:
                    bar.set_postfix(
                        attempts=next_attempt,
                        dgr=f"{written / next_attempt:.0%}",
                        failed=sum(failures.values()),
                    )
                _kill_point(f"attempt:{res.index}")
                if written >= cfg.episodes:
                    break
    finally:
        if bar:
            bar.close()
    save(next_attempt)
    if written == 0:
        raise PhysicsError(
            f"no successful episode in {next_attempt} attempts of task {cfg.task.name!r} "
            f"(failures: {dict(failures)}); nothing written, staging kept at {writer.partial}"
        )
    wall = time.perf_counter() - t0
    cpu = state["cpu_seconds"] + cpu_attempts + (time.process_time() - cpu0)
    report = _report(
        cfg,
        out,
        written,
        next_attempt,
        failures,
        stats,
        wall,
        cpu,
        60 * (written - written_before) / max(wall, 1e-9),
    )
    report["failures_dataset"] = None
    if failed_writer is not None:
        report["failures_dataset"] = _finalize_failed(failed_writer, failed_dir(out))
    _stage_report(writer, report, stats)
    _kill_point("staged")
    final = Path(writer.finalize())
    return GenerateResult(
        path=str(final),
        episodes=written,
        attempts=next_attempt,
        failures=dict(failures),
        seconds=wall,
        episodes_per_min=report["episodes_per_min"],
        cpu_seconds=cpu,
        report=report,
    )


def _published_result(final: Path) -> GenerateResult:
    from sim.report import load_report

    rep = load_report(final)
    return GenerateResult(
        path=str(final),
        episodes=rep.episodes,
        attempts=rep.attempts,
        failures=rep.failures,
        seconds=rep.wall_seconds,
        episodes_per_min=rep.episodes_per_min,
        cpu_seconds=rep.cpu_seconds,
        report=rep.to_dict(),
    )


def _kill_point(name: str) -> None:
    """Test hook: SIGKILL this process at ``name`` when ``DEMOFORGE_KILL_AT`` equals it."""
    if os.environ.get("DEMOFORGE_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _open_writer(cfg: GenerateConfig, out: Path):
    """The format's staged writer (fresh, overwrite or resume)."""
    o = cfg.output
    config = {**data_config(cfg), "config_hash": config_hash(cfg)}
    from sim.io.writer import open_writer
    from sim.workers import local_context

    xml = local_context(cfg).scene.mjcf_xml()  # reset-to-state needs the model
    return open_writer(
        o.format,
        out,
        fps=int(round(cfg.control_hz)),
        config=config,
        overwrite=o.overwrite,
        resume=o.resume,
        model_xml=xml,
    )


# ------------------------------------------------------------------ report
def _new_stats() -> dict[str, list]:
    return {"reset_xy": [], "success": [], "max_joint_speed": [], "max_joint_jerk": [], "jumps": []}


_SMOOTHNESS = ("max_joint_speed", "max_joint_jerk", "jumps")


def _stats_row(res: Any) -> dict[str, Any] | None:
    """The quality-report row of one attempt (None when it carries nothing)."""
    row: dict[str, Any] = {"attempt": int(res.index)}
    if res.reset_xy is not None:
        row["reset_xy"] = [float(v) for v in res.reset_xy]
        row["success"] = res.cause is None
    if res.cause is None and res.smoothness:
        row.update({k: res.smoothness[k] for k in _SMOOTHNESS})
    return row if len(row) > 1 else None


def _add_stats(stats: dict[str, list], row: dict[str, Any]) -> None:
    if "legacy" in row:  # a whole stats dict, from a progress file of an earlier release
        for k, v in row["legacy"].items():
            stats.setdefault(k, []).extend(v)
        return
    if "reset_xy" in row:
        stats["reset_xy"].append(row["reset_xy"])
        stats["success"].append(row["success"])
    if "max_joint_speed" in row:
        for k in _SMOOTHNESS:
            stats[k].append(row[k])


def _jsonl(rows: list[dict[str, Any]]) -> str:
    from sim.io.atomic import to_jsonable

    return "".join(json.dumps(to_jsonable(r), separators=(",", ":")) + "\n" for r in rows)


def _append_stats(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to the stats log, durably (before the progress file that counts them)."""
    if not rows:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(_jsonl(rows))
        fh.flush()
        os.fsync(fh.fileno())


def _resume_stats(path: Path, state: dict[str, Any]) -> dict[str, list]:
    """The quality stats of the attempts before ``state['next_attempt']``, from the stats log.

    Rows of later attempts (run after the last commit, so run again now) and a line torn by a
    crash are dropped, and the log is rewritten with the rows kept. A progress file of an
    earlier release holds its stats inline; they become the log's first row.
    """
    from sim.io.atomic import atomic_write_text

    stats = _new_stats()
    rows: list[dict[str, Any]] = []
    if "stats" in state:
        rows.append({"attempt": -1, "legacy": state.pop("stats")})
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for k, line in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("attempt"), int):
                raise ValueError("expected an object with an integer 'attempt'")
        except ValueError as e:
            if k == len(lines) - 1:  # torn by a crash mid-append: never counted
                break
            raise ConfigError(
                f"{path}: line {k + 1} unreadable ({e}); use output.overwrite=true"
            ) from e
        if row["attempt"] < state["next_attempt"]:
            rows.append(row)
    for row in rows:
        _add_stats(stats, row)
    atomic_write_text(path, _jsonl(rows))
    return stats


def _report(
    cfg: GenerateConfig,
    out: Path,
    written: int,
    attempts: int,
    failures: Counter,
    stats: dict[str, list],
    wall: float,
    cpu: float,
    epm: float,
) -> dict[str, Any]:
    from sim.quality import coverage
    from sim.report import GenerationReport

    robot = cfg.robot if isinstance(cfg.robot, str) else dict(cfg.robot).get("name", "robot")
    cov = coverage(np.array(stats["reset_xy"]), np.array(stats["success"], bool))
    speeds = stats["max_joint_speed"]
    quality = {
        "dgr": {cfg.task.name: {cfg.level: written / max(attempts, 1)}},
        "coverage": cov,
        "smoothness": {
            "max_joint_speed": max(speeds, default=0.0),
            "max_joint_jerk": max(stats["max_joint_jerk"], default=0.0),
            "episodes_with_jumps": int(sum(1 for j in stats["jumps"] if j)),
            "max_joint_speed_per_episode": speeds,
        },
        "cpu_seconds_per_success": cpu / max(written, 1),
        "config_hash": config_hash(cfg),
    }
    from sim.workers import local_context

    params = cfg.resolved_source_params
    source = local_context(cfg).source
    rep = GenerationReport(
        path=str(out),
        task=cfg.task.name,
        robot=str(robot),
        level=cfg.level,
        source=cfg.source_name,
        source_dataset=str(params.get("path", "")),
        source_episodes=len(getattr(source, "episodes", None) or ()),
        episodes=written,
        attempts=attempts,
        failures=dict(failures),
        wall_seconds=wall,
        cpu_seconds=cpu,
        gpu_seconds=0.0,
        workers=cfg.workers,
        episodes_per_min=epm,
        success_rate=written / max(attempts, 1),
        quality=quality,
        config=json.loads(json.dumps(asdict(cfg), default=str)),
    )
    return rep.to_dict()


def _stage_report(writer: Any, report: dict[str, Any], stats: dict[str, list]) -> None:
    """Stage the report JSON and quality plot inside the writer's staging area."""
    import tempfile

    from sim.io.atomic import to_jsonable
    from sim.quality import plot_quality

    writer.stage_file(
        "meta/demoforge_report.json", json.dumps(to_jsonable(report), indent=2).encode()
    )
    with tempfile.TemporaryDirectory() as d:
        png = plot_quality(
            report, np.array(stats["reset_xy"]), np.array(stats["success"]), Path(d) / "quality.png"
        )
        writer.stage_file("meta/quality.png", png.read_bytes())


# ------------------------------------------------------------------ progress
def _save_progress(
    path: Path,
    cfg: GenerateConfig,
    written: int,
    next_attempt: int,
    failures: Counter,
    cpu: float,
    pending: int | None = None,
    failed_written: int = 0,
    pending_failed: list | None = None,
) -> None:
    from sim.io.atomic import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        path,
        {
            "written": written,
            "next_attempt": next_attempt,
            "failures": dict(failures),
            "pending": pending,
            "cpu_seconds": cpu,
            "config": data_config(cfg),
            "keep_failures": cfg.output.keep_failures,
            "failed_written": failed_written,
            "pending_failed": pending_failed,
        },
        indent=None,
    )


def failed_dir(out: Path) -> Path:
    """Where ``output.keep_failures`` writes the failed attempts: ``<dir>_failed``."""
    return out.with_name(out.name + "_failed")


def _finalize_failed(failed_writer: Any, where: Path) -> str | None:
    """Publish the failures dataset (None, and no folder left, when nothing failed)."""
    from sim.io.atomic import remove_tree

    if failed_writer.published:
        return str(where)
    if failed_writer.num_staged == 0:
        remove_tree(failed_writer.partial)
        return None
    return str(failed_writer.finalize())


def _reconcile_failed(state: dict, path: Path, staged: int, keep: bool) -> None:
    """Match the progress file with the failures dataset's staged episodes (see generate)."""
    if bool(state.get("keep_failures", False)) != keep:
        raise ConfigError(
            f"{path}: the unfinished run had output.keep_failures="
            f"{state.get('keep_failures', False)}, now {keep}; resume with the same value"
        )
    done = state.setdefault("failed_written", 0)
    pend = state.get("pending_failed")
    if keep and staged == done + 1 and pend is not None:  # killed right after staging it
        index, cause = pend
        state["failures"][cause] = state["failures"].get(cause, 0) + 1
        state.update(failed_written=staged, next_attempt=index + 1, pending_failed=None)
    elif keep and staged != done:
        raise ConfigError(
            f"{path}: records {done} failed episodes but {staged} are staged in the failures "
            "dataset; cannot resume safely (use output.overwrite=true)"
        )


def _load_progress(path: Path, staged: int, failed: int = 0, keep: bool = False) -> dict | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{path}: progress file unreadable ({e}); use output.overwrite=true"
        ) from e
    if staged == state["written"] + 1 and state.get("pending") is not None:
        state.update(written=staged, next_attempt=state["pending"] + 1, pending=None)
    elif staged != state["written"]:
        raise ConfigError(
            f"{path}: records {state['written']} written episodes but {staged} are staged; "
            "cannot resume safely (use output.overwrite=true)"
        )
    state.setdefault("cpu_seconds", 0.0)
    _reconcile_failed(state, path, failed, keep)
    return state


def _progress_bar(enabled: bool, total: int, initial: int, task: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"generate {task}", unit="ep")
