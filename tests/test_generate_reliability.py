"""A generation run never looks finished before it is: SIGKILL at every stage (mid-run,
staged, inside finalize before and after the rename) resumes to the dataset an uninterrupted
run writes, for LeRobot and robomimic; workers die with their parent; resume refuses another
config naming the keys; chattering physics is dropped and counted; validation leaves the disk
untouched so a corrected rerun is not refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sim.errors import ConfigError, PhysicsError
from sim.generate import GenerateConfig, OutputConfig, generate
from sim.io import read_episodes
from sim.quality import StabilityLimits, stability_violation
from sim.render import CameraConfig

NO_CAM = CameraConfig(names=())


def _cfg(tmp_path: Path, name: str, fmt: str = "lerobot", **kw) -> GenerateConfig:
    return GenerateConfig(
        output=OutputConfig(dir=str(tmp_path / name), format=fmt), cameras=NO_CAM, **kw
    )


def _read(path: str | Path):
    p = Path(path)
    return read_episodes(p / "demo.hdf5" if (p / "demo.hdf5").exists() else p)


def _arrays(path: str | Path) -> list[bytes]:
    eps = _read(path)
    return [np.asarray(a, np.float32).tobytes() for e in eps for a in (e.qpos, e.action)]


_CHILD = """
import json, sys
from sim.generate import GenerateConfig, OutputConfig, generate
from sim.render import CameraConfig
d = json.loads(sys.argv[1])
generate(GenerateConfig(output=OutputConfig(**d["output"]), cameras=CameraConfig(names=()),
                        episodes=d["episodes"], workers=d.get("workers", 1)), progress=False)
"""


def _run_child(cfg: GenerateConfig, env: dict[str, str], **kw) -> subprocess.Popen:
    arg = json.dumps(
        {
            "output": {
                "dir": cfg.output.dir,
                "format": cfg.output.format,
                "resume": cfg.output.resume,
            },
            "episodes": cfg.episodes,
            **kw,
        }
    )
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, arg],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "fmt, point",
    [
        ("lerobot", "attempt:1"),
        ("lerobot", "staged"),
        ("lerobot", "before_publish"),
        ("lerobot", "after_publish"),
        ("robomimic", "attempt:1"),
        ("robomimic", "before_publish"),
    ],
)
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, fmt, point):
    ref = generate(_cfg(tmp_path, "ref", fmt, episodes=3), progress=False)
    cfg = _cfg(tmp_path, "run", fmt, episodes=3)
    p = _run_child(cfg, {"DEMOFORGE_KILL_AT": point})
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, f"child was not killed at {point}"
    out = Path(cfg.output.dir)
    partial = out.with_name("run.partial")
    assert partial.exists()
    if point != "after_publish":
        assert not out.exists(), f"killed at {point}: no dataset may look complete"
    res = generate(replace(cfg, output=replace(cfg.output, resume=True)), progress=False)
    assert res.episodes == 3 and not partial.exists()
    assert (out / "meta" / "demoforge_report.json").exists()
    assert _arrays(out) == _arrays(ref.path)


def _quality(path: str | Path) -> dict:
    rep = json.loads((Path(path) / "meta" / "demoforge_report.json").read_text())
    return {k: rep["quality"][k] for k in ("dgr", "coverage", "smoothness")} | {
        "attempts": rep["attempts"]
    }


@pytest.mark.parametrize("point, damage", [("saved:1", "torn line"), ("attempt:1", "legacy")])
def test_resumed_quality_report_counts_every_attempt_once(tmp_path, point, damage):
    """The per-attempt quality rows live in an append-only log beside a small progress file.
    Killed between saving the progress and staging the episode (``saved:1``), attempt 1 runs
    again on resume and must not be counted twice; a line torn by the kill is dropped; a
    progress file of an earlier release (stats inline, no log) resumes too."""
    from sim.generate import STATS_LOG, _add_stats, _new_stats

    ref = generate(_cfg(tmp_path, "ref", episodes=3), progress=False)
    cfg = _cfg(tmp_path, "run", episodes=3)
    p = _run_child(cfg, {"DEMOFORGE_KILL_AT": point})
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, f"child was not killed at {point}"
    partial = Path(cfg.output.dir + ".partial")
    progress_file, log_file = partial / "generate_progress.json", partial / STATS_LOG
    progress = json.loads(progress_file.read_text())
    rows = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert "stats" not in progress  # the progress file does not grow with the run
    assert [r["attempt"] for r in rows] == [0, 1]
    if damage == "torn line":
        with log_file.open("a") as fh:
            fh.write('{"attempt": 2, "reset_x')
    else:  # the layout of earlier releases
        stats = _new_stats()
        for r in rows:
            _add_stats(stats, r)
        progress_file.write_text(json.dumps({**progress, "stats": stats}))
        log_file.unlink()
    generate(replace(cfg, output=replace(cfg.output, resume=True)), progress=False)
    assert _quality(cfg.output.dir) == _quality(ref.path)


def test_workers_die_with_the_parent(tmp_path):
    """SIGKILL of the parent of a workers=2 run leaves no worker or resource tracker behind."""
    cfg = _cfg(tmp_path, "orphans", episodes=200)
    p = _run_child(cfg, {}, workers=2)
    progress = Path(cfg.output.dir + ".partial") / "generate_progress.json"
    deadline = time.time() + 240
    while not progress.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.5)
    assert progress.exists(), p.stderr.read() if p.poll() is not None else "no progress"
    kids = _children(p.pid)
    assert len(kids) >= 2, f"expected worker processes under {p.pid}, found {kids}"
    p.kill()
    p.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.5)
    assert not [k for k in kids if _alive(k)], "workers outlived their parent"


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_resume_refuses_other_config_naming_keys_and_fewer_episodes(tmp_path, monkeypatch):
    import sim.workers as workers

    cfg = _cfg(tmp_path, "r", episodes=3)
    real = workers.run_attempt

    def crash(ctx, index):
        if index == 2:
            raise KeyboardInterrupt
        return real(ctx, index)

    monkeypatch.setattr(workers, "run_attempt", crash)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, progress=False)
    monkeypatch.setattr(workers, "run_attempt", real)
    resume = replace(cfg.output, resume=True)
    with pytest.raises(ConfigError, match=r"keys differ.*level: staged 'D0' vs now 'D1'"):
        generate(replace(cfg, output=resume, level="D1"), progress=False)
    with pytest.raises(ConfigError, match=r"2 episodes are already staged but episodes=1"):
        generate(replace(cfg, output=resume, episodes=1), progress=False)
    assert generate(replace(cfg, output=resume), progress=False).episodes == 3


def test_chattering_joint_is_dropped_and_counted(tmp_path):
    dt = 0.05
    qvel = np.zeros((40, 3))
    qvel[10:30, 1] = 5.0 * (-1) ** np.arange(20)  # an idle joint flipping at 5 rad/s
    msg = stability_violation(qvel, {}, dt, ["a", "b", "c"], StabilityLimits())
    assert msg and "'b'" in msg and "rad/s^2" in msg
    assert stability_violation(qvel * 0.01, {}, dt, ["a", "b", "c"], StabilityLimits()) is None
    strict = StabilityLimits(max_joint_accel=1.0)  # every real motion counts as chatter here
    with pytest.raises(PhysicsError, match="physics_unstable"):
        generate(
            _cfg(tmp_path, "chatter", episodes=1, max_attempts=2, stability=strict), progress=False
        )


@pytest.mark.parametrize(
    "change, match",
    [
        ({"control_hz": 0}, "control_hz"),
        ({"seed": -1}, "seed"),
        ({"workers": 1000}, "workers"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"task_params": {"nope": 1}}, "bad config"),
        ({"cameras": CameraConfig(("nose",))}, "cameras.names"),
        ({"cameras": CameraConfig(("head",), quality="ultra")}, "cameras.quality"),
    ],
)
def test_validation_before_disk_then_corrected_rerun_runs(tmp_path, change, match):
    cfg = _cfg(tmp_path, "v", episodes=1)
    with pytest.raises(ConfigError, match=match):
        generate(replace(cfg, **change), progress=False)
    assert not list(tmp_path.iterdir()), "a refused config must leave nothing on disk"


def test_robomimic_output_reads_back_with_report(tmp_path):
    res = generate(_cfg(tmp_path, "rm", "robomimic", episodes=2), progress=False)
    root = Path(res.path)
    assert (root / "demo.hdf5").exists() and (root / "meta" / "demoforge_report.json").exists()
    eps = _read(root)
    assert len(eps) == 2 and all(e.meta.success for e in eps)
    assert eps[0].state is not None and eps[0].target, "schema 1.1 fields travel"
    rep = json.loads((root / "meta" / "demoforge_report.json").read_text())
    assert rep["report_version"] == 2 and rep["cpu_seconds"] > 0 and rep["episodes"] == 2


def test_mujoco_warnings_are_logged_not_written_to_the_cwd(tmp_path, monkeypatch, caplog):
    import mujoco

    import sim.model.scene  # noqa: F401  (installs the handler)

    monkeypatch.chdir(tmp_path)
    m = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><body><freejoint/><geom size=".1"/></body></worldbody></mujoco>'
    )
    d = mujoco.MjData(m)
    d.qpos[:] = np.nan
    with caplog.at_level("WARNING", logger="sim.model.scene"):
        mujoco.mj_step(m, d)
    assert any("unstable" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_generated_robomimic_episode_restores_any_step_bit_for_bit(tmp_path):
    """model_file + states: set step t, apply step t+1's controls, 25 substeps == step t+1."""
    import h5py
    import mujoco

    res = generate(_cfg(tmp_path, "rs", "robomimic", episodes=1), progress=False)
    with h5py.File(Path(res.path) / "demo.hdf5") as f:
        xml = f["data/demo_0"].attrs["model_file"]
    m = mujoco.MjModel.from_xml_string(xml)
    d, nxt = mujoco.MjData(m), mujoco.MjData(m)
    ep = _read(res.path)[0]
    for t in (5, len(ep) // 2, len(ep) - 2):
        mujoco.mj_setState(m, nxt, ep.state[t + 1], ep.state_spec)
        mujoco.mj_setState(m, d, ep.state[t], ep.state_spec)
        d.ctrl[:] = nxt.ctrl
        d.eq_active[:] = nxt.eq_active
        mujoco.mj_step(m, d, 25)
        st = np.empty(mujoco.mj_stateSize(m, ep.state_spec))
        mujoco.mj_getState(m, d, st, ep.state_spec)
        np.testing.assert_array_equal(st, ep.state[t + 1])


def test_errors_survive_pickling_across_processes():
    """Worker pools, Ray and Hydra's joblib launcher pickle exceptions back to the parent."""
    import pickle

    from sim.errors import PlanError, UnknownNameError

    e = pickle.loads(pickle.dumps(UnknownNameError("level", "D9", ["D0", "D1"])))
    assert isinstance(e, UnknownNameError) and str(e).startswith("unknown level 'D9'")
    assert e.known == ["D0", "D1"]
    p = pickle.loads(pickle.dumps(PlanError("no grasp in source 3", cause="no_grasp")))
    assert p.cause == "no_grasp" and "source 3" in str(p)
