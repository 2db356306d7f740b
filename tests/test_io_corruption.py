"""Corruption corpus: damaged demo files of every format never load silently.

Clean files are written here in each format (robosuite demo.hdf5 without checksums as real
ones are, robomimic foreign and our own, LeRobot v3 from the writer and v2.1 from a slice of
the real G1 dataset, RLDS TFRecord, teleop CSV/JSONL), then damaged the ways files are damaged
in the wild: truncated, bytes flipped in the header and in the data region (incl. 4 KiB
overwritten mid-file), NaN rows, time running backwards, denormalized quaternions,
out-of-range joints, wrong shapes, objects kilometres away, jumps faster than physics.
Every damaged file must give one clear SimError naming the file, or (``on_bad_episode="skip"``)
a counted skip: 0 load silently.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SHARED
from wild_helpers import ArmNames, env_info, record, scene_xml, write_demo

from sim.episode import Episode, EpisodeMeta
from sim.errors import SimError
from sim.io import ReadReport, read_episodes
from sim.io.lerobot import INTEGRITY_KEY, write_lerobot
from sim.io.robomimic import write_robomimic
from sim.io.teleop_log import write_teleop_log
from sim.io.tfrecord import encode_example, write_tfrecord
from sim.transforms import quat_normalize, wxyz_to_xyzw

G1 = SHARED / "data" / "g1_pick_bottle"
T = 40


@dataclass
class Case:
    fmt: str
    name: str
    path: Path
    kw: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ byte damage


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def flip(src: Path, dst: Path, offset: int, n: int = 1, seed: int = 0) -> Path:
    """XOR ``n`` bytes at ``offset`` with 0xFF (n == 1) or overwrite them with random bytes."""
    data = bytearray(src.read_bytes())
    if n == 1:
        data[offset] ^= 0xFF
    else:
        data[offset : offset + n] = np.random.default_rng(seed).bytes(n)
    dst.write_bytes(bytes(data))
    return dst


def dataset_offset(path: Path, key: str) -> tuple[int, int]:
    with h5py.File(path, "r") as f:
        d = f[key]
        if d.id.get_offset() is None:  # chunked (checksummed): the first chunk
            info = d.id.get_chunk_info(0)
            return int(info.byte_offset), int(info.size)
        return int(d.id.get_offset()), int(d.id.get_storage_size())


def copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


def edit_h5(src: Path, dst: Path, key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Path:
    copy(src, dst)
    with h5py.File(dst, "r+") as f:
        value = fn(f[key][()].copy())
        attrs = dict(f[key].attrs)
        del f[key]
        f.create_dataset(key, data=value)
        f[key].attrs.update(attrs)
    return dst


# ------------------------------------------------------------------------------ clean files


def robosuite_clean(d: Path) -> Path:
    arm = ArmNames.robosuite(0)
    xml = scene_xml([(arm, "0 0 0.3", "1 0 0 0")])
    recs = [record(xml, [arm], T, seed=s) for s in (0, 1)]
    ctrl = {
        "type": "OSC_POSE",
        "output_max": [0.03] * 3 + [0.1] * 3,
        "output_min": [-0.03] * 3 + [-0.1] * 3,
    }
    attrs = {"env": "Wild", "repository_version": "1.4.1", "env_info": env_info(["Panda"], ctrl)}
    return write_demo(d / "robosuite.hdf5", recs, xml, attrs)


def _episode(seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 10.0
    pos = np.c_[0.4 + 0.05 * np.sin(t), 0.1 * np.cos(t), 0.2 + 0.01 * t]
    quat = quat_normalize(np.c_[np.ones(T), 0.1 * np.sin(t), np.zeros(T), 0.05 * t])
    return Episode(
        meta=EpisodeMeta(task="lift", robot="panda", fps=10.0),
        time=t,
        joint_names=["j0", "j1"],
        qpos=np.c_[np.sin(t), np.cos(t)] * 0.5 + rng.normal(0, 1e-3, (T, 2)),
        action_names=["j0", "j1", "gripper"],
        action=np.c_[np.sin(t), np.cos(t), np.ones(T)] * 0.5,
        ee={"main": np.c_[pos, quat]},
        gripper={"main": np.clip(0.5 + 0.4 * np.sin(t), 0, 1)},
        objects={"cube": np.c_[pos + [0.1, 0, -0.1], quat]},
    )


def robomimic_foreign(d: Path) -> Path:
    """A robomimic low-dim file as published (no checksums): obs + datagen_info."""
    path = d / "robomimic.hdf5"
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(
            {"env_name": "Lift", "type": 1, "env_kwargs": {"robots": ["Panda"], "control_freq": 20}}
        )
        for i in range(2):
            ep = _episode(i)
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = T
            g.create_dataset(
                "actions", data=np.c_[0.1 * ep.action[:, :2], np.zeros((T, 4)), -np.ones(T)]
            )
            obs = g.create_group("obs")
            obs.create_dataset("robot0_eef_pos", data=ep.ee["main"][:, :3])
            obs.create_dataset("robot0_eef_quat", data=wxyz_to_xyzw(ep.ee["main"][:, 3:]))
            obs.create_dataset("robot0_joint_pos", data=ep.qpos)
            dg = g.create_group("datagen_info/object_poses")
            mats = np.tile(np.eye(4), (T, 1, 1))
            mats[:, :3, 3] = ep.objects["cube"][:, :3]
            dg.create_dataset("cube", data=mats)
    return path


def lerobot_v3(d: Path) -> Path:
    return write_lerobot([_episode(0), _episode(1)], d / "lerobot_v3")


def lerobot_v21(d: Path) -> Path | None:
    """The first two episodes of the real G1 dataset (LeRobot v2.1), without videos."""
    if not (G1 / "meta" / "info.json").is_file():
        return None
    root = d / "lerobot_v21"
    (root / "meta").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    for i in range(2):
        name = f"episode_{i:06d}.parquet"
        shutil.copy(G1 / "data" / "chunk-000" / name, root / "data" / "chunk-000" / name)
    info = json.loads((G1 / "meta" / "info.json").read_text())
    lines = {
        k: (G1 / "meta" / k).read_text().splitlines()[:2]
        for k in ("episodes.jsonl", "episodes_stats.jsonl")
    }
    lengths = [json.loads(x)["length"] for x in lines["episodes.jsonl"]]
    info.update(
        total_episodes=2, total_frames=sum(lengths), total_videos=0, splits={"train": "0:2"}
    )
    info["features"] = {k: v for k, v in info["features"].items() if v.get("dtype") != "video"}
    info["video_path"] = None
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    for k, v in lines.items():
        (root / "meta" / k).write_text("\n".join(v) + "\n")
    shutil.copy(G1 / "meta" / "tasks.jsonl", root / "meta" / "tasks.jsonl")
    return root


def rlds_records(d: Path, name: str = "rlds.tfrecord", edit=None) -> Path:
    rng = np.random.default_rng(3)
    payloads = []
    for e in range(2):
        t = np.arange(10)[:, None] / 10.0
        state = np.concatenate(
            [0.3 + 0.02 * np.sin(t + e) * [1, 1, 1], 0.1 * np.cos(t) * [1, 1, 1], np.ones((10, 1))],
            1,
        )
        action = np.c_[0.01 * rng.normal(size=(10, 6)), np.ones(10)]
        feats = {
            "steps/is_first": np.array([1] + [0] * 9),
            "steps/observation/state": state,
            "steps/action": action,
            "steps/language_instruction": [b"pick"] * 10,
        }
        if edit is not None:
            feats = edit(e, feats)
        payloads.append(
            encode_example(
                {
                    k: (
                        np.asarray(v, np.float32).ravel()
                        if k in ("steps/observation/state", "steps/action")
                        else v
                    )
                    for k, v in feats.items()
                }
            )
        )
    path = d / name
    write_tfrecord(path, payloads)
    return path


def teleop(d: Path, fmt: str = "csv") -> Path:
    ep = _episode(0)
    return write_teleop_log(
        Episode(meta=ep.meta, time=ep.time, ee=ep.ee, gripper=ep.gripper),
        d / f"teleop.{fmt}",
        format=fmt,
    )


# ------------------------------------------------------------------------------ the corpus


def _edit_lines(src: Path, dst: Path, fn: Callable[[list[str]], list[str]]) -> Path:
    dst.write_text("\n".join(fn(src.read_text().splitlines())) + "\n")
    return dst


def _csv_cell(lines: list[str], row: int, col: str, value: str) -> list[str]:
    head = next(i for i, x in enumerate(lines) if x.startswith("t,"))
    cols = lines[head].split(",")
    cells = lines[head + 1 + row].split(",")
    cells[cols.index(col)] = value
    lines[head + 1 + row] = ",".join(cells)
    return lines


def _table_edit(root: Path, file: Path, column: str, fn) -> Path:
    t = pq.read_table(file)
    values = np.stack(t[column].to_numpy(zero_copy_only=False)).astype(np.float64)
    values = fn(values)
    if values.ndim == 2:
        col = pa.FixedSizeListArray.from_arrays(
            pa.array(values.astype(np.float32).ravel()), values.shape[1]
        )
        if pa.types.is_list(t.schema.field(column).type):
            col = pa.array(list(values.astype(np.float32)), type=t.schema.field(column).type)
    else:
        col = pa.array(values.astype(t.schema.field(column).type.to_pandas_dtype()))
    pq.write_table(t.set_column(t.schema.get_field_index(column), column, col), file)
    info = root / "meta" / "info.json"
    data = json.loads(info.read_text())
    data.pop(INTEGRITY_KEY, None)  # as a tool that rewrites info.json would
    info.write_text(json.dumps(data))
    return root


def build_corpus(d: Path) -> tuple[list[Case], dict[str, Path]]:
    clean_dir = d / "clean"
    clean_dir.mkdir()
    rs, rm = robosuite_clean(clean_dir), robomimic_foreign(clean_dir)
    ours = write_robomimic(
        [_episode(0), _episode(1)],
        clean_dir / "ours.hdf5",
        {"env_name": "Lift", "type": 1, "env_kwargs": {}},
    )
    v3, v21 = lerobot_v3(clean_dir), lerobot_v21(clean_dir)
    rl, csv, jsonl = rlds_records(clean_dir), teleop(clean_dir), teleop(clean_dir, "jsonl")
    clean = {
        "robosuite": rs,
        "robomimic": rm,
        "robomimic_ours": ours,
        "lerobot_v3": v3,
        "rlds": rl,
        "teleop_csv": csv,
        "teleop_jsonl": jsonl,
    }
    if v21 is not None:
        clean["lerobot_v21"] = v21
    out = d / "bad"
    out.mkdir()
    cases: list[Case] = []

    def add(fmt: str, name: str, path: Path, **kw) -> None:
        cases.append(Case(fmt, name, path, kw))

    # robosuite: damage as found in real copies (no checksums in robosuite files)
    add("robosuite", "truncated 50%", truncate(rs, out / "rs_trunc50.hdf5", 0.5))
    add("robosuite", "truncated 97%", truncate(rs, out / "rs_trunc97.hdf5", 0.97))
    add("robosuite", "header: signature byte", flip(rs, out / "rs_sig.hdf5", 1))
    add("robosuite", "header: superblock address", flip(rs, out / "rs_super.hdf5", 44))
    off, size = dataset_offset(rs, "data/demo_2/states")
    add(
        "robosuite",
        "data: 4 KiB overwritten mid-states",
        flip(rs, out / "rs_4k.hdf5", off + size // 2 - 2048, 4096),
    )
    add(
        "robosuite",
        "data: exponent byte of a cube z",
        flip(rs, out / "rs_expbyte.hdf5", off + 8 * (5 * 30 + 11) + 7),
    )
    offa, sizea = dataset_offset(rs, "data/demo_1/actions")
    add(
        "robosuite",
        "data: 1 KiB overwritten in actions",
        flip(rs, out / "rs_actions.hdf5", offa + sizea // 2 - 512, 1024, seed=1),
    )

    def nan_row(s):
        s[7, 3:9] = np.nan
        return s

    def backwards(s):
        s[12:, 0] -= 1.0
        return s

    def denorm(s):
        s[9, 1 + 11 : 1 + 15] *= 3.6  # cube free-joint quaternion (qpos 11..14)
        return s

    def joint_out(s):
        s[4, 1 + 2] = 9.0  # robot0_joint3 range is +-2.6 rad
        return s

    def far(s):
        s[30, 1 + 8] = 1700.0  # cube x: 1.7 km away
        return s

    def jump(s):
        s[20, 1 + 10] += 3.0  # cube z jumps 3 m in one 50 ms step, stays in the box
        return s

    for nm, fn in (
        ("NaN rows", nan_row),
        ("time runs backwards", backwards),
        ("denormalized free-joint quaternion", denorm),
        ("joint beyond its range", joint_out),
        ("object 1.7 km away", far),
        ("jump beyond physical speed", jump),
    ):
        add(
            "robosuite",
            nm,
            edit_h5(rs, out / f"rs_{nm.replace(' ', '_')}.hdf5", "data/demo_1/states", fn),
        )
    add(
        "robosuite",
        "wrong shape: states width",
        edit_h5(rs, out / "rs_width.hdf5", "data/demo_1/states", lambda s: s[:, :-2]),
    )
    add(
        "robosuite",
        "wrong shape: actions rows",
        edit_h5(rs, out / "rs_rows.hdf5", "data/demo_1/actions", lambda a: a[:-3]),
    )

    # robomimic as published (no checksums), and ours (Fletcher-32)
    add("robomimic", "truncated", truncate(rm, out / "rm_trunc.hdf5", 0.6))
    add("robomimic", "header: signature byte", flip(rm, out / "rm_sig.hdf5", 3))
    off, size = dataset_offset(rm, "data/demo_1/obs/robot0_eef_pos")
    add("robomimic", "data: eef_pos overwritten", flip(rm, out / "rm_data.hdf5", off, size))
    add(
        "robomimic",
        "NaN rows",
        edit_h5(
            rm,
            out / "rm_nan.hdf5",
            "data/demo_0/obs/robot0_eef_pos",
            lambda a: np.where(np.arange(T)[:, None] == 5, np.nan, a),
        ),
    )
    add(
        "robomimic",
        "denormalized quaternion",
        edit_h5(
            rm,
            out / "rm_quat.hdf5",
            "data/demo_0/obs/robot0_eef_quat",
            lambda q: q * np.where(np.arange(T)[:, None] == 8, 3.0, 1.0),
        ),
    )
    add(
        "robomimic",
        "wrong shape: obs rows",
        edit_h5(rm, out / "rm_rows.hdf5", "data/demo_0/obs/robot0_eef_pos", lambda a: a[:-2]),
    )

    def far_obj(m):
        m[11, 0, 3] = 2500.0
        return m

    add(
        "robomimic",
        "object 2.5 km away",
        edit_h5(rm, out / "rm_far.hdf5", "data/demo_1/datagen_info/object_poses/cube", far_obj),
    )
    off, size = dataset_offset(ours, "data/demo_0/actions")
    add(
        "robomimic",
        "ours: data byte flipped (checksum)",
        flip(ours, out / "ours_flip.hdf5", off + 3),
    )

    # LeRobot v3 (our writer; integrity checksums dropped where a tool rewrote info.json)
    data3 = Path("data/chunk-000/file-000.parquet")
    bad = copy(v3, out / "v3_trunc")
    truncate(v3 / data3, bad / data3, 0.5)
    add("lerobot_v3", "truncated data parquet", bad)
    bad = copy(v3, out / "v3_magic")
    flip(v3 / data3, bad / data3, 1)
    add("lerobot_v3", "header: parquet magic", bad)
    bad = copy(v3, out / "v3_mid")
    flip(v3 / data3, bad / data3, (v3 / data3).stat().st_size // 2, 64)
    add("lerobot_v3", "data: 64 bytes mid-file", bad)
    bad = copy(v3, out / "v3_nan")
    add(
        "lerobot_v3",
        "NaN rows",
        _table_edit(
            bad,
            bad / data3,
            "observation.state",
            lambda s: np.where(np.arange(len(s))[:, None] == 4, np.nan, s),
        ),
    )
    bad = copy(v3, out / "v3_time")
    add(
        "lerobot_v3",
        "time runs backwards",
        _table_edit(
            bad, bad / data3, "timestamp", lambda ts: np.where(np.arange(len(ts)) == 6, -1.0, ts)
        ),
    )
    foreign = copy(v3, out / "v3_foreign_clean")  # re-saved by a tool: no checksums left
    info = json.loads((foreign / "meta/info.json").read_text())
    info.pop(INTEGRITY_KEY, None)
    (foreign / "meta/info.json").write_text(json.dumps(info))
    clean["lerobot_v3_no_checksum"] = foreign
    for rel, nm, how in (
        (data3, "no checksum: data 32 bytes mid-file", "flip"),
        (
            Path("meta/episodes/chunk-000/file-000.parquet"),
            "no checksum: episode table cut",
            "trunc",
        ),
        (Path("meta/tasks.parquet"), "no checksum: task table bytes", "flip"),
        (Path("meta/demoforge/episodes.jsonl"), "no checksum: metadata line bytes", "flip"),
    ):
        bad = copy(foreign, out / f"v3_{nm.split(': ')[1].replace(' ', '_')}")
        if how == "flip":
            flip(foreign / rel, bad / rel, (foreign / rel).stat().st_size // 2, 32)
        else:
            truncate(foreign / rel, bad / rel, 0.5)
        add("lerobot_v3", nm, bad)
    bad = copy(v3, out / "v3_info")
    truncate(v3 / "meta/info.json", bad / "meta/info.json", 0.5)
    add("lerobot_v3", "truncated info.json", bad)

    # LeRobot v2.1 (real G1 episodes)
    if v21 is not None:
        ep0 = Path("data/chunk-000/episode_000000.parquet")
        bad = copy(v21, out / "v21_trunc")
        truncate(v21 / ep0, bad / ep0, 0.7)
        add("lerobot_v21", "truncated episode parquet", bad)
        bad = copy(v21, out / "v21_mid")
        flip(v21 / ep0, bad / ep0, (v21 / ep0).stat().st_size // 2, 256)
        add("lerobot_v21", "data: 256 bytes mid-file", bad)
        bad = copy(v21, out / "v21_nan")
        add(
            "lerobot_v21",
            "NaN rows",
            _table_edit(
                bad,
                bad / ep0,
                "observation.state",
                lambda s: np.where(np.arange(len(s))[:, None] == 100, np.nan, s),
            ),
        )
        bad = copy(v21, out / "v21_time")
        add(
            "lerobot_v21",
            "time runs backwards",
            _table_edit(
                bad, bad / ep0, "timestamp", lambda ts: np.where(np.arange(len(ts)) == 50, 0.0, ts)
            ),
        )
        bad = copy(v21, out / "v21_jump")
        add(
            "lerobot_v21",
            "joint jump beyond physical speed",
            _table_edit(
                bad,
                bad / ep0,
                "observation.state",
                lambda s: s + np.where(np.arange(len(s))[:, None] == 200, 40.0, 0.0),
            ),
        )
        bad = copy(v21, out / "v21_jsonl")
        _edit_lines(
            v21 / "meta/episodes.jsonl",
            bad / "meta/episodes.jsonl",
            lambda ls: [ls[0][: len(ls[0]) // 2], *ls[1:]],
        )
        add("lerobot_v21", "header: episodes.jsonl line cut", bad)

    # RLDS TFRecord
    add("rlds", "truncated", truncate(rl, out / "rl_trunc.tfrecord", 0.6))
    add("rlds", "header: record length byte", flip(rl, out / "rl_len.tfrecord", 2))
    add("rlds", "data: payload byte", flip(rl, out / "rl_data.tfrecord", rl.stat().st_size // 3))

    def nan_state(e, f):
        f["steps/observation/state"] = f["steps/observation/state"].copy()
        f["steps/observation/state"][3, 1] = np.nan
        return f

    def far_state(e, f):
        f["steps/observation/state"] = f["steps/observation/state"].copy()
        f["steps/observation/state"][5, 0] = 900.0
        return f

    def grip_state(e, f):
        f["steps/observation/state"] = f["steps/observation/state"].copy()
        f["steps/observation/state"][2, 6] = 5.0
        return f

    def short_state(e, f):
        f["steps/observation/state"] = f["steps/observation/state"][:, :6]
        return f

    for nm, fn in (
        ("NaN rows", nan_state),
        ("EE 900 m away", far_state),
        ("gripper 5.0", grip_state),
        ("wrong shape: 6-d state", short_state),
    ):
        add(
            "rlds",
            nm,
            rlds_records(out, f"rl_{nm.split(':')[0].replace(' ', '_')}.tfrecord", edit=fn),
        )

    # teleop logs
    add("teleop", "truncated mid-row", truncate(csv, out / "tl_trunc.csv", 0.5))
    add(
        "teleop",
        "header: column name byte",
        _edit_lines(
            csv,
            out / "tl_header.csv",
            lambda ls: [
                x.replace("main.quat.w", "main.quat.\x17") if x.startswith("t,") else x for x in ls
            ],
        ),
    )
    add(
        "teleop",
        "data: digit -> letter",
        _edit_lines(csv, out / "tl_data.csv", lambda ls: _csv_cell(ls, 9, "main.pos.y", "0.0x1")),
    )
    add(
        "teleop",
        "NaN rows",
        _edit_lines(csv, out / "tl_nan.csv", lambda ls: _csv_cell(ls, 4, "main.pos.x", "nan")),
    )
    add(
        "teleop",
        "time runs backwards",
        _edit_lines(csv, out / "tl_time.csv", lambda ls: _csv_cell(ls, 6, "t", "0.2")),
    )
    add(
        "teleop",
        "denormalized quaternion",
        _edit_lines(csv, out / "tl_quat.csv", lambda ls: _csv_cell(ls, 3, "main.quat.w", "3.6")),
    )
    add(
        "teleop",
        "wrong shape: missing cell",
        _edit_lines(
            csv, out / "tl_cells.csv", lambda ls: ls[:-3] + [ls[-3].rsplit(",", 1)[0]] + ls[-2:]
        ),
    )
    add(
        "teleop",
        "jump beyond physical speed",
        _edit_lines(csv, out / "tl_jump.csv", lambda ls: _csv_cell(ls, 20, "main.pos.z", "5.0")),
    )
    add("teleop", "jsonl truncated", truncate(jsonl, out / "tl_trunc.jsonl", 0.5))
    return cases, clean


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("corruption"))


def test_clean_files_read(corpus):
    """The undamaged originals read (so every error below is caused by the damage)."""
    _, clean = corpus
    for name, path in clean.items():
        eps = read_episodes(path)
        assert len(eps) >= 1, name


def test_no_damaged_file_loads_silently(corpus):
    cases, _ = corpus
    outcome: Counter = Counter()
    per_format: dict[str, Counter] = {}
    silent = []
    for case in cases:
        c = per_format.setdefault(case.fmt, Counter())
        c["files"] += 1
        try:
            eps = read_episodes(case.path, **case.kw)
        except SimError as e:
            msg = str(e)
            assert case.path.name in msg, f"{case.fmt} {case.name}: error does not name the file"
            c["error"] += 1
            outcome["error"] += 1
            if "reader failed (" in msg:
                c["raw exception converted"] += 1
            # with skip: either the file is unreadable (one error) or the episode is counted
            report = ReadReport()
            try:
                read_episodes(case.path, on_bad_episode="skip", report=report, **case.kw)
            except SimError:
                c["skip mode: error"] += 1
            else:
                assert report.n_skipped >= 1, f"{case.fmt} {case.name}: skip mode silent"
                c["skip mode: counted skip"] += 1
        else:
            silent.append(f"{case.fmt}: {case.name} loaded {len(eps)} episode(s)")
    print("\ncorruption corpus, per format:")
    for fmt, c in per_format.items():
        print(f"  {fmt:12s} " + ", ".join(f"{k}={v}" for k, v in c.items()))
    print(f"  total: {len(cases)} files, {outcome['error']} clear errors, {len(silent)} silent")
    assert not silent, silent
    assert len(cases) >= 30 and outcome["error"] == len(cases)
    assert all(c["files"] >= 5 for c in per_format.values()), per_format
    assert {c.fmt for c in cases} >= {"robosuite", "robomimic", "lerobot_v3", "rlds", "teleop"}
