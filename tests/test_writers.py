"""The Writer protocol for LeRobot and robomimic: schema 1.1 + provenance round trips, resume,
staged files, SIGKILL before/after the publishing rename, disk full / read-only, damaged files,
reset-to-any-step from the stored MuJoCo state, schema 1.0 files, deterministic video bytes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import mujoco
import numpy as np
import pytest

from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError, FormatError, OutputExistsError, SchemaError, SimError
from sim.io.atomic import KILL_ENV, OutputWriteError, to_jsonable
from sim.io.lerobot import read_lerobot
from sim.io.robomimic import read_robomimic
from sim.io.writer import Writer, open_writer

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "data" / "io_schema_1_0"
FPS = 20
SPEC = int(mujoco.mjtState.mjSTATE_INTEGRATION)  # FULLPHYSICS lacks the warmstart

#: a small scene: a 2-link arm and a free box on a floor (contacts, a free joint, an actuator)
XML = """
<mujoco model="writer_test">
  <option timestep="0.005"/>
  <worldbody>
    <geom name="floor" type="plane" size="1 1 0.1"/>
    <body name="link1" pos="0 0 0.3">
      <joint name="j1" type="hinge" axis="0 1 0" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
      <body name="link2" pos="0.2 0 0">
        <joint name="j2" type="hinge" axis="0 1 0" damping="0.1"/>
        <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
        <site name="ee" pos="0.2 0 0"/>
      </body>
    </body>
    <body name="box" pos="0.3 0 0.1">
      <freejoint/>
      <geom type="box" size="0.03 0.03 0.03" mass="0.1"/>
    </body>
  </worldbody>
  <actuator>
    <position joint="j1" kp="5"/>
    <position joint="j2" kp="5"/>
  </actuator>
</mujoco>
"""


def simulate(T: int = 16, seed: int = 0, cams: bool = True) -> Episode:
    """A physics episode with every schema 1.1 field and realistic provenance."""
    rng = np.random.default_rng(seed)
    m = mujoco.MjModel.from_xml_string(XML)
    d = mujoco.MjData(m)
    substeps = int(round(1 / FPS / m.opt.timestep))
    n_state = mujoco.mj_stateSize(m, SPEC)
    state = np.empty((T, n_state))
    qpos, qvel, ee, target, grip, box = [], [], [], [], [], []
    ctrl = rng.uniform(-0.5, 0.5, size=(T, 2))
    for k in range(T):
        mujoco.mj_getState(m, d, state[k], SPEC)
        qpos.append(d.qpos[:2].copy())
        qvel.append(d.qvel[:2].copy())
        q = np.empty(4)
        mujoco.mju_mat2Quat(q, d.site_xmat[0])
        ee.append(np.r_[d.site_xpos[0], q])
        target.append(np.r_[d.site_xpos[0] + 0.01, q])
        grip.append(0.5 + 0.4 * np.sin(k / 3))
        box.append(d.qpos[2:9].copy())
        d.ctrl[:] = ctrl[k]
        for _ in range(substeps):
            mujoco.mj_step(m, d)
    T_half = T // 2
    seg = np.array(["reach"] * T_half + ["grasp"] * (T - T_half))
    ref = np.array([""] * T_half + ["box"] * (T - T_half))
    meta = EpisodeMeta(
        task="lift_box",
        robot="two_link",
        fps=float(FPS),
        source="generated",
        success=True,
        seed=seed,
        instruction="lift the box",
        provenance={
            "source": {"dataset": "/data/demos/lift.hdf5", "episode": 3},
            "segments": [
                {"label": "reach", "start": 0, "stop": T_half, "ref": ""},
                {"label": "grasp", "start": T_half, "stop": T, "ref": "box"},
            ],
            "transforms": {"grasp": np.eye(4)[:3].tolist()},
            "randomization": {"friction": np.float64(0.83), "mass": [0.1, 0.12]},
            "seeds": {"reset": 11, "randomize": 12, "source": 13, "noise": 14},
            "config_hash": "3f2a9c",
        },
    )
    ep = Episode(
        meta=meta,
        time=np.arange(T) / FPS,
        joint_names=["j1", "j2"],
        qpos=np.array(qpos),
        qvel=np.array(qvel),
        action_names=["j1", "j2", "gripper"],
        action=np.c_[ctrl, grip],
        ee={"main": np.array(ee)},
        gripper={"main": np.array(grip)},
        objects={"box": np.array(box)},
        subtasks={"grasped": np.arange(T) >= T_half},
        target={"main": np.array(target)},
        gripper_cmd={"main": np.array(grip)},
        segment={"main": seg},
        segment_ref={"main": ref},
        state=state,
        state_spec=SPEC,
        arm_joints={"main": ["j1", "j2"]},
    )
    if cams:
        yy, xx = np.mgrid[0:16, 0:16]
        frames = np.empty((T, 16, 16, 3), np.uint8)
        for k in range(T):
            frames[k] = np.stack([(xx * 16 + k) % 256, yy * 16, np.full_like(xx, 80)], -1)
        ep.images = {"front": frames}
    return ep.validate()


def open_format(fmt: str, out: Path, **kw) -> Writer:
    return open_writer(
        fmt, out, fps=FPS, config={"seed": 0, "task": "lift_box"}, model_xml=XML, **kw
    )


def read_back(fmt: str, out: Path) -> list[Episode]:
    return read_lerobot(out) if fmt == "lerobot" else read_robomimic(out)


FORMATS = ("lerobot", "robomimic")


def _same_label_arrays(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert np.asarray(b[k]).tolist() == np.asarray(a[k]).tolist()


@pytest.mark.parametrize("fmt", FORMATS)
def test_schema_1_1_and_provenance_round_trip(tmp_path, fmt):
    episodes = [simulate(16, 0), simulate(12, 1)]
    w = open_format(fmt, tmp_path / "ds")
    assert isinstance(w, Writer)
    for ep in episodes:
        w.add(ep)
    w.stage_file("meta/demoforge_report.json", b'{"ok": true}\n')
    root = w.finalize()
    assert root == tmp_path / "ds" and not w.partial.exists()
    assert (root / "meta/demoforge_report.json").read_bytes() == b'{"ok": true}\n'
    back = read_back(fmt, root)
    f32 = (lambda a: np.asarray(a, np.float32)) if fmt == "lerobot" else np.asarray
    for a, b in zip(episodes, back, strict=True):
        assert b.meta.provenance == to_jsonable(a.meta.provenance)
        assert b.meta.seed == a.meta.seed and b.meta.software_version == a.meta.software_version
        np.testing.assert_array_equal(b.target["main"], f32(a.target["main"]))
        np.testing.assert_array_equal(b.gripper_cmd["main"], f32(a.gripper_cmd["main"]))
        _same_label_arrays(a.segment, b.segment)
        _same_label_arrays(a.segment_ref, b.segment_ref)
        assert b.state.dtype == np.float64 and b.state.tobytes() == a.state.tobytes()
        assert b.state_spec == SPEC and b.arm_joints == a.arm_joints
        np.testing.assert_array_equal(b.qpos, f32(a.qpos))
        assert b.validate() is b


@pytest.mark.parametrize("fmt", FORMATS)
def test_reset_to_any_step_from_stored_state(tmp_path, fmt):
    """states + the scene XML restore the simulation at step t exactly (robomimic: model_file)."""
    ep = simulate(16, 2, cams=False)
    w = open_format(fmt, tmp_path / "ds")
    w.add(ep)
    root = w.finalize()
    back = read_back(fmt, root)[0]
    if fmt == "robomimic":
        with h5py.File(root / "demo.hdf5", "r") as f:
            xml = f["data/demo_0"].attrs["model_file"]
            assert f["data/demo_0/states"].attrs["mujoco_state_spec"] == SPEC
    else:
        xml = (root / "meta/demoforge/model.xml").read_text()
    assert xml == XML
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    substeps = int(round(1 / FPS / m.opt.timestep))
    for t in (0, 5, 11):
        mujoco.mj_setState(m, d, back.state[t], SPEC)
        mujoco.mj_forward(m, d)
        np.testing.assert_array_equal(d.qpos[:2], ep.qpos[t])
        np.testing.assert_array_equal(d.qpos[2:9], ep.objects["box"][t])
        d.ctrl[:] = ep.action[t, :2]  # ctrl of step t (the state holds t-1)
        for _ in range(substeps):  # same control -> the recorded next state, bit for bit
            mujoco.mj_step(m, d)
        nxt = np.empty(mujoco.mj_stateSize(m, SPEC))
        mujoco.mj_getState(m, d, nxt, SPEC)
        np.testing.assert_array_equal(nxt, ep.state[t + 1])


def test_robomimic_datagen_info_every_arm(tmp_path):
    from sim.transforms import pose_to_mat

    ep = simulate(10, 3, cams=False)
    ep.ee["left"] = ep.ee["main"].copy()
    ep.gripper["left"] = 1 - ep.gripper["main"]
    ep.target["left"] = ep.target["main"].copy()
    ep.target["left"][:, 2] += 0.1
    ep.gripper_cmd["left"] = 1 - ep.gripper_cmd["main"]
    w = open_format("robomimic", tmp_path / "ds")
    w.add(ep)
    root = w.finalize()
    with h5py.File(root / "demo.hdf5", "r") as f:
        dg = f["data/demo_0/datagen_info"]
        assert json.loads(dg.attrs["arms"]) == ["main", "left"]
        np.testing.assert_allclose(dg["target_pose"][()], pose_to_mat(ep.target["main"]))
        for arm in ("main", "left"):
            a = dg["arms"][arm]
            np.testing.assert_allclose(a["eef_pose"][()], pose_to_mat(ep.ee[arm]))
            np.testing.assert_allclose(a["target_pose"][()], pose_to_mat(ep.target[arm]))
            np.testing.assert_allclose(a["gripper_action"][:, 0], 1 - 2 * ep.gripper_cmd[arm])
        np.testing.assert_allclose(
            dg["gripper_action"][()], 1 - 2 * np.c_[ep.gripper_cmd["main"], ep.gripper_cmd["left"]]
        )
        np.testing.assert_allclose(dg["object_poses/box"][()], pose_to_mat(ep.objects["box"]))
        assert dg["subtask_term_signals/grasped"][()].tolist() == ep.subtasks["grasped"].tolist()
        assert json.loads(f["data"].attrs["demoforge"])["config"] == {"seed": 0, "task": "lift_box"}
    assert json.loads((root / "meta/demoforge.json").read_text())["episodes"] == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_after_crash_and_refusals(tmp_path, fmt):
    out = tmp_path / "ds"
    w = open_format(fmt, out)
    w.add(simulate(8, 0))
    del w  # "crash": nothing finalized
    with pytest.raises(OutputExistsError, match=r"ds\.partial exists \(1 staged episodes\)"):
        open_format(fmt, out)
    with pytest.raises(ConfigError, match="seed"):
        open_writer(fmt, out, fps=FPS, config={"seed": 1, "task": "lift_box"}, resume=True)
    w = open_format(fmt, out, resume=True)
    assert w.num_staged == 1 and not w.published
    w.add(simulate(8, 1))
    w.finalize()
    assert [e.meta.seed for e in read_back(fmt, out)] == [0, 1]
    with pytest.raises(SchemaError):
        open_format(fmt, tmp_path / "other").finalize()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from test_writers import open_format, simulate
    from pathlib import Path
    w = open_format(sys.argv[1], Path(sys.argv[2]), resume=True)
    for i in range(w.num_staged, 3):
        w.add(simulate(8, i))
    w.stage_file("meta/demoforge_report.json", b"report")
    w.finalize()
    """
)


def _run(fmt: str, out: Path, kill_at: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, fmt, str(out), str(Path(__file__).parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kill_at", ["before_publish", "after_publish"])
def test_sigkill_around_publish_resumes_to_identical_dataset(tmp_path, fmt, kill_at):
    ref = tmp_path / "ref"
    assert _run(fmt, ref, None).returncode == 0
    out = tmp_path / "ds"
    proc = _run(fmt, out, kill_at)
    assert proc.returncode == -9, proc.stderr[-2000:]
    partial = tmp_path / "ds.partial"
    assert partial.is_dir()
    if kill_at == "before_publish":
        assert not out.exists()
    else:  # published, report included: never a dataset without its report
        assert (out / "meta/demoforge_report.json").read_bytes() == b"report"
    assert _run(fmt, out, None).returncode == 0
    assert not partial.exists()
    assert _digest_tree(out) == _digest_tree(ref)


class _Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing after the raise point runs."""


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("point", ["before_rename", "after_rename"])
def test_crash_around_publish_in_process(tmp_path, fmt, point, monkeypatch):
    """Fast variant of the SIGKILL test: the staged report is published with the data, and a
    resumed writer completes or recognizes the publish."""
    import sim.io.writer as wmod

    out = tmp_path / "ds"
    w = open_format(fmt, out)
    for i in range(2):
        w.add(simulate(8, i))
    w.stage_file("meta/demoforge_report.json", b"report")
    if point == "before_rename":

        def boom(self, publish, episodes):
            raise _Killed

        monkeypatch.setattr(wmod.Staging, "publish", boom)
    else:
        monkeypatch.setattr(wmod.Staging, "_cleanup", lambda self: (_ for _ in ()).throw(_Killed))
    with pytest.raises(_Killed):
        w.finalize()
    monkeypatch.undo()
    assert (tmp_path / "ds.partial").is_dir()
    assert out.exists() == (point == "after_rename")
    w2 = open_format(fmt, out, resume=True)
    assert w2.num_staged == 2 and w2.published == (point == "after_rename")
    w2.stage_file("meta/demoforge_report.json", b"report")
    assert w2.finalize() == out and not (tmp_path / "ds.partial").exists()
    assert (out / "meta/demoforge_report.json").read_bytes() == b"report"
    assert [e.meta.seed for e in read_back(fmt, out)] == [0, 1]


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "/fake/file")


@pytest.mark.parametrize("fmt", FORMATS)
def test_disk_full_and_read_only_give_one_error(tmp_path, fmt, monkeypatch):
    import sim.io.atomic as atomic

    w = open_format(fmt, tmp_path / "ds")
    w.add(simulate(8, 0))
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 10))
    with pytest.raises(OutputWriteError, match=r"ds\.partial: not enough disk space .* about "):
        w.finalize()
    monkeypatch.undo()
    monkeypatch.setattr(atomic.os, "replace", _enospc)  # every atomic write renames
    with pytest.raises(OutputWriteError, match=r"/fake/file: disk full while writing episode 1"):
        w.add(simulate(8, 1))
    monkeypatch.undo()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ro"))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(OutputWriteError, match=r"ro: cannot write .*read-only or not writable"):
        open_format(fmt, tmp_path / "ro" / "ds")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("damage")
    out = {}
    for fmt in FORMATS:
        w = open_format(fmt, base / fmt)
        for i in range(2):
            w.add(simulate(10, i))
        out[fmt] = w.finalize()
    return out


def _load_all(fmt: str, root: Path) -> list[Episode]:
    episodes = read_back(fmt, root)
    for ep in episodes:
        for cam in list(ep.images):
            ep.image(cam)
    return episodes


def _fingerprint(episodes: list[Episode]) -> str:
    """Digest of every value of the episodes (meta, arrays, label strings, images)."""
    h = hashlib.sha256()
    for ep in episodes:
        h.update(json.dumps(to_jsonable(ep.meta.__dict__), sort_keys=True).encode())
        for k, v in sorted(vars(ep).items()):
            if k == "meta":
                continue
            items = sorted(v.items()) if isinstance(v, dict) else [("", v)]
            for name, arr in items:
                h.update(f"{k}/{name}".encode())
                h.update(np.asarray(ep.image(name) if k == "images" else arr).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_files_never_load(datasets, tmp_path, fmt):
    """Truncation and bit flips anywhere in a file (header, data, end) raise a SimError that
    names the damaged file, never a wrong result: a flip that lands in bytes no reader uses
    (HDF5 free space) may load, and then gives exactly the undamaged content."""
    src = datasets[fmt]
    reference = _fingerprint(_load_all(fmt, src))
    loaded_same = 0
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    files = [f for f in files if "demoforge_report" not in f.name]
    cases = 0
    for rel in files:
        size = (src / rel).stat().st_size
        spots = [8, size // 2, size - 3]
        if rel.suffix == ".hdf5":  # one file holds everything: flip bits all over it
            spots += [int(x) for x in np.linspace(0, size - 1, 40)[1:-1]]
        for how, where in [("trunc", size // 2)] + [("flip", x) for x in spots]:
            dst = tmp_path / f"{fmt}-{cases}"
            shutil.copytree(src, dst)
            target = dst / rel
            if how == "trunc":
                target.write_bytes(target.read_bytes()[:where])
            else:
                _flip(target, where)
            try:
                got = _fingerprint(_load_all(fmt, dst))
            except SimError as e:
                assert isinstance(e, (FormatError, SchemaError)), (rel, how, where, e)
                assert rel.name in str(e), (rel, how, where, str(e))
            else:
                assert how == "flip" and got == reference, (rel, how, where)
                loaded_same += 1
            shutil.rmtree(dst)
            cases += 1
    assert cases >= 4 * len(files) >= 8 and loaded_same <= cases // 4


def test_truncated_lerobot_meta_parquets_give_format_error(datasets, tmp_path):
    for rel in ("meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet"):
        dst = tmp_path / rel.replace("/", "_")
        shutil.copytree(datasets["lerobot"], dst)
        info = json.loads((dst / "meta/info.json").read_text())
        info.pop("demoforge_integrity")  # reach the parquet reader itself, not the checksum
        (dst / "meta/info.json").write_text(json.dumps(info))
        p = dst / rel
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        with pytest.raises(FormatError, match=rf"{Path(rel).name}: cannot read .*truncated"):
            read_lerobot(dst)


def test_reads_schema_1_0_files():
    episodes = read_robomimic(FIXTURES / "robomimic_v1.hdf5")
    assert len(episodes) == 2 and episodes[0].state is None and episodes[0].target == {}
    assert episodes[0].ee and episodes[0].meta.schema_version == "1.1"
    lr = read_lerobot(FIXTURES / "lerobot_v1")
    assert [len(e) for e in lr] == [6, 4] and lr[0].segment == {} and lr[0].state is None
    assert lr[0].image("front").shape == (6, 32, 32, 3)


ENCODE = textwrap.dedent(
    """
    import sys, hashlib
    import numpy as np
    from pathlib import Path
    from sim.io.lerobot.video import VideoOptions, _encode_mp4
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (24, 240, 320, 3), dtype=np.uint8)
    _encode_mp4(Path(sys.argv[1]), frames, 20, VideoOptions())
    print(hashlib.sha256(Path(sys.argv[1]).read_bytes()).hexdigest())
    """
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_video_bytes_do_not_depend_on_cpu_count(tmp_path):
    """x264 'auto' threads follow the usable CPUs and change the bytes; ours are fixed."""
    cpus = sorted(os.sched_getaffinity(0))
    digests = set()
    for n, use in enumerate(({cpus[0]}, set(cpus))):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-c", ENCODE, str(tmp_path / f"{n}.mp4")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=lambda use=use: os.sched_setaffinity(0, use),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        digests.add(proc.stdout.strip())
    assert len(digests) == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_writer_keeps_no_episode_in_memory(tmp_path, fmt):
    """add() stages to disk: the writer holds no reference to the episodes it was given."""
    import gc
    import weakref

    w = open_format(fmt, tmp_path / "ds")
    refs = []
    for i in range(3):
        ep = simulate(8, i)
        w.add(ep)
        refs.append(weakref.ref(ep))
        del ep
    gc.collect()
    assert all(r() is None for r in refs)
    assert w.num_staged == 3 and len(read_back(fmt, w.finalize())) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_with_a_large_config_names_the_keys(tmp_path, fmt):
    big = {f"key{i}": i for i in range(60)}
    w = open_writer(fmt, tmp_path / "ds", fps=FPS, config={**big, "nested": {"noise": 0.1}})
    w.add(simulate(6, 0))
    with pytest.raises(ConfigError) as e:
        open_writer(
            fmt, tmp_path / "ds", fps=FPS, config={**big, "nested": {"noise": 0.2}}, resume=True
        )
    msg = str(e.value)
    assert "['nested.noise']" in msg and "staged 0.1 vs now 0.2" in msg and "key59" not in msg


def test_open_writer_and_stage_file_refusals(tmp_path):
    from sim.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown output format 'zarr'"):
        open_writer("zarr", tmp_path / "x")
    w = open_format("lerobot", tmp_path / "ds")
    for bad in ("../escape.json", "/abs.json", ""):
        with pytest.raises(ConfigError, match="must be relative inside the dataset"):
            w.stage_file(bad, b"x")
    for reserved in ("meta/info.json", "data/chunk-000/file-000.parquet"):
        with pytest.raises(ConfigError, match="would replace a LeRobot dataset file"):
            w.stage_file(reserved, b"x")
    from sim.io.robomimic import write_robomimic

    path = write_robomimic([simulate(6, 0)], tmp_path / "one.hdf5", {"env_name": "lift"})
    assert path.is_file() and read_robomimic(path)[0].state is not None
    assert not (tmp_path / "one.hdf5.partial").exists()


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs (needs root and mount permission; skipped otherwise), unmounted after."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and the mount command")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode()[-200:]}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_real_disk_full_and_read_only_filesystem(tiny_fs, fmt):
    """On a real full filesystem and a real read-only one: one OutputWriteError naming the path."""
    rng = np.random.default_rng(0)
    ep = simulate(40, 0, cams=False)
    ep.images = {"front": rng.integers(0, 256, (40, 96, 128, 3), dtype=np.uint8)}  # ~1.5 MB
    w = open_format(fmt, tiny_fs / "ds")
    with pytest.raises(OutputWriteError, match=rf"{tiny_fs}.*disk full while writing episode \d"):
        for _ in range(20):
            w.add(ep)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    with pytest.raises(OutputWriteError, match=r"read-only or not writable"):
        open_format(fmt, tiny_fs / "other")


def test_worker_encoded_videos_are_moved_in_with_the_same_bytes(tmp_path):
    """VideoStream (the worker encodes its attempt) + LeRobotWriter = the writer encoding."""
    from sim.io.lerobot import LeRobotWriter
    from sim.io.lerobot.stream import EncodedVideo, VideoStream, scratch_dir
    from sim.io.lerobot.video import VideoOptions

    rng = np.random.default_rng(0)

    def episode(images):
        T = 12
        return Episode(
            meta=EpisodeMeta(task="t", robot="r", fps=20.0, source="test", success=True),
            time=np.arange(T) / 20.0,
            joint_names=["j0"],
            qpos=rng.normal(size=(T, 1)),
            action_names=["j0"],
            action=np.zeros((T, 1)),
            images=images,
        )

    frames = {c: rng.integers(0, 255, (12, 16, 24, 3), dtype=np.uint8) for c in ("a", "b")}
    plain = LeRobotWriter(tmp_path / "plain")
    plain.add(episode(dict(frames)))
    plain.finalize()
    root = tmp_path / "streamed"
    w = LeRobotWriter(root)
    s = VideoStream(scratch_dir(root), "attempt_000000", 20)
    for t in range(12):
        s.push({c: f[t].copy() for c, f in frames.items()})
    enc = s.finish()
    assert set(enc) == {"a", "b"} and all(isinstance(v, EncodedVideo) for v in enc.values())
    np.testing.assert_array_equal(enc["a"]().shape, (12, 16, 24, 3))  # decodable handle
    w.add(episode(enc))
    w.finalize()
    mp4 = lambda r: {str(p.relative_to(r)): p.read_bytes() for p in r.rglob("*.mp4")}  # noqa: E731
    assert mp4(root) == mp4(tmp_path / "plain") and len(mp4(root)) == 2
    assert not (root / "encoding").exists() and not scratch_dir(root).parent.exists()
    st_a = json.loads((root / "meta" / "stats.json").read_text())
    st_b = json.loads((tmp_path / "plain" / "meta" / "stats.json").read_text())
    assert st_a["observation.images.a"] == st_b["observation.images.a"]
    # an aborted attempt leaves nothing; other encoder options are re-encoded, not copied
    s2 = VideoStream(tmp_path / "scratch", "attempt_000001", 20)
    s2.push({"a": frames["a"][0].copy()})
    s2.abort()
    scratch = tmp_path / "scratch"
    assert not scratch.exists() or not list(scratch.iterdir())
    s3 = VideoStream(tmp_path / "scratch", "attempt_000002", 20, VideoOptions(crf=40))
    for t in range(12):
        s3.push({c: f[t].copy() for c, f in frames.items()})
    w3 = LeRobotWriter(tmp_path / "other")
    w3.add(episode(s3.finish()))
    w3.finalize()
    assert len(mp4(tmp_path / "other")) == 2
