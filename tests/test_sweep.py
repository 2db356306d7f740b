"""Sweeps: `demoforge-generate -m` with the joblib, submitit and Ray launchers (each job a real
generation run), and `demoforge-sweep-summary` over the multirun folder."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
GENERATE = [sys.executable, "-c", "from sim.cli import generate_main; generate_main()"]
SUMMARY = [sys.executable, "-c", "from sim.cli import sweep_summary_main; sweep_summary_main()"]
TINY = ["episodes=1", "cameras.names=[]", "progress=false"]


def multirun(tmp: Path, *args: str, timeout: int = 500) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GENERATE, "-m", *args, *TINY, f"hydra.sweep.dir={tmp / 'mr'}"],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=timeout,
    )


def summary(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SUMMARY, *args], capture_output=True, text=True, cwd=tmp, timeout=120)


def rows_of(tmp: Path) -> list[dict]:
    return json.loads((tmp / "mr" / "sweep_summary.json").read_text())


def test_joblib_sweep_one_ok_one_failed(tmp_path):
    """Two parallel jobs; the one with an invalid level fails alone and is listed with why."""
    r = multirun(tmp_path, "level=D0,D9", "hydra/launcher=local_parallel")
    # Hydra reports the failed job after all jobs ran
    assert r.returncode != 0 and "unknown level 'D9'" in r.stderr
    s = summary(tmp_path, str(tmp_path / "mr"))
    assert s.returncode == 0, s.stderr
    assert "2 jobs, 1 ok, 1 failed" in s.stdout
    rows = {r["swept"][0]: r for r in rows_of(tmp_path)}
    ok, bad = rows["level=D0"], rows["level=D9"]
    assert ok["status"] == "ok" and ok["episodes"] == 1 and ok["dgr"] == 1.0
    assert ok["cpu_seconds_per_episode"] > 0 and ok["cost_per_episode"] > 0
    assert bad["status"] == "failed" and "unknown level 'D9'" in bad["reason"]
    assert "expected one of: D0, D1, D2" in bad["reason"]
    md = (tmp_path / "mr" / "sweep_summary.md").read_text()
    assert "| 1 | level=D9 | failed |" in md
    html = (tmp_path / "mr" / "sweep_summary.html").read_text()
    assert "data:image/png;base64," in html
    # a job the sweep asked for whose folder is gone is listed as never started
    gone = Path(bad["dir"])
    shutil.rmtree(gone)
    s = summary(tmp_path, f"dir={tmp_path / 'mr'}", f"out={tmp_path / 'again'}")
    assert s.returncode == 0, s.stderr
    rows = json.loads((tmp_path / "again" / "sweep_summary.json").read_text())
    assert len(rows) == 2
    assert [r["reason"] for r in rows if r["status"] == "failed"] == [
        "never started (no job folder in the sweep)"
    ]


def test_sweep_with_unknown_key_is_one_clear_error(tmp_path):
    r = multirun(
        tmp_path, "tsk=stack_blocks,open_drawer", "hydra/launcher=local_parallel", timeout=120
    )
    assert r.returncode != 0
    assert "Could not override 'tsk'" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "mr").glob("*/.hydra"))  # no job started


def test_summary_bad_folder(tmp_path):
    from sim.cli.sweep import find_jobs

    with pytest.raises(ConfigError, match="does not exist"):
        find_jobs(tmp_path / "nope")
    with pytest.raises(ConfigError, match="holds no Hydra job"):
        find_jobs(tmp_path)
    s = summary(tmp_path, str(tmp_path))
    assert s.returncode == 2 and "holds no Hydra job" in s.stderr
    s = summary(tmp_path, str(tmp_path), "volum=3")
    assert s.returncode != 0 and "volum" in s.stderr


def test_slurm_config_composes_to_an_sbatch_script(tmp_path):
    """conf/hydra/launcher/slurm.yaml composes; its values become the sbatch header submitit
    would submit (submitit's own script writer; no Slurm here)."""
    from hydra import compose, initialize_config_dir
    from submitit.slurm.slurm import _make_sbatch_string

    import sim.cli.generate  # noqa: F401  (registers the generate schema)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "hydra/launcher=slurm",
                "hydra.launcher.partition=cpu",
                "hydra.launcher.account=proj",
            ],
            return_hydra_config=True,
        )
    lc = cfg.hydra.launcher
    assert lc._target_.endswith("submitit_launcher.SlurmLauncher")
    assert cfg.hydra.callbacks.job_status._target_ == "sim.cli.sweep.JobStatusCallback"
    text = _make_sbatch_string(
        command="python -m sim",
        folder=str(tmp_path / "%j"),
        job_name="generate",
        partition=lc.partition,
        account=lc.account,
        time=lc.timeout_min,
        cpus_per_task=lc.cpus_per_task,
        mem=f"{lc.mem_gb}GB",
        nodes=lc.nodes,
        ntasks_per_node=lc.tasks_per_node,
        array_parallelism=lc.array_parallelism,
        map_count=6,
        signal_delay_s=lc.signal_delay_s,
    )
    for line in (
        "#SBATCH --partition=cpu",
        "#SBATCH --account=proj",
        "#SBATCH --time=120",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8GB",
        "#SBATCH --array=0-5%6",
    ):
        assert line in text


@pytest.mark.slow
def test_six_job_joblib_sweep_lists_all_six(tmp_path):
    """2 tasks x 3 levels in parallel; one job's output already exists, so it fails alone."""
    taken = tmp_path / "data" / "open_drawer_demoforge_humanoid_D2_seed0"
    taken.mkdir(parents=True)
    r = multirun(
        tmp_path,
        "task=stack_blocks,open_drawer",
        "level=D0,D1,D2",
        "hydra/launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
    )
    assert r.returncode != 0 and "already exists" in r.stderr
    s = summary(tmp_path, str(tmp_path / "mr"))
    assert s.returncode == 0, s.stderr
    assert "6 jobs, 5 ok, 1 failed" in s.stdout
    rows = rows_of(tmp_path)
    assert sorted(tuple(r["swept"]) for r in rows) == sorted(
        (f"task={t}", f"level={lv}")
        for t in ("stack_blocks", "open_drawer")
        for lv in ("D0", "D1", "D2")
    )
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["swept"] == ["task=open_drawer", "level=D2"]
    assert f"output data/{taken.name} already exists" in failed[0]["reason"]
    for row in rows:
        if row["status"] == "ok":
            assert row["episodes"] == 1 and row["attempts"] >= 1
            assert Path(row["dataset"], "meta", "demoforge_report.json").is_file()
            assert row["task"] in row["swept"][0] and row["level"] in row["swept"][1]
    # the jobs ran in parallel: in two processes, with overlapping [started, ended] windows
    status = [json.loads((Path(r["dir"]) / "demoforge_job.json").read_text()) for r in rows]
    assert {st["status"] for st in status} == {"ok", "failed"}
    assert len({st["pid"] for st in status}) >= 2
    spans = sorted((st["started"], st["ended"]) for st in status)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


@pytest.mark.slow
def test_submitit_local_executor_runs_the_jobs(tmp_path):
    r = multirun(tmp_path, "level=D0,D1", "hydra/launcher=submitit_local_jobs")
    assert r.returncode == 0, r.stderr[-2000:]
    assert list((tmp_path / "mr" / ".submitit").iterdir())  # submitit's own job folders
    s = summary(tmp_path, str(tmp_path / "mr"))
    assert s.returncode == 0 and "2 jobs, 2 ok, 0 failed" in s.stdout, s.stdout + s.stderr


@pytest.mark.slow
def test_ray_launcher_runs_the_jobs(tmp_path):
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        pytest.skip("hydra-ray-launcher is not installed (pip install hydra-ray-launcher)")
    r = multirun(tmp_path, "level=D0,D1", "hydra/launcher=ray_local")
    assert r.returncode == 0, r.stderr[-2000:]
    s = summary(tmp_path, str(tmp_path / "mr"))
    assert s.returncode == 0 and "2 jobs, 2 ok, 0 failed" in s.stdout, s.stdout + s.stderr


def test_job_row_reasons(tmp_path):
    """Each way a job can lack a usable report gives a failed row with a reason naming it."""
    from sim.sweep import JobInfo, job_row, summarize_sweep

    old = tmp_path / "old" / "meta"
    old.mkdir(parents=True)
    (old / "demoforge_report.json").write_text(json.dumps({"report_version": 1}))
    cases = {
        "status": (
            JobInfo(
                0,
                "j0",
                ("level=D9",),
                dataset=str(tmp_path / "x"),
                status={"status": "failed", "reason": "demoforge: error: bad"},
            ),
            "bad",
        ),
        "version": (
            JobInfo(1, "j1", ("level=D1",), dataset=str(tmp_path / "old")),
            f"{old / 'demoforge_report.json'}: report_version is 1",
        ),
        "missing": (
            JobInfo(
                2, "j2", ("level=D2",), dataset=str(tmp_path / "none"), status={"status": "running"}
            ),
            f"no generation report at {tmp_path / 'none'}",
        ),
        "log": (
            JobInfo(
                3, "j3", ("level=D0",), dataset=str(tmp_path / "none"), log_error="[ERROR] - boom"
            ),
            "[ERROR] - boom",
        ),
        "unknown": (JobInfo(4, "j4", ("level=D0",)), "output.dir is unknown"),
    }
    for name, (info, reason) in cases.items():
        row = job_row(info)
        assert row.status == "failed", name
        assert row.reason.startswith(reason) or reason in row.reason, (name, row.reason)
    rows = summarize_sweep([c[0] for c in cases.values()])
    assert [r.num for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0].label == "level=D9"  # only the swept key is kept in labels
