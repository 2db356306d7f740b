"""The generation pipeline: dataset round trip, determinism across runs and workers, crash
safety and resume, clear errors for bad configuration."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import sim.generate as gen
from sim.errors import ConfigError, OutputExistsError, UnknownNameError
from sim.generate import GenerateConfig, OutputConfig, generate
from sim.io.lerobot import read_lerobot
from sim.render import CameraConfig
from sim.tasks import known_tasks

NO_CAM = CameraConfig(names=())


def _cfg(tmp_path: Path, name: str, **kw) -> GenerateConfig:
    out = kw.pop("output", None)
    out = replace(out, dir=str(tmp_path / name)) if out else OutputConfig(dir=str(tmp_path / name))
    return GenerateConfig(output=out, **kw)


def _state_action(root: Path) -> dict[str, bytes]:
    t = pq.read_table(sorted((root / "data").glob("*/*.parquet"))[0])
    return {
        c: np.asarray(t[c].to_pylist(), dtype=np.float32).tobytes()
        for c in ("observation.state", "action")
    }


def test_dataset_with_images_reads_back(tmp_path):
    cfg = _cfg(tmp_path, "ds", episodes=2, cameras=CameraConfig(("head", "right_wrist"), 48, 64))
    res = generate(cfg, progress=False)
    root = Path(res.path)
    assert res.episodes == 2 and (root / "meta" / "info.json").exists()
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 2
    # every parquet is readable; info features == parquet columns (+ videos)
    cols = set()
    for p in root.rglob("*.parquet"):
        t = pq.read_table(p)
        if "data" in p.parts:
            cols |= set(t.column_names)
    videos = {k for k, v in info["features"].items() if v["dtype"] == "video"}
    assert cols == set(info["features"]) - videos
    assert videos == {"observation.images.head", "observation.images.right_wrist"}
    assert len(list(root.rglob("*.mp4"))) == 2
    eps = read_lerobot(root)
    assert [e.meta.success for e in eps] == [True, True]
    frames = eps[0].image("head")
    assert frames.shape == (len(eps[0]), 48, 64, 3) and frames.std() > 5
    report = json.loads((root / "meta" / "demoforge_report.json").read_text())
    assert report["episodes"] == 2 and report["attempts"] >= 2
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.stat().st_mode & 0o777 for p in root.rglob("*") if p.is_file()}
    assert modes == {0o666 & ~umask}, f"dataset files must get normal permissions, got {modes}"


def test_read_back_equals_a_fresh_rollout(tmp_path):
    from sim.workers import build_context, run_attempt

    cfg = _cfg(tmp_path, "rb", episodes=2, cameras=NO_CAM)
    res = generate(cfg, progress=False)
    ctx = build_context(cfg)
    for ep in read_lerobot(res.path):
        attempt = ep.meta.provenance["attempt"]
        assert ep.meta.seed == gen.episode_seed(0, attempt)
        ref = run_attempt(ctx, attempt).episode
        np.testing.assert_array_equal(ep.action, ref.action.astype(np.float32))
        np.testing.assert_array_equal(ep.qpos, ref.qpos.astype(np.float32))
        np.testing.assert_array_equal(ep.ee["right"], ref.ee["right"].astype(np.float32))
        assert ep.joint_names == ref.joint_names and ep.action_names == ref.action_names


def test_same_seed_same_bytes_any_worker_count(tmp_path):
    a = generate(_cfg(tmp_path, "a", episodes=3, cameras=NO_CAM), progress=False)
    b = generate(_cfg(tmp_path, "b", episodes=3, cameras=NO_CAM), progress=False)
    c = generate(_cfg(tmp_path, "c", episodes=3, cameras=NO_CAM, workers=2), progress=False)
    d = generate(_cfg(tmp_path, "d", episodes=3, cameras=NO_CAM, seed=1), progress=False)
    sa = _state_action(Path(a.path))
    assert sa == _state_action(Path(b.path)) == _state_action(Path(c.path))
    assert sa != _state_action(Path(d.path))


def test_worker_encoded_videos_same_bytes_any_worker_count(tmp_path):
    """Workers encode their attempts' mp4s (no frames pickled to the parent): same bytes for
    workers 1 and 2, and no scratch files published."""
    cam = CameraConfig(("head",), 32, 32)
    a = Path(generate(_cfg(tmp_path, "a", episodes=2, cameras=cam), progress=False).path)
    b = Path(generate(_cfg(tmp_path, "b", episodes=2, cameras=cam, workers=2), progress=False).path)
    vids = [{str(p.relative_to(r)): p.read_bytes() for p in r.rglob("*.mp4")} for r in (a, b)]
    assert vids[0] == vids[1] and len(vids[0]) == 1
    assert _state_action(a) == _state_action(b)
    for r in (a, b):
        assert not (r / "encoding").exists() and not Path(str(r) + ".partial").exists()
    assert read_lerobot(a)[1].image("head").shape == (len(read_lerobot(a)[1]), 32, 32, 3)


def test_crash_leaves_no_complete_dataset_and_resume_matches(tmp_path, monkeypatch):
    ref = generate(_cfg(tmp_path, "ref", episodes=3, cameras=NO_CAM), progress=False)
    cfg = _cfg(tmp_path, "crash", episodes=3, cameras=NO_CAM)
    import sim.workers as workers

    real = workers.run_attempt

    def crash_on_third(ctx, index):
        if index == 2:
            raise KeyboardInterrupt("simulated crash")
        return real(ctx, index)

    monkeypatch.setattr(workers, "run_attempt", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, progress=False)
    out = Path(cfg.output.dir)
    assert not out.exists(), "a crashed run must not leave a dataset that looks complete"
    assert out.with_name("crash.partial").exists()
    monkeypatch.setattr(workers, "run_attempt", real)
    with pytest.raises(OutputExistsError, match="resume"):
        generate(cfg, progress=False)
    res = generate(replace(cfg, output=replace(cfg.output, resume=True)), progress=False)
    assert res.episodes == 3
    assert _state_action(out) == _state_action(Path(ref.path))


def test_keep_failures_writes_failed_attempts_apart_and_resumes(tmp_path, monkeypatch):
    """output.keep_failures: failed attempts that ran (here: noisy targets drop the block) go to
    <dir>_failed with success False and their cause; a crash + resume gives the same data."""
    from sim.generate import AugmentConfig

    kw = dict(episodes=2, augment=AugmentConfig(noise=0.3), cameras=CameraConfig(("head",), 32, 32))
    keep = OutputConfig(keep_failures=True)
    ref = generate(_cfg(tmp_path, "ref", output=keep, **kw), progress=False)
    failed = ref.report["failures_dataset"]
    assert failed == str(tmp_path / "ref_failed")
    eps = read_lerobot(failed)
    assert len(eps) == ref.attempts - ref.episodes == sum(ref.failures.values()) >= 2
    causes = [e.meta.provenance["failure"]["cause"] for e in eps]
    assert all(e.meta.success is False for e in eps) and set(causes) <= set(ref.failures)
    assert eps[0].image("head").shape == (len(eps[0]), 32, 32, 3)
    assert all(e.meta.success for e in read_lerobot(ref.path))  # never mixed in
    plain = generate(_cfg(tmp_path, "plain", **kw), progress=False)
    assert plain.report["failures_dataset"] is None and not (tmp_path / "plain_failed").exists()
    assert _state_action(Path(plain.path)) == _state_action(Path(ref.path))

    import sim.workers as workers

    real = workers.run_attempt
    crash_at = ref.attempts - 2  # after some failures were staged

    def crash(ctx, index):
        if index == crash_at:
            raise KeyboardInterrupt("simulated crash")
        return real(ctx, index)

    cfg = _cfg(tmp_path, "crash", output=keep, **kw)
    monkeypatch.setattr(workers, "run_attempt", crash)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, progress=False)
    monkeypatch.setattr(workers, "run_attempt", real)
    flip = replace(cfg.output, resume=True, keep_failures=False)
    with pytest.raises(ConfigError, match="keep_failures=True, now False"):
        generate(replace(cfg, output=flip), progress=False)
    res = generate(replace(cfg, output=replace(cfg.output, resume=True)), progress=False)
    assert res.failures == ref.failures and res.attempts == ref.attempts
    assert _state_action(Path(res.report["failures_dataset"])) == _state_action(Path(failed))


@pytest.mark.parametrize(
    "change, err, match",
    [
        ({"task": "stack_blokcs"}, UnknownNameError, "unknown task 'stack_blokcs'"),
        ({"robot": "robbie"}, UnknownNameError, "unknown robot 'robbie'.*demoforge_humanoid"),
        ({"level": "D7"}, UnknownNameError, "unknown level 'D7'"),
        ({"output": OutputConfig(format="zarr")}, UnknownNameError, "unknown output format 'zarr'"),
        ({"cameras": CameraConfig(("head",), 0, 84)}, ConfigError, "cameras.height.*> 0.*0x84"),
        ({"episodes": 0}, ConfigError, "episodes must be >= 1"),
    ],
)
def test_bad_config_named(tmp_path, change, err, match):
    with pytest.raises(err, match=match):
        generate(_cfg(tmp_path, "x", **change), progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_existing_output_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputExistsError, match="taken already exists.*output.overwrite"):
        generate(_cfg(tmp_path, "taken", episodes=1, cameras=NO_CAM), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("task", known_tasks())
def test_every_task_generates_a_dataset(tmp_path, task):
    cams = CameraConfig(("head", "right_wrist"), 32, 32)
    res = generate(_cfg(tmp_path, task, task=task, episodes=1, cameras=cams), progress=False)
    eps = read_lerobot(res.path)
    assert len(eps) == 1 and eps[0].meta.success and eps[0].meta.task == task
    assert eps[0].image("head").shape[1:] == (32, 32, 3)
