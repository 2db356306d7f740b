"""Sweep summaries: every job of a multirun -> one row (DGR, episodes/min, cost, failures) + plots.

The Hydra-specific part (reading a multirun folder's ``.hydra/`` files) lives in
:mod:`sim.cli.sweep`, which hands each job over as a :class:`JobInfo`; this module reads the
generation reports, judges each job and writes the table and plots.

A job is ``ok`` when its dataset's report loads; otherwise it is ``failed`` with the first reason
found: the job's status file (written by the sweep launchers in ``conf/hydra/launcher/``), the
last error line of its log, a report that does not load, or a missing report.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import SimError

#: Written into each job folder by the launchers of ``sim.cli.sweep`` (status, reason, seconds).
JOB_STATUS_NAME = "demoforge_job.json"


@dataclass(frozen=True)
class JobInfo:
    """One job of a multirun, as found on disk.

    Attributes:
        num: Hydra job number.
        dir: the job's folder ("" when the job never started).
        overrides: the job's overrides (``key=value``).
        dataset: its dataset path (absolute), or None when unknown.
        status: content of :data:`JOB_STATUS_NAME`, or None.
        log_error: last error line of the job's log, or None.
        reason: a failure already known (e.g. "never started"), or None.
    """

    num: int
    dir: str
    overrides: tuple[str, ...]
    dataset: str | None = None
    status: dict[str, Any] | None = None
    log_error: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class JobRow:
    """One row of the summary table (metrics are None for failed jobs)."""

    num: int
    overrides: tuple[str, ...]
    status: str  # "ok" | "failed"
    reason: str = ""
    task: str = ""
    level: str = ""
    episodes: int | None = None
    attempts: int | None = None
    dgr: float | None = None
    episodes_per_min: float | None = None
    cpu_seconds_per_episode: float | None = None
    cost_per_episode: float | None = None
    wall_seconds: float | None = None
    failures: dict[str, int] = field(default_factory=dict)
    dataset: str = ""
    dir: str = ""
    swept: tuple[str, ...] = ()  # the overrides that differ between the sweep's jobs

    @property
    def label(self) -> str:
        return " ".join(self.swept or self.overrides) or f"job {self.num}"


def _failed(info: JobInfo, reason: str) -> JobRow:
    return JobRow(
        num=info.num,
        overrides=info.overrides,
        status="failed",
        reason=reason,
        dataset=info.dataset or "",
        dir=info.dir,
    )


def job_row(info: JobInfo, params=None, volume: float = 10000.0) -> JobRow:
    """Judge one job: read its report, or say why it has none."""
    from sim.report import find_report, load_report

    if info.reason:
        return _failed(info, info.reason)
    st = info.status or {}
    if st.get("status") == "failed":
        reason = str(st.get("reason") or "failed (no reason recorded)")
        return _failed(info, reason.removeprefix("demoforge: error: "))
    if not info.dataset:
        return _failed(info, info.log_error or "the job's output.dir is unknown")
    try:
        find_report(info.dataset)
    except SimError:
        return _failed(
            info,
            info.log_error
            or (
                f"no generation report at {info.dataset} (the job raised or was killed; "
                f"see {info.dir or 'its log'})"
            ),
        )
    try:
        rep = load_report(info.dataset)
    except SimError as e:
        return _failed(info, str(e))
    cost = None
    if params is not None and rep.episodes > 0:
        from sim.cost import measure, sim_cost

        cost = sim_cost(params, measure([rep]), volume).per_episode
    return JobRow(
        num=info.num,
        overrides=info.overrides,
        status="ok",
        task=rep.task,
        level=rep.level,
        episodes=rep.episodes,
        attempts=rep.attempts,
        dgr=rep.episodes / rep.attempts if rep.attempts else 0.0,
        episodes_per_min=rep.episodes_per_min
        or (60.0 * rep.episodes / rep.wall_seconds if rep.wall_seconds else None),
        cpu_seconds_per_episode=rep.cpu_seconds / rep.episodes if rep.episodes else None,
        cost_per_episode=cost,
        wall_seconds=rep.wall_seconds,
        failures=dict(rep.failures),
        dataset=info.dataset,
        dir=info.dir,
    )


def summarize_sweep(jobs: list[JobInfo], params=None, volume: float = 10000.0) -> list[JobRow]:
    """Rows for every job, in job-number order; labels keep the overrides that vary."""
    from dataclasses import replace

    rows = [job_row(j, params, volume) for j in sorted(jobs, key=lambda j: j.num)]
    values: dict[str, set[str]] = {}
    for r in rows:
        for o in r.overrides:
            k, _, v = o.partition("=")
            values.setdefault(k, set()).add(v)
    varying = {k for k, v in values.items() if len(v) > 1}
    return [
        replace(r, swept=tuple(o for o in r.overrides if o.partition("=")[0] in varying))
        for r in rows
    ]


# ------------------------------------------------------------------ table
COLUMNS = (
    "job",
    "overrides",
    "status",
    "DGR",
    "episodes",
    "attempts",
    "episodes/min",
    "CPU s/episode",
    "cost/episode",
    "failures",
    "reason",
)


def _fmt(x: float | None, spec: str) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def cells(r: JobRow, currency: str = "USD") -> list[str]:
    from sim.cost_report import money

    fails = ", ".join(f"{k}={v}" for k, v in sorted(r.failures.items()))
    return [
        str(r.num),
        r.label,
        r.status,
        _fmt(r.dgr, ".0%"),
        _fmt(r.episodes, "d"),
        _fmt(r.attempts, "d"),
        _fmt(r.episodes_per_min, ".1f"),
        _fmt(r.cpu_seconds_per_episode, ".3g"),
        "" if r.cost_per_episode is None else money(r.cost_per_episode, currency),
        fails,
        r.reason,
    ]


def text_table(rows: list[JobRow], currency: str = "USD") -> str:
    """A fixed-width table for the terminal."""
    data = [list(COLUMNS)] + [cells(r, currency) for r in rows]
    widths = [max(len(row[i]) for row in data) for i in range(len(COLUMNS) - 1)]
    out = []
    for row in data:
        out.append(
            "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        )
    return "\n".join(line.rstrip() for line in out)


def markdown_table(rows: list[JobRow], currency: str = "USD") -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(esc(c) for c in cells(r, currency)) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ plots and files
def plot_sweep(rows: list[JobRow], path: Path) -> Path:
    """DGR and episodes/min per job (failed jobs shown as red gaps)."""
    from sim.cost_report import _plt

    plt = _plt()
    labels = [r.label for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.4 * len(rows) + 2.0))
    for ax, key, title in (
        (axes[0], "dgr", "data generation rate (successes / attempts)"),
        (axes[1], "episodes_per_min", "successful episodes per minute"),
    ):
        vals = [getattr(r, key) or 0.0 for r in rows]
        colors = ["#4c72b0" if r.status == "ok" else "#c44e52" for r in rows]
        ax.barh(range(len(rows)), vals, color=colors)
        for i, r in enumerate(rows):
            if r.status != "ok":
                ax.text(0, i, "  failed", va="center", color="#c44e52", fontsize=8)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_xlim(0, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_sweep_summary(
    rows: list[JobRow], out: str | Path, title: str = "sweep", currency: str = "USD"
) -> dict[str, Path]:
    """Write ``sweep_summary.{md,html,csv,json}`` and ``sweep_summary.png`` into ``out``."""
    from sim.cost_report import finite, html_page
    from sim.io.atomic import atomic_write_json, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_sweep(rows, out / "sweep_summary.png")
    n_ok = sum(r.status == "ok" for r in rows)
    md = "\n".join(
        [
            f"# demoforge sweep summary: {title}",
            "",
            f"{len(rows)} jobs: {n_ok} ok, {len(rows) - n_ok} failed. Cost per episode: sim at the "
            "planned volume (compute measured + fixed costs amortized, conf/cost/).",
            "",
            markdown_table(rows, currency),
            "",
            "## DGR and throughput",
            "",
            "![DGR and throughput](sweep_summary.png)",
            "",
        ]
    )
    atomic_write_text(out / "sweep_summary.md", md)
    atomic_write_text(
        out / "sweep_summary.html",
        html_page(f"demoforge sweep summary: {title}", None, md, {"DGR and throughput": png}),
    )
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(cells(r, currency))
    atomic_write_text(out / "sweep_summary.csv", buf.getvalue())
    atomic_write_json(out / "sweep_summary.json", finite([asdict(r) for r in rows]))
    return {
        "md": out / "sweep_summary.md",
        "html": out / "sweep_summary.html",
        "csv": out / "sweep_summary.csv",
        "json": out / "sweep_summary.json",
        "png": png,
    }
