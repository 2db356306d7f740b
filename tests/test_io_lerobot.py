"""LeRobot v3.0 writer and v2.x/v3.0 reader (sim.io.lerobot)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError, FormatError, OutputExistsError, SchemaError
from sim.io import lerobot as lr
from sim.io.lerobot import (
    LeRobotWriter,
    VideoClip,
    is_lerobot,
    read_lerobot,
    read_lerobot_columns,
    read_lerobot_info,
    write_lerobot,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
G1 = SHARED / "data" / "g1_pick_bottle"
FPS = 30
T = 20
CAMS = ("front", "wrist")


def _images(i: int, T: int, H: int, W: int, flip: bool) -> np.ndarray:
    """Smooth frames (gradients + a moving bar) that H.264 reproduces well."""
    yy, xx = np.mgrid[0:H, 0:W]
    out = np.empty((T, H, W, 3), np.uint8)
    for k in range(T):
        out[k, ..., 0] = (xx * 255 // (W - 1)).astype(np.uint8)
        out[k, ..., 1] = (yy * 255 // (H - 1)).astype(np.uint8)
        out[k, ..., 2] = 40 + 30 * i
        bar = (xx >= (2 * k) % W) & (xx < (2 * k) % W + 6)
        out[k][bar] = (250, 250, 30)
    return out[:, ::-1].copy() if flip else out


def make_episode(i: int, T: int = T, H: int = 32, W: int = 32, cams=CAMS) -> Episode:
    rng = np.random.default_rng(100 + i)
    q = rng.normal(size=(T, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return Episode(
        meta=EpisodeMeta(
            task="stack",
            robot="panda",
            fps=float(FPS),
            source="generated",
            seed=i,
            success=bool(i % 2),
            instruction=f"stack the cubes ({i % 2})",
            provenance={"source_episode": i, "noise": [0.1, 0.2], "nested": {"a": None}},
        ),
        time=np.arange(T) / FPS,
        joint_names=[f"joint{k}" for k in range(7)],
        qpos=rng.normal(size=(T, 7)),
        qvel=rng.normal(size=(T, 7)).astype(np.float32),
        action_names=[f"joint{k}" for k in range(7)] + ["gripper"],
        action=rng.normal(size=(T, 8)).astype(np.float32),
        ee={arm: np.c_[rng.normal(size=(T, 3)), q] for arm in ("left", "right")},
        gripper={"left": rng.uniform(size=T), "right": rng.uniform(size=T)},
        objects={obj: np.c_[rng.normal(size=(T, 3)), q] for obj in ("cube", "plate")},
        subtasks={"grasp": np.arange(T) > T // 2, "lift": np.arange(T) > 3 * T // 4},
        images={c: _images(i, T, H, W, flip=c == "wrist") for c in cams},
    )


def f32(a) -> np.ndarray:
    return np.asarray(a).astype(np.float32)


@pytest.fixture(scope="module")
def episodes() -> list[Episode]:
    return [make_episode(0), make_episode(1, T=T + 5)]


@pytest.fixture(scope="module")
def written(tmp_path_factory, episodes) -> Path:
    root = tmp_path_factory.mktemp("lerobot") / "ds"
    write_lerobot(episodes, root, config={"task": {"name": "stack"}, "seed": 7})
    return root


@pytest.fixture
def copy_of(written, tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(written, dst)
    return dst


def assert_same(a: Episode, b: Episode) -> None:
    """b (read back) equals a (written) with float32 storage."""
    assert dataclasses_equal_meta(a.meta, b.meta)
    np.testing.assert_array_equal(b.time, np.arange(len(a)) / a.meta.fps)
    assert b.joint_names == a.joint_names and b.action_names == a.action_names
    for name in ("qpos", "qvel", "action"):
        got = getattr(b, name)
        assert got.dtype == np.float32
        assert got.tobytes() == f32(getattr(a, name)).tobytes(), name
    for group in ("ee", "gripper", "objects"):
        assert list(getattr(b, group)) == list(getattr(a, group))
        for k, v in getattr(a, group).items():
            assert getattr(b, group)[k].tobytes() == f32(v).tobytes(), (group, k)
    assert list(b.subtasks) == list(a.subtasks)
    for k, v in a.subtasks.items():
        np.testing.assert_array_equal(b.subtasks[k], v)
    assert sorted(b.images) == sorted(a.images)


def dataclasses_equal_meta(a: EpisodeMeta, b: EpisodeMeta) -> bool:
    assert b == a, (a, b)
    return True


# ---------------------------------------------------------------------------------------------
# round trip and on-disk layout
# ---------------------------------------------------------------------------------------------


def test_round_trip_is_exact(written, episodes):
    back = read_lerobot(written)
    assert len(back) == len(episodes)
    for a, b in zip(episodes, back, strict=True):
        assert_same(a, b)
        assert all(isinstance(v, VideoClip) for v in b.images.values())  # lazy until asked
        b.validate()


def test_read_subset_and_unknown_episode(written, episodes):
    (b,) = read_lerobot(written, episodes=[1])
    assert_same(episodes[1], b)
    with pytest.raises(ConfigError, match=r"no episode 5; the dataset has 2 episodes"):
        read_lerobot(written, episodes=[5])


def test_layout_and_info_json(written, episodes):
    names = sorted(str(p.relative_to(written)) for p in written.rglob("*") if p.is_file())
    assert names == sorted(
        [
            "meta/info.json",
            "meta/stats.json",
            "meta/tasks.parquet",
            "meta/episodes/chunk-000/file-000.parquet",
            "data/chunk-000/file-000.parquet",
            "meta/demoforge/episodes.jsonl",
            "meta/demoforge/dataset.json",
            *(f"videos/observation.images.{c}/chunk-000/file-000.mp4" for c in CAMS),
        ]
    )
    info = json.loads((written / "meta/info.json").read_text())
    n = sum(len(e) for e in episodes)
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == FPS and isinstance(info["fps"], int)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, n, 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == (
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    assert info["splits"] == {"train": "0:2"} and info["robot_type"] == "panda"
    assert info["chunks_size"] == 1000
    assert (info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (100, 200)
    feats = info["features"]
    for name, spec in lr.DEFAULT_FEATURES.items():
        assert feats[name] == spec
    assert feats["observation.state"]["names"] == [f"joint{k}" for k in range(7)] + [
        "left_gripper",
        "right_gripper",
    ]
    assert feats["action"]["names"] == episodes[0].action_names
    assert feats["observation.ee_pose.left"]["names"] == ["x", "y", "z", "qw", "qx", "qy", "qz"]
    assert feats["observation.environment_state"]["names"][:8] == [
        "cube.x",
        "cube.y",
        "cube.z",
        "cube.qw",
        "cube.qx",
        "cube.qy",
        "cube.qz",
        "plate.x",
    ]
    # 0/1 floats, not bool: LeRobot's normalizer subtracts means from every observation.* input
    assert feats["observation.subtask.grasp"] == {"dtype": "float32", "shape": [1], "names": None}
    vinfo = feats["observation.images.front"]
    assert vinfo["dtype"] == "video" and vinfo["shape"] == [32, 32, 3]
    for key, value in {
        "video.fps": FPS,
        "video.height": 32,
        "video.width": 32,
        "video.codec": "h264",
        "video.pix_fmt": "yuv420p",
        "is_depth_map": False,
    }.items():
        assert vinfo["info"][key] == value
    demo = info["demoforge"]
    assert demo["config"] == {"task": {"name": "stack"}, "seed": 7}
    assert demo["layout"]["joint_names"] == episodes[0].joint_names
    assert demo["schema_version"] == episodes[0].meta.schema_version
    assert json.loads((written / "meta/demoforge/dataset.json").read_text()) == demo


def test_parquet_columns_match_features(written, episodes):
    info = json.loads((written / "meta/info.json").read_text())
    for path in written.rglob("*.parquet"):
        pq.read_table(path)  # every parquet is readable by pyarrow
    data = pq.ParquetFile(written / "data/chunk-000/file-000.parquet")
    declared = {k for k, v in info["features"].items() if v["dtype"] != "video"}
    assert set(data.schema_arrow.names) == declared
    for name in declared:
        t, shape = data.schema_arrow.field(name).type, info["features"][name]["shape"]
        if shape == [1]:
            assert not pa.types.is_list(t) and not pa.types.is_fixed_size_list(t), name
        else:
            assert t.list_size == shape[0], name
    assert data.metadata.num_row_groups == len(episodes)  # one row group per episode
    assert [data.metadata.row_group(i).num_rows for i in range(2)] == [len(e) for e in episodes]
    assert data.metadata.row_group(0).column(0).compression == "SNAPPY"
    table = data.read()
    n = sum(len(e) for e in episodes)
    np.testing.assert_array_equal(table["index"].to_numpy(), np.arange(n))
    fi = table["frame_index"].to_numpy()
    ts = table["timestamp"].to_numpy()
    assert ts.dtype == np.float32
    np.testing.assert_array_equal(ts, (fi / FPS).astype(np.float32))
    np.testing.assert_array_equal(fi, np.concatenate([np.arange(len(e)) for e in episodes]))
    np.testing.assert_array_equal(table["task_index"].to_numpy()[[0, -1]], [0, 1])
    done = table["next.done"].to_numpy(zero_copy_only=False)
    assert done.sum() == 2 and done[len(episodes[0]) - 1] and done[-1]
    success = table["next.success"].to_numpy(zero_copy_only=False)
    assert success.sum() == 1 and success[-1]  # only episode 1 succeeded

    eps = pq.read_table(written / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    required = [
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    ]
    for cam in CAMS:
        required += [
            f"videos/observation.images.{cam}/{k}"
            for k in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
        ]
    for row, ep in zip(eps, episodes, strict=True):
        assert all(k in row for k in required)
        assert row["tasks"] == [ep.meta.instruction] and row["length"] == len(ep)
        assert row["dataset_to_index"] - row["dataset_from_index"] == len(ep)
        assert len(row["stats/action/mean"]) == 8
        assert np.shape(row["stats/observation.images.front/mean"]) == (3, 1, 1)
    assert eps[1]["videos/observation.images.front/from_timestamp"] == len(episodes[0]) / FPS
    tasks = pd.read_parquet(written / "meta/tasks.parquet")
    assert tasks.index.name == "task"
    assert list(tasks.index) == [e.meta.instruction for e in episodes]
    assert list(tasks["task_index"]) == [0, 1]


def test_only_integer_columns_are_dictionary_encoded(written):
    data = pq.ParquetFile(written / "data/chunk-000/file-000.parquet")
    rg = data.metadata.row_group(0)
    encoded = {}
    for i in range(rg.num_columns):
        col = rg.column(i)
        encoded[col.path_in_schema.split(".list.")[0]] = "PLAIN_DICTIONARY" in col.encodings or (
            "RLE_DICTIONARY" in col.encodings
        )
    schema = data.schema_arrow
    for name in schema.names:
        t = schema.field(name).type
        if pa.types.is_fixed_size_list(t):
            t = t.value_type
        numbered = pa.types.is_integer(t)  # parquet never dictionary-encodes bools
        key = next(k for k in encoded if k == name or k.startswith(name + "."))
        assert encoded[key] == numbered, (name, t, encoded[key])


@pytest.mark.parametrize(
    "arr",
    [
        pa.array(np.arange(7, dtype=np.int64)),
        pa.array(np.linspace(-1, 1, 9, dtype=np.float32)).slice(3, 4),
        pa.array([True, False, True, True, False, False, True, False, True, True]).slice(3),
        pa.array(np.arange(5, dtype=np.float64)).slice(5),
        pa.array([], pa.bool_()),
        pa.chunked_array([pa.array([1, 2], pa.int32()), pa.array([3], pa.int32())]),
        pa.array([1.0, None, 3.0]),  # nulls: pyarrow's own conversion
    ],
)
def test_arrow_numpy_equals_pyarrow_conversion(arr):
    from sim.io.lerobot.features import arrow_numpy

    got = arrow_numpy(arr)
    want = arr.to_numpy(zero_copy_only=False)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    if len(got) and arr.null_count == 0:
        got[0] = got[-1]  # a copy, writable: the table's buffers are not aliased


def test_episode_stats_in_one_pass_equal_per_feature_stats():
    from sim.io.lerobot.stats import _numeric_stats, numeric_stats_many

    rng = np.random.default_rng(3)
    cols = {
        "state": rng.normal(size=(37, 16)).astype(np.float32),
        "scalar": rng.normal(size=37),
        "ids": rng.integers(0, 5, 37),
        "flag": rng.random(37) > 0.5,
        "wide": rng.normal(size=(37, 3, 2)),
    }
    many = numeric_stats_many(cols)
    assert list(many) == list(cols)
    for name, col in cols.items():
        one = _numeric_stats(col)
        assert list(many[name]) == list(one)
        for k, v in one.items():
            assert many[name][k].shape == v.shape, (name, k)
            if k in ("min", "max", "count") or k.startswith("q"):  # order statistics: exact
                np.testing.assert_array_equal(many[name][k], v, err_msg=f"{name} {k}")
            else:  # sums: equal up to summation order
                np.testing.assert_allclose(many[name][k], v, rtol=1e-12, atol=1e-15)
    assert numeric_stats_many({}) == {}


def test_reading_a_dataset_does_not_import_pandas(written):
    """pyarrow's to_numpy imports pandas (0.3-0.7 s): every generation worker reads its
    source dataset, so the reader must not go through it."""
    code = (
        "import sys; from sim.io.lerobot import read_lerobot; "
        f"eps = read_lerobot({str(written)!r}); "
        "assert len(eps) == 2 and eps[0].qpos.size; "
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_stats_json(written, episodes):
    stats = json.loads((written / "meta/stats.json").read_text())
    info = json.loads((written / "meta/info.json").read_text())
    assert set(stats) == set(info["features"])
    actions = np.concatenate([e.action for e in episodes]).astype(np.float64)
    a = stats["action"]
    assert set(a) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    np.testing.assert_allclose(a["mean"], actions.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a["std"], actions.std(0), rtol=1e-6)
    np.testing.assert_allclose(a["min"], actions.min(0))
    np.testing.assert_allclose(a["max"], actions.max(0))
    assert a["count"] == [len(actions)]
    assert stats["timestamp"]["count"] == [len(actions)] and len(stats["timestamp"]["mean"]) == 1
    img = stats["observation.images.front"]
    for k, v in img.items():
        if k != "count":
            assert np.shape(v) == (3, 1, 1) and 0 <= np.min(v) and np.max(v) <= 1, k
    frames = np.concatenate([e.images["front"] for e in episodes]).reshape(-1, 3) / 255
    np.testing.assert_allclose(np.ravel(img["mean"]), frames.mean(0), rtol=1e-9)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-12))


def test_video_pts_exact_and_frames_close(written, episodes):
    n = sum(len(e) for e in episodes)
    for cam in CAMS:
        path = written / f"videos/observation.images.{cam}/chunk-000/file-000.mp4"
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264" and s.average_rate == FPS
            decoded = [(f.pts * s.time_base, f.to_ndarray(format="rgb24")) for f in c.decode(s)]
        # every frame at exactly k/fps over the whole concatenated file
        assert [t for t, _ in decoded] == [Fraction(k, FPS) for k in range(n)]
        frames = np.stack([img for _, img in decoded])
        expected = np.concatenate([e.images[cam] for e in episodes])
        assert _psnr(frames, expected) > 30
    back = read_lerobot(written)
    for a, b in zip(episodes, back, strict=True):
        for cam in CAMS:
            clip = b.images[cam]
            assert clip.from_timestamp == (0.0 if a is episodes[0] else len(episodes[0]) / FPS)
            got = b.image(cam)
            assert got.shape == a.images[cam].shape and got.dtype == np.uint8
            assert _psnr(got, a.images[cam]) > 30


def test_read_columns_and_info(written, episodes):
    info = read_lerobot_info(written)
    assert info.codebase_version == "v3.0" and info.fps == FPS and info.robot_type == "panda"
    assert info.feature_names("observation.state")[-1] == "right_gripper"
    assert info.video_keys == [f"observation.images.{c}" for c in CAMS]
    cols = read_lerobot_columns(written, 1, info)
    assert cols["action"].tobytes() == episodes[1].action.tobytes()
    np.testing.assert_array_equal(cols["episode_index"], 1)
    assert is_lerobot(written)


def test_rollover_to_new_files(tmp_path, episodes):
    root = tmp_path / "ds"
    w = LeRobotWriter(root, data_files_size_in_mb=1e-6, video_files_size_in_mb=1e-6)
    for ep in episodes:
        w.add(ep)
    w.finalize()
    assert (root / "data/chunk-000/file-001.parquet").is_file()
    assert (root / "videos/observation.images.front/chunk-000/file-001.mp4").is_file()
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["data/file_index"] for r in rows] == [0, 1]
    assert [r["videos/observation.images.front/from_timestamp"] for r in rows] == [0.0, 0.0]
    for a, b in zip(episodes, read_lerobot(root), strict=True):
        assert_same(a, b)
        assert _psnr(b.image("front"), a.images["front"]) > 30


def test_minimal_episode_without_images_or_qpos(tmp_path):
    ep = Episode(
        meta=EpisodeMeta(task="push", robot="toy", fps=10),
        time=np.arange(5) / 10,
        action_names=["vx", "vy"],
        action=np.ones((5, 2)),
        gripper={"main": np.linspace(0, 1, 5)},
    )
    root = write_lerobot([ep], tmp_path / "ds")
    info = json.loads((root / "meta/info.json").read_text())
    assert info["video_path"] is None
    assert info["features"]["observation.state"]["names"] == ["main_gripper"]
    (back,) = read_lerobot(root)
    assert back.qpos is None and back.qvel is None and back.images == {}
    assert back.gripper["main"].tobytes() == f32(ep.gripper["main"]).tobytes()
    assert back.meta.task == "push" and back.meta.fps == 10


# ---------------------------------------------------------------------------------------------
# atomicity, resume, overwrite
# ---------------------------------------------------------------------------------------------


def test_crash_before_finalize_is_resumable(tmp_path, episodes):
    root = tmp_path / "ds"

    def crashing():
        yield episodes[0]
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        write_lerobot(crashing(), root)
    partial = tmp_path / "ds.partial"
    assert not root.exists() and partial.is_dir()
    assert not is_lerobot(partial) and not (partial / "meta" / "info.json").exists()
    # a half-staged next episode (mp4 written, no commit marker) is discarded on resume
    (partial / "episodes" / "episode_000001.front.mp4").write_bytes(b"junk")

    with pytest.raises(
        OutputExistsError,
        match=r"ds\.partial exists \(1 staged episodes\); "
        r"pass resume=True",
    ):
        LeRobotWriter(root)
    w = LeRobotWriter(root, resume=True)
    assert w.num_staged == 1
    assert [m.seed for m in w.staged_meta] == [episodes[0].meta.seed]
    assert not (partial / "episodes" / "episode_000001.front.mp4").exists()
    assert w.add(episodes[1]) == 1
    w.finalize()
    assert not partial.exists()
    for a, b in zip(episodes, read_lerobot(root), strict=True):
        assert_same(a, b)


def test_resume_of_an_earlier_releases_parquet_staging(tmp_path, episodes):
    """Staging folders of releases that staged each episode as parquet resume and finalize."""
    root = tmp_path / "ds"
    w = LeRobotWriter(root)
    w.add(episodes[0])
    staged = tmp_path / "ds.partial" / "episodes" / "episode_000000.arrow"
    with pa.OSFile(str(staged), "rb") as f:
        table = pa.ipc.open_file(f).read_all()
    pq.write_table(table, staged.with_suffix(".parquet"), compression="snappy")
    staged.unlink()
    del w
    w = LeRobotWriter(root, resume=True)
    assert w.num_staged == 1
    w.add(episodes[1])
    w.finalize()
    for a, b in zip(episodes, read_lerobot(root), strict=True):
        assert_same(a, b)


def test_crash_during_finalize_leaves_no_root(tmp_path, episodes, monkeypatch):
    root = tmp_path / "ds"
    w = LeRobotWriter(root)
    for ep in episodes:
        w.add(ep)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(lr.writer, "publish_dir", boom)
    with pytest.raises(OSError, match="disk full"):
        w.finalize()
    assert not root.exists()
    monkeypatch.undo()
    w2 = LeRobotWriter(root, resume=True)
    assert w2.num_staged == 2
    w2.finalize()
    assert len(read_lerobot(root)) == 2


def test_context_manager_finalizes_only_on_success(tmp_path, episodes):
    root = tmp_path / "ds"
    with pytest.raises(KeyError):
        with LeRobotWriter(root) as w:
            w.add(episodes[0])
            raise KeyError("stop")
    assert not root.exists()
    with LeRobotWriter(root, resume=True) as w:
        assert w.num_staged == 1
    assert read_lerobot_info(root).raw["total_episodes"] == 1


def test_resume_with_different_settings_is_refused(tmp_path, episodes):
    root = tmp_path / "ds"
    w = LeRobotWriter(root, config={"seed": 1})
    w.add(episodes[0])
    with pytest.raises(
        ConfigError,
        match=r"config is \{'seed': 2\} but the staged episodes were "
        r"written with \{'seed': 1\}",
    ):
        LeRobotWriter(root, resume=True, config={"seed": 2})


def test_existing_output_and_overwrite(written, tmp_path, episodes):
    with pytest.raises(
        OutputExistsError,
        match=rf"output {written} already exists; pass "
        "overwrite=True",
    ):
        LeRobotWriter(written)
    root = tmp_path / "ds"
    write_lerobot(episodes, root)
    write_lerobot(episodes[:1], root, overwrite=True)
    assert len(read_lerobot(root)) == 1
    assert not any(p.name.startswith("ds.") for p in tmp_path.iterdir())


def test_finalize_without_episodes(tmp_path):
    with pytest.raises(SchemaError, match="no episodes were added"):
        LeRobotWriter(tmp_path / "ds").finalize()


# ---------------------------------------------------------------------------------------------
# bad input to the writer
# ---------------------------------------------------------------------------------------------


def _nan_action(ep: Episode) -> Episode:
    ep.action[3, 1] = np.nan
    return ep


def _renamed_joints(ep: Episode) -> Episode:
    ep.joint_names = [f"j{k}" for k in range(7)]
    return ep


def _fps(ep: Episode) -> Episode:
    ep.meta.fps = 29.97
    ep.time = np.arange(len(ep)) / 29.97
    return ep


def _time(ep: Episode) -> Episode:
    ep.time = ep.time + 0.5
    return ep


def _odd_image(ep: Episode) -> Episode:
    ep.images = {c: v[:, :31] for c, v in ep.images.items()}
    return ep


def _image_size(ep: Episode) -> Episode:
    ep.images = {c: np.zeros((len(ep), 16, 16, 3), np.uint8) for c in ep.images}
    return ep


def _slash(ep: Episode) -> Episode:
    ep.objects = {"a/b": ep.objects["cube"]}
    return ep


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (_nan_action, r"episode 1: generated: 'action' has NaN/inf \(first at step 3\)"),
        (
            _renamed_joints,
            r"joint_names is \['j0'.*but the dataset's first episode has "
            r"\['joint0'",
        ),
        (_fps, r"meta.fps is 29.97; LeRobot v3.0 needs an integer fps"),
        (_time, r"'time' at step 0 is 0.5 s; LeRobot timestamps must be frame_index/fps = 0.0"),
        (
            _odd_image,
            r"episode 1 \(generated\): images\['front'\] is 31x32; yuv420p video "
            r"needs even height and width",
        ),
        (
            _image_size,
            r"images\['front'\] frames are 16x16, but the dataset's first episode has "
            r"32x32",
        ),
        (_slash, r"objects key 'a/b' is not a valid LeRobot feature name part"),
    ],
)
def test_writer_rejects_bad_episode(tmp_path, corrupt, message):
    w = LeRobotWriter(tmp_path / "ds")
    w.add(make_episode(0))
    with pytest.raises(SchemaError, match=message):
        w.add(corrupt(make_episode(1)))
    assert w.num_staged == 1
    assert sorted(p.name for p in (tmp_path / "ds.partial" / "episodes").iterdir()) == [
        "episode_000000.arrow",
        "episode_000000.front.mp4",
        "episode_000000.json",
        "episode_000000.wrist.mp4",
    ]
    assert not (tmp_path / "ds").exists()


# ---------------------------------------------------------------------------------------------
# bad input to the reader
# ---------------------------------------------------------------------------------------------


def _edit_info(root: Path, fn, keep_integrity: bool = False) -> None:
    """Edit info.json as a tool that rewrites it would: lerobot drops unknown keys such as
    ``demoforge_integrity`` (the checksums), so the reader's content checks are reached."""
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    if not keep_integrity:
        info.pop(lr.INTEGRITY_KEY, None)
    fn(info)
    path.write_text(json.dumps(info))


def _edit_data(root: Path, fn) -> None:
    path = root / "data/chunk-000/file-000.parquet"
    pq.write_table(fn(pq.read_table(path)), path)
    _edit_info(root, lambda i: None)


def _drop_action(t: pa.Table) -> pa.Table:
    return t.drop_columns(["action"])


def _nan_state(t: pa.Table) -> pa.Table:
    state = np.stack(t["observation.state"].to_numpy(zero_copy_only=False)).astype(np.float32)
    state[3, 2] = np.nan
    col = pa.FixedSizeListArray.from_arrays(pa.array(state.ravel()), state.shape[1])
    return t.set_column(t.schema.get_field_index("observation.state"), "observation.state", col)


def _shift_timestamp(t: pa.Table) -> pa.Table:
    ts = t["timestamp"].to_numpy().copy()
    ts[4] += 0.01
    return t.set_column(t.schema.get_field_index("timestamp"), "timestamp", pa.array(ts))


def _grasp_signal(values) -> callable:
    """Replace the ``observation.subtask.grasp`` column with ``values(old)``."""

    def fn(t: pa.Table) -> pa.Table:
        key = "observation.subtask.grasp"
        new = pa.array(values(t[key].to_numpy().copy()))
        return t.set_column(t.schema.get_field_index(key), key, new)

    return fn


def _half(v: np.ndarray) -> np.ndarray:
    v[2] = 0.5
    return v


def _episode_length(root: Path) -> None:
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    t = pq.read_table(path)
    lengths = t["length"].to_numpy().copy()
    lengths[0] += 1
    pq.write_table(
        t.set_column(t.schema.get_field_index("length"), "length", pa.array(lengths)), path
    )
    _edit_info(root, lambda i: None)


@pytest.mark.parametrize(
    "corrupt, error, message",
    [
        (
            lambda r: (r / "meta/info.json").unlink(),
            FormatError,
            r"meta/info.json: file missing; a LeRobot dataset",
        ),
        (
            lambda r: _edit_info(r, lambda i: i.update(codebase_version="v9.9")),
            FormatError,
            r"info.json: key 'codebase_version' is 'v9.9'; expected one of "
            r"\['v2.0', 'v2.1', 'v3.0'\]",
        ),
        (
            lambda r: _edit_info(r, lambda i: i.pop("features")),
            FormatError,
            r"info.json: missing key 'features'; expected a dict of feature specs",
        ),
        (
            lambda r: _edit_info(r, lambda i: i.update(fps=29.97)),
            FormatError,
            r"info.json: key 'fps' is 29.97; expected a positive integer",
        ),
        (
            lambda r: _edit_info(r, lambda i: i["features"].pop("index")),
            FormatError,
            r"features lacks default feature 'index'",
        ),
        (
            lambda r: _edit_info(r, lambda i: i["features"]["action"].update(shape=[5])),
            FormatError,
            r"file-000.parquet: column 'action' has 8 values at row 0; meta/info.json "
            r"features\['action'\]\['shape'\] is \[5\]",
        ),
        (
            lambda r: _edit_data(r, _drop_action),
            FormatError,
            r"file-000.parquet: column 'action' declared in meta/info.json features is missing",
        ),
        (
            lambda r: _edit_data(r, _nan_state),
            SchemaError,
            r"file-000.parquet: episode 0 column 'observation.state' has NaN/inf at step 3",
        ),
        (
            lambda r: _edit_data(r, _shift_timestamp),
            FormatError,
            r"episode 0 column 'timestamp' is 0.14\d+ at frame 4; expected frame_index/fps",
        ),
        (
            lambda r: _edit_data(r, _grasp_signal(_half)),
            FormatError,
            r"file-000.parquet: column 'observation.subtask.grasp' of episode 0 holds 0.5; "
            r"a subtask signal is 0 or 1",
        ),
        (
            _episode_length,
            FormatError,
            r"file-000.parquet: episode 0 has 20 rows; the episode metadata says length 21",
        ),
        (
            lambda r: (r / "meta/tasks.parquet").unlink(),
            FormatError,
            r"tasks.parquet: file missing",
        ),
        (
            lambda r: shutil.rmtree(r / "meta/episodes"),
            FormatError,
            r"meta/episodes: no parquet files",
        ),
        (
            lambda r: (r / "data/chunk-000/file-000.parquet").unlink(),
            FormatError,
            r"file-000.parquet: data file missing \(episode 0\)",
        ),
        (
            lambda r: (r / "meta/demoforge/episodes.jsonl").unlink(),
            FormatError,
            r"episodes.jsonl: file missing",
        ),
    ],
)
def test_reader_rejects_bad_dataset(copy_of, corrupt, error, message):
    corrupt(copy_of)
    with pytest.raises(error, match=message):
        read_lerobot(copy_of)


def test_reader_takes_bool_subtask_signals_of_older_datasets(copy_of, episodes):
    def old(info: dict) -> None:
        info["features"]["observation.subtask.grasp"]["dtype"] = "bool"

    _edit_data(copy_of, _grasp_signal(lambda v: v.astype(bool)))
    _edit_info(copy_of, old)
    got = read_lerobot(copy_of)
    for a, b in zip(episodes, got, strict=True):
        np.testing.assert_array_equal(b.subtasks["grasp"], a.subtasks["grasp"])
        assert b.subtasks["grasp"].dtype == bool


def test_reader_missing_or_truncated_video(copy_of, episodes):
    video = copy_of / "videos/observation.images.wrist/chunk-000/file-000.mp4"
    shutil.copy(video, copy_of / "wrist.mp4")
    video.unlink()
    back = read_lerobot(copy_of)
    assert sorted(back[0].images) == ["front"]  # images only where the file exists
    assert read_lerobot_info(copy_of).missing_videos == {
        0: ["observation.images.wrist"],
        1: ["observation.images.wrist"],
    }
    clip = VideoClip(
        copy_of / "wrist.mp4", from_timestamp=len(episodes[0]) / FPS, length=T + 6, fps=FPS
    )
    with pytest.raises(
        FormatError,
        match=r"wrist.mp4: expected 26 frames from 0.666\d* s at 30 "
        r"fps, decoded 25",
    ):
        clip()


def test_foreign_v3_dataset_mapping(copy_of, episodes):
    """Without our "demoforge" metadata the reader maps columns generically."""
    _edit_info(copy_of, lambda i: i.pop("demoforge"))
    shutil.rmtree(copy_of / "meta/demoforge")
    assert read_lerobot_info(copy_of).demoforge is None
    back = read_lerobot(copy_of)
    state_names = [f"joint{k}" for k in range(7)] + ["left_gripper", "right_gripper"]
    for i, (a, b) in enumerate(zip(episodes, back, strict=True)):
        assert b.joint_names == state_names
        expected_state = np.c_[f32(a.qpos), f32(a.gripper["left"]), f32(a.gripper["right"])]
        assert b.qpos.tobytes() == expected_state.tobytes()
        assert b.action.tobytes() == a.action.tobytes()
        assert b.meta.source == f"{copy_of}#{i}"
        assert b.meta.task == a.meta.instruction and b.meta.robot == "panda"
        assert b.meta.success is bool(i % 2)  # from next.success
        lrp = b.meta.provenance["lerobot"]
        assert lrp["feature_names"]["observation.environment_state"][0] == "cube.x"
        assert "ee" in lrp["missing_fields"] and lrp["missing_videos"] == []
        assert sorted(b.images) == sorted(CAMS)


def test_is_lerobot(tmp_path):
    assert not is_lerobot(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/info.json").write_text('{"codebase_version": "v1.0"}')
    assert not is_lerobot(tmp_path)
    (tmp_path / "meta/info.json").write_text("{not json")
    assert not is_lerobot(tmp_path)


# ---------------------------------------------------------------------------------------------
# real LeRobot v2.1 data (../shared)
# ---------------------------------------------------------------------------------------------

needs_g1 = pytest.mark.skipif(not G1.is_dir(), reason=f"shared dataset {G1} is absent")


@needs_g1
def test_g1_v21_all_episodes():
    assert is_lerobot(G1)
    info = read_lerobot_info(G1)
    assert info.codebase_version == "v2.1" and info.fps == 30
    eps = read_lerobot(G1)
    assert len(eps) == 100 and sum(len(e) for e in eps) == 35965
    names = info.feature_names("observation.state")
    assert (
        len(names) == 26
        and names[0] == "kLeftShoulderPitch"
        and names[-1] == "kRightHandThumbRotation"
    )
    with_video = [i for i, e in enumerate(eps) if e.images]
    assert with_video == [1, 2, 4]
    assert sorted(info.missing_videos) == sorted(set(range(100)) - {1, 2, 4})
    e0 = eps[0]
    assert e0.joint_names == names and e0.action_names == info.feature_names("action")
    assert e0.qpos.shape == (479, 26) and e0.qpos.dtype == np.float32
    assert e0.meta.task == "Pick up the yellow bottle on the table."
    assert e0.meta.robot == "Unitree_G1_Inspire" and e0.meta.success is None
    assert e0.meta.source == f"{G1}#0"
    assert e0.meta.provenance["lerobot"]["missing_videos"] == ["observation.images.cam_high"]
    raw = pq.read_table(G1 / "data/chunk-000/episode_000000.parquet")
    state = np.stack(raw["observation.state"].to_numpy(zero_copy_only=False))
    assert e0.qpos.tobytes() == state.astype(np.float32).tobytes()
    for e in eps:
        e.validate()


@needs_g1
def test_g1_av1_video_decodes():
    (ep,) = read_lerobot(G1, episodes=[2])
    frames = ep.image("cam_high")  # AV1 640x480 through PyAV (libdav1d)
    assert frames.shape == (len(ep), 480, 640, 3) and frames.dtype == np.uint8
    assert frames[::50, ::8, ::8].std() > 10  # a real picture, not a blank frame


def test_foreign_image_dtype_feature_is_lazy_png(copy_of, episodes):
    """Image-dtype features (PNG bytes in parquet, as HF datasets.Image writes) decode lazily."""
    import imageio.v3 as iio

    _edit_info(copy_of, lambda i: i.pop("demoforge"))
    shutil.rmtree(copy_of / "meta/demoforge")
    _edit_info(
        copy_of,
        lambda i: i["features"].update(
            {
                "observation.images.top": {
                    "dtype": "image",
                    "shape": [32, 32, 3],
                    "names": ["height", "width", "channels"],
                }
            }
        ),
    )
    frames = np.concatenate([e.images["front"] for e in episodes])
    pngs = [{"bytes": iio.imwrite("<bytes>", f, extension=".png"), "path": None} for f in frames]
    _edit_data(copy_of, lambda t: t.append_column("observation.images.top", pa.array(pngs)))
    back = read_lerobot(copy_of)
    for a, b in zip(episodes, back, strict=True):
        assert callable(b.images["top"])
        np.testing.assert_array_equal(b.image("top"), a.images["front"])  # lossless


def test_writer_cannot_be_reused_after_finalize(tmp_path, episodes):
    w = LeRobotWriter(tmp_path / "ds")
    w.add(episodes[0])
    w.finalize()
    with pytest.raises(ConfigError, match=r"LeRobotWriter\(.*ds\) is already finalized"):
        w.add(episodes[1])


def test_resume_after_crash_in_first_episode_forgets_its_schema(tmp_path, episodes, monkeypatch):
    root = tmp_path / "ds"
    w = LeRobotWriter(root)

    def boom(*args, **kwargs):
        raise OSError("encoder crashed")

    monkeypatch.setattr(lr.writer, "_encode_mp4", boom)
    with pytest.raises(OSError, match="encoder crashed"):
        w.add(episodes[0])
    monkeypatch.undo()
    w = LeRobotWriter(root, resume=True)
    assert w.num_staged == 0
    other = make_episode(3, cams=("side",))  # a different camera set is fine: nothing committed
    w.add(other)
    w.finalize()
    assert sorted(read_lerobot(root)[0].images) == ["side"]


def test_demoforge_metadata_survives_info_rewrite(copy_of, episodes):
    """lerobot drops unknown info.json keys when it rewrites the file; meta/demoforge/ remains."""
    _edit_info(copy_of, lambda i: i.pop("demoforge"))
    for a, b in zip(episodes, read_lerobot(copy_of), strict=True):
        assert_same(a, b)


def test_rewrite_from_lazy_images(written, tmp_path, episodes):
    """Episodes read back (lazy VideoClip images) can be written again, e.g. to convert."""
    again = write_lerobot(read_lerobot(written), tmp_path / "again")
    for a, b in zip(episodes, read_lerobot(again), strict=True):
        assert_same(a, b)
        assert _psnr(b.image("wrist"), a.images["wrist"]) > 30


def test_read_parquet_reads_columns_and_refuses_unknown_ones(tmp_path):
    """ParquetFile.read alone skips unknown columns silently; read_parquet names them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.io.lerobot.features import read_parquet

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": [3.0, 4.0]}), path)
    assert read_parquet(path).column_names == ["a", "b"]
    assert read_parquet(path, columns=["b"]).column("b").to_pylist() == [3.0, 4.0]
    with pytest.raises(pa.ArrowInvalid, match=r"\['zz'\]"):
        read_parquet(path, columns=["a", "zz"])
