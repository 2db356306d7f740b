"""Sweeps: launchers that record each job's outcome, and `demoforge-sweep-summary`.

Launchers (``conf/hydra/launcher/``): ``local_parallel`` (joblib), ``submitit_local_jobs``,
``slurm`` (submitit) and ``ray_local`` (hydra-ray-launcher, when installed) are the Hydra
plugins' launchers with one addition: every job writes ``<job dir>/demoforge_job.json``
(status, reason, seconds), and a job that ends with ``sys.exit(n)`` (how the commands report a
bad value) fails alone instead of ending the whole sweep, with the error line it printed as its
reason.

    demoforge-generate -m task=stack_blocks,open_drawer level=D0,D1,D2 hydra/launcher=local_parallel
    demoforge-sweep-summary multirun/2026-12-01/18-00-00
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import MISSING, DictConfig, OmegaConf

from sim.cli.common import fail as _fail
from sim.cli.cost import CostGroupSchema, cost_params, positional_to_override
from sim.errors import ConfigError, SimError
from sim.paths import conf_dir
from sim.sweep import JOB_STATUS_NAME, JobInfo

log = logging.getLogger("demoforge")


# ------------------------------------------------------------------ job side
class JobFailed(Exception):
    """A sweep job ended with a non-zero ``sys.exit``; the message is what it printed."""


class _Tee(io.TextIOBase):
    """Writes through to ``stream`` and keeps the text (to find the job's error line)."""

    def __init__(self, stream):
        self.stream, self.buf = stream, io.StringIO()

    def write(self, s: str) -> int:
        self.buf.write(s)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def error_line(self) -> str | None:
        lines = [ln.strip() for ln in self.buf.getvalue().splitlines() if ln.strip()]
        for ln in reversed(lines):
            if "error" in ln.lower():
                return ln
        return lines[-1] if lines else None


class JobStatusCallback(Callback):
    """Hydra callback: writes ``<job dir>/demoforge_job.json`` (running -> ok | failed + reason).

    In a multirun it also keeps one job's ``sys.exit(n)`` (how the commands report a bad value)
    from ending the whole sweep: during the job, ``sys.exit`` raises :class:`JobFailed` with the
    error line the job printed, which Hydra records as that job's failure; the other jobs run.
    Both are restored when the job ends. Enabled by the launcher configs in
    ``conf/hydra/launcher/`` (or ``+hydra.callbacks.job_status._target_=`` this class).
    """

    def __init__(self) -> None:
        self._t0 = 0.0
        self._started = 0.0
        self._saved: tuple | None = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        self._t0 = time.perf_counter()
        self._write("running", "")
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return
        tee = _Tee(sys.stderr)
        self._saved = (sys.stderr, sys.exit)

        def _exit(code: Any = 0) -> None:
            if code in (None, 0):
                raise SystemExit(code)
            raise JobFailed(tee.error_line() or f"exited with status {code}")

        sys.stderr, sys.exit = tee, _exit

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        if self._saved is not None:
            sys.stderr, sys.exit = self._saved
            self._saved = None
        if job_return.status == JobStatus.COMPLETED:
            self._write("ok", "")
        else:
            e = job_return._return_value
            reason = str(e) if isinstance(e, JobFailed) else f"{type(e).__name__}: {e}"
            self._write("failed", reason)

    def _write(self, status: str, reason: str) -> None:
        from hydra.core.hydra_config import HydraConfig

        from sim.io.atomic import atomic_write_json

        out = Path(HydraConfig.get().runtime.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        now = time.time()
        if status == "running":
            self._started = now
        atomic_write_json(
            out / JOB_STATUS_NAME,
            {
                "status": status,
                "reason": reason,
                "seconds": time.perf_counter() - self._t0,
                "started": self._started,
                "ended": None if status == "running" else now,
                "pid": os.getpid(),
            },
        )


# ------------------------------------------------------------------ reading a multirun folder
def _load_job_config(job: Path) -> DictConfig:
    """The job's composed config with its ``hydra`` node, ``${hydra:...}`` made plain."""
    cfg_text = (job / ".hydra" / "config.yaml").read_text().replace("${hydra:", "${hydra.")
    cfg = OmegaConf.create(cfg_text)
    hy = job / ".hydra" / "hydra.yaml"
    if hy.is_file():
        h = OmegaConf.create(hy.read_text().replace("${hydra:", "${hydra."))
        OmegaConf.set_struct(cfg, False)
        cfg.hydra = h.hydra
    return cfg


def _dataset_of(cfg: DictConfig) -> str | None:
    try:
        d = OmegaConf.select(cfg, "output.dir", throw_on_resolution_failure=True)
    except Exception:  # an interpolation we cannot resolve outside the job
        return None
    if d is None:
        return None
    p = Path(str(d))
    if not p.is_absolute():  # relative to where the job ran
        chdir = OmegaConf.select(cfg, "hydra.job.chdir", default=False)
        key = "hydra.runtime.output_dir" if chdir else "hydra.runtime.cwd"
        base = OmegaConf.select(cfg, key, default=None)
        p = Path(str(base)) / p if base else p
    return str(p)


def _log_error(job: Path) -> str | None:
    for log_file in sorted(job.glob("*.log")):
        lines = [ln.strip() for ln in log_file.read_text(errors="replace").splitlines()]
        errs = [ln for ln in lines if "[ERROR]" in ln or ln.startswith("demoforge: error")]
        if errs:
            return errs[-1]
    return None


def _expected_jobs(sweep: Path) -> list[tuple[str, ...]] | None:
    """The job override lists the multirun asked for (from ``multirun.yaml``), or None."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    mr = sweep / "multirun.yaml"
    if not mr.is_file():
        return None
    try:
        cfg = OmegaConf.load(mr)
        task_overrides = list(OmegaConf.select(cfg, "hydra.overrides.task", default=[]) or [])
        parsed = OverridesParser.create().parse_overrides(task_overrides)
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # another sweeper's syntax: fall back to the job folders
        return None
    return [tuple(job) for batch in batches for job in batch]


def find_jobs(sweep: str | Path) -> list[JobInfo]:
    """Every job of a multirun folder; jobs the sweep asked for but never started included.

    Raises:
        ConfigError: the folder does not exist or holds no Hydra job.
    """
    root = Path(sweep)
    if not root.is_dir():
        raise ConfigError(f"sweep folder {root} does not exist (give a multirun directory)")
    jobs: list[JobInfo] = []
    seen: set[tuple[str, ...]] = set()
    for hd in sorted(root.rglob(".hydra")):
        job = hd.parent
        if not (hd / "config.yaml").is_file():
            continue
        ov_file = hd / "overrides.yaml"
        overrides = tuple(str(o) for o in (OmegaConf.load(ov_file) if ov_file.is_file() else []))
        cfg = _load_job_config(job)
        num = OmegaConf.select(cfg, "hydra.job.num", default=None)
        status = None
        if (job / JOB_STATUS_NAME).is_file():
            try:
                status = json.loads((job / JOB_STATUS_NAME).read_text())
            except json.JSONDecodeError:
                status = None
        jobs.append(
            JobInfo(
                num=int(num) if num is not None else len(jobs),
                dir=str(job),
                overrides=overrides,
                dataset=_dataset_of(cfg),
                status=status,
                log_error=_log_error(job),
            )
        )
        seen.add(tuple(sorted(overrides)))
    expected = _expected_jobs(root)
    if expected:
        used = {j.num for j in jobs}
        free = (n for n in range(10**9) if n not in used)
        for ov in expected:
            if tuple(sorted(ov)) not in seen:
                jobs.append(
                    JobInfo(
                        num=next(free),
                        dir="",
                        overrides=ov,
                        reason="never started (no job folder in the sweep)",
                    )
                )
    if not jobs:
        raise ConfigError(
            f"{root} holds no Hydra job (no */.hydra/config.yaml); give the multirun directory "
            "that `demoforge-generate -m ...` printed"
        )
    return jobs


# ------------------------------------------------------------------ the command
@dataclass
class SweepSummarySchema:
    dir: str = MISSING
    out: str | None = None
    volume: float = 10000.0
    cost: CostGroupSchema = field(default_factory=CostGroupSchema)


ConfigStore.instance().store(name="sweep_summary_schema", node=SweepSummarySchema)


def run_summary(cfg: DictConfig) -> dict:
    from sim.sweep import summarize_sweep, text_table, write_sweep_summary

    params = cost_params(cfg)
    if OmegaConf.is_missing(cfg, "dir"):
        raise ConfigError("missing dir: demoforge-sweep-summary <multirun directory>")
    jobs = find_jobs(cfg.dir)
    rows = summarize_sweep(jobs, params, cfg.volume)
    out = Path(cfg.out) if cfg.out else Path(cfg.dir)
    files = write_sweep_summary(rows, out, title=str(cfg.dir), currency=params.currency)
    print(text_table(rows, params.currency))
    n_ok = sum(r.status == "ok" for r in rows)
    print(
        f"demoforge: {len(rows)} jobs, {n_ok} ok, {len(rows) - n_ok} failed; summary: "
        f"{files['md']} (html, csv, json, png)"
    )
    return {"rows": rows, "files": files}


@hydra.main(version_base=None, config_path=str(conf_dir()), config_name="sweep_summary")
def _main(cfg: DictConfig) -> None:
    try:
        run_summary(cfg)
    except SimError as e:
        _fail(e)


def sweep_summary_main() -> None:
    """`demoforge-sweep-summary`."""
    sys.argv = positional_to_override(sys.argv, "dir")
    _main()
