"""The generation report: what one run measured, read by the cost model and sweep summaries.

Written by :func:`sim.generate.generate` as ``meta/demoforge_report.json`` inside the dataset
(staged with the data and published with it). Times are measured, never assumed:
``cpu_seconds`` is the process CPU time of the run's own process plus its workers
(``os.times``/``resource``), ``gpu_seconds`` the wall time a GPU was in use (0 on CPU-only runs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sim.errors import FormatError

#: Bump when a field changes meaning; readers refuse other versions with a clear error.
REPORT_VERSION = 2
REPORT_NAME = "demoforge_report.json"


@dataclass
class GenerationReport:
    """One generation run (all counts for this run, resumed parts included).

    Attributes:
        report_version: :data:`REPORT_VERSION`.
        path: dataset path.
        task, robot, level, source: what was generated; ``source`` is the plan-source name.
        source_dataset: path of the source demos (``source=demos``), else "".
        source_episodes: number of human/source demos the run drew from (0 for scripted).
        episodes: successful episodes written.
        attempts: attempts made.
        failures: cause -> count (grasp_missed, object_dropped, collision, timeout,
            physics_unstable, unreachable, ik_failed, task_failed, ...).
        wall_seconds: wall-clock time of the run [s].
        cpu_seconds: CPU time of the run and its workers [s].
        gpu_seconds: GPU time [s] (0 without a GPU).
        workers: worker processes.
        episodes_per_min: successful episodes per wall minute.
        success_rate: episodes / attempts (the data generation rate, DGR).
        quality: coverage, smoothness and other quality measures.
        config: the resolved run configuration.
        failures_dataset: the dataset of kept failed attempts (``output.keep_failures``), or
            None.
    """

    path: str
    task: str
    robot: str
    level: str
    source: str
    episodes: int
    attempts: int
    failures: dict[str, int]
    wall_seconds: float
    cpu_seconds: float
    gpu_seconds: float = 0.0
    workers: int = 1
    source_dataset: str = ""
    source_episodes: int = 0
    episodes_per_min: float = 0.0
    success_rate: float = 0.0
    quality: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    failures_dataset: str | None = None
    report_version: int = REPORT_VERSION

    @property
    def cpu_seconds_per_success(self) -> float:
        return self.cpu_seconds / max(self.episodes, 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu_seconds_per_success"] = self.cpu_seconds_per_success
        return d


def find_report(path: str | Path) -> Path:
    """The report file of a dataset directory, a robomimic output, or the report file itself."""
    p = Path(path)
    for cand in (p, p / "meta" / REPORT_NAME, p.with_suffix(".report.json")):
        if cand.is_file():
            return cand
    raise FormatError(f"{p}: no generation report ({REPORT_NAME}) found in or beside it")


def load_report(path: str | Path) -> GenerationReport:
    """Read and check a generation report.

    Raises:
        FormatError: missing file, not JSON, another ``report_version``, missing/invalid keys.
    """
    p = find_report(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FormatError(f"{p}: cannot read the generation report ({e})") from e
    if not isinstance(d, dict):
        raise FormatError(f"{p}: generation report must be a JSON object")
    v = d.get("report_version")
    if v != REPORT_VERSION:
        raise FormatError(
            f"{p}: report_version is {v!r}; this demoforge reads version {REPORT_VERSION} "
            "(regenerate the dataset or use the matching demoforge release)"
        )
    known = {f.name for f in fields(GenerationReport)}
    missing = sorted(
        k
        for k in (
            "path",
            "task",
            "robot",
            "level",
            "source",
            "episodes",
            "attempts",
            "failures",
            "wall_seconds",
            "cpu_seconds",
        )
        if k not in d
    )
    if missing:
        raise FormatError(f"{p}: generation report lacks keys {missing}")
    rep = GenerationReport(**{k: v for k, v in d.items() if k in known})
    for k in ("episodes", "attempts", "wall_seconds", "cpu_seconds", "gpu_seconds"):
        val = getattr(rep, k)
        if not isinstance(val, (int, float)) or val < 0:
            raise FormatError(f"{p}: report key {k!r} must be a number >= 0, got {val!r}")
    return rep
