"""Bad-input corpus: every broken file gives an error naming the file, the key and the expectation;
writers never leave a partial file behind."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError, SchemaError, UnknownNameError
from sim.io import teleop_log
from sim.io.formats import detect_format, read_episodes
from sim.io.rlds import read_rlds
from sim.io.robomimic import read_robomimic, write_robomimic
from sim.io.robosuite import read_robosuite
from sim.io.teleop_log import read_teleop_log, write_teleop_log
from sim.io.tfrecord import encode_example, iter_tfrecord, write_tfrecord
from sim.transforms import quat_normalize

ENV_ARGS = {"env_name": "Lift", "env_version": "1.4.1", "type": 1, "env_kwargs": {}}
T = 10


def episode(seed: int = 0, images=None) -> Episode:
    rng = np.random.default_rng(seed)
    pose = np.concatenate([rng.normal(size=(T, 3)), quat_normalize(rng.normal(size=(T, 4)))], 1)
    return Episode(
        meta=EpisodeMeta(task="lift", robot="panda", fps=10.0),
        time=np.arange(T) / 10.0,
        joint_names=["j0", "j1"],
        qpos=rng.normal(size=(T, 2)),
        action_names=["j0", "j1", "gripper"],
        action=rng.normal(size=(T, 3)),
        ee={"main": pose},
        gripper={"main": rng.uniform(size=T)},
        images=images or {},
    )


@pytest.fixture
def good_hdf5(tmp_path) -> Path:
    return write_robomimic([episode(0), episode(1)], tmp_path / "good.hdf5", ENV_ARGS)


def edit(path: Path, fn) -> Path:
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def replace(f: h5py.File, key: str, value: np.ndarray) -> None:
    del f[key]
    f.create_dataset(key, data=value)


def only_file(tmp_path: Path) -> list[str]:
    return sorted(os.listdir(tmp_path))


# ------------------------------------------------------------------------------------- HDF5


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_truncated_hdf5(good_hdf5, fraction):
    data = good_hdf5.read_bytes()
    good_hdf5.write_bytes(data[: int(len(data) * fraction)])
    for call in (read_robomimic, detect_format):
        with pytest.raises(FormatError) as err:
            call(good_hdf5)
        msg = str(err.value)
        assert str(good_hdf5) in msg and "truncated" in msg and "expected" in msg


def test_corrupt_hdf5_data_is_caught_by_checksum(good_hdf5):
    with h5py.File(good_hdf5, "r") as f:
        offset = f["data/demo_0/actions"].id.get_chunk_info(0).byte_offset
    raw = bytearray(good_hdf5.read_bytes())
    raw[offset + 3] ^= 0xFF
    good_hdf5.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"good.hdf5: .*(checksum|Fletcher|filter|corrupt)"):
        read_robomimic(good_hdf5)


def test_missing_actions(good_hdf5):
    edit(good_hdf5, lambda f: f.__delitem__("data/demo_1/actions"))
    with pytest.raises(FormatError) as err:
        read_robomimic(good_hdf5)
    assert str(err.value) == (
        f"{good_hdf5}: missing dataset 'data/demo_1/actions'; expected it in every demo"
    )


def test_missing_env_args_and_data(good_hdf5, tmp_path):
    edit(good_hdf5, lambda f: f["data"].attrs.__delitem__("env_args"))
    with pytest.raises(
        FormatError,
        match=r"good.hdf5: missing attribute 'data/@env_args'; "
        r"expected JSON with env_name",
    ):
        read_robomimic(good_hdf5)
    empty = tmp_path / "empty.hdf5"
    h5py.File(empty, "w").close()
    with pytest.raises(FormatError, match=r"empty.hdf5: missing group 'data'; expected"):
        read_robomimic(empty)
    with pytest.raises(FormatError, match=r"empty.hdf5: HDF5 layout not recognized; expected"):
        detect_format(empty)


def test_mismatched_lengths(good_hdf5):
    edit(
        good_hdf5,
        lambda f: replace(
            f, "data/demo_0/obs/robot0_eef_pos", f["data/demo_0/obs/robot0_eef_pos"][:-1]
        ),
    )
    with pytest.raises(FormatError) as err:
        read_robomimic(good_hdf5)
    assert "'data/demo_0/obs/robot0_eef_pos' has 9 rows; expected 10" in str(err.value)
    assert str(good_hdf5) in str(err.value)


def test_num_samples_disagrees_with_actions(good_hdf5):
    edit(good_hdf5, lambda f: f["data/demo_1"].attrs.__setitem__("num_samples", 12))
    with pytest.raises(
        FormatError,
        match=r"'data/demo_1/@num_samples' is 12; expected 10 "
        r"\(= rows of 'data/demo_1/actions'\)",
    ):
        read_robomimic(good_hdf5)


def test_nan_row(good_hdf5):
    def poison(f):
        q = f["data/demo_1/obs/robot0_joint_pos"][()]
        q[6, 1] = np.nan
        replace(f, "data/demo_1/obs/robot0_joint_pos", q)

    edit(good_hdf5, poison)
    with pytest.raises(SchemaError) as err:
        read_robomimic(good_hdf5)
    assert str(err.value) == (
        f"{good_hdf5}: 'data/demo_1/obs/robot0_joint_pos' has NaN/inf at "
        "row 6; expected finite values"
    )


def test_non_unit_quaternion(good_hdf5):
    def scale(f):
        q = f["data/demo_0/obs/robot0_eef_quat"][()]
        q[4] *= 2.0
        replace(f, "data/demo_0/obs/robot0_eef_quat", q)

    edit(good_hdf5, scale)
    with pytest.raises(
        SchemaError,
        match=r"good.hdf5: 'data/demo_0/obs/robot0_eef_quat' "
        r"quaternion at row 4 has norm 2.0000; expected a unit "
        r"quaternion \(x,y,z,w\)",
    ):
        read_robomimic(good_hdf5)


def test_robosuite_file_without_model_or_with_short_actions(tmp_path):
    path = tmp_path / "demo.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("data").attrs["env"] = "Lift"
        f["data"].attrs["repository_version"] = "1.4.1"
        g = f["data"].create_group("demo_1")
        g.create_dataset("states", data=np.zeros((5, 3)))
        g.create_dataset("actions", data=np.zeros((4, 7)))
    assert detect_format(path) == "robosuite"
    with pytest.raises(
        FormatError,
        match=r"missing attribute 'data/demo_1/@model_file'; "
        r"expected the MJCF XML",
    ):
        read_robosuite(path)
    xml = '<mujoco><worldbody><body><joint/><geom size=".1"/></body></worldbody></mujoco>'
    edit(path, lambda f: f["data/demo_1"].attrs.__setitem__("model_file", xml))
    with pytest.raises(
        FormatError,
        match=r"'data/demo_1/actions' has 4 rows; expected 5 "
        r"\(= rows of 'data/demo_1/states'\)",
    ):
        read_robosuite(path)


# ------------------------------------------------------------------------------------- teleop

HEADER = "t,a.pos.x,a.pos.y,a.pos.z,a.quat.w,a.quat.x,a.quat.y,a.quat.z,a.gripper\n"


def teleop_csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "log.csv"
    path.write_text("# robot: panda\n" + header + "\n".join(rows) + "\n")
    return path


GOOD_ROW = "{t},0.1,0.2,0.3,1,0,0,0,0.5"


def test_teleop_nan_and_empty_cells(tmp_path):
    rows = [GOOD_ROW.format(t=i * 0.1) for i in range(5)]
    rows[3] = "0.3,0.1,,0.3,1,0,0,0,0.5"
    with pytest.raises(SchemaError) as err:
        read_teleop_log(teleop_csv(tmp_path, rows))
    assert str(err.value) == (
        f"{tmp_path / 'log.csv'}: column 'a.pos.y' is NaN/empty at row 3 "
        "(line 6); expected a finite number in every row"
    )
    rows[3] = "0.3,0.1,nan,0.3,1,0,0,0,0.5"
    with pytest.raises(SchemaError, match=r"'a.pos.y' is NaN/empty at row 3 \(line 6\)"):
        read_teleop_log(teleop_csv(tmp_path, rows))


def test_teleop_quaternion_convention(tmp_path):
    # a rig that streams roll/pitch/yaw in degrees (plus a 0) under quat columns
    rows = [GOOD_ROW.format(t=i * 0.1) for i in range(5)]
    rows[2] = "0.2,0.1,0.2,0.3,0,15,-30,90,0.5"
    with pytest.raises(
        SchemaError,
        match=r"log.csv: 'a.quat.\{w,x,y,z\}' at row 2 \(line 5\) "
        r"has norm 96.0469; expected a unit quaternion w,x,y,z",
    ):
        read_teleop_log(teleop_csv(tmp_path, rows))


def test_teleop_structure_errors(tmp_path):
    rows = [GOOD_ROW.format(t=t) for t in (0.0, 0.1, 0.1, 0.3)]
    with pytest.raises(
        FormatError,
        match=r"column 't' at row 2 \(line 5\) is 0.1 after 0.1; "
        r"expected strictly increasing",
    ):
        read_teleop_log(teleop_csv(tmp_path, rows))
    no_w = HEADER.replace("a.quat.w,", "").replace(",a.gripper", ",a.quat.q,a.gripper")
    with pytest.raises(FormatError, match=r"arm 'a' lacks column\(s\) \['a.quat.w'\]; expected"):
        read_teleop_log(teleop_csv(tmp_path, [GOOD_ROW.format(t=0)], header=no_w))
    rows = [GOOD_ROW.format(t=i * 0.1).replace(",0.5", ",55") for i in range(3)]
    with pytest.raises(
        SchemaError,
        match=r"'a.gripper' at row 0 \(line 3\) is 55.0; expected "
        r"an opening in \[0, 1\]",
    ):
        read_teleop_log(teleop_csv(tmp_path, rows))
    rows = [GOOD_ROW.format(t=0), "0.1,0.1,0.2,abc,1,0,0,0,0.5"]
    with pytest.raises(
        FormatError,
        match=r"'a.pos.z' at row 1 \(line 4\) is 'abc'; expected a "
        r"number",
    ):
        read_teleop_log(teleop_csv(tmp_path, rows))
    path = tmp_path / "log.jsonl"
    path.write_text('{"t": 0}\n{"t": 0.1\n')
    with pytest.raises(FormatError, match=r"log.jsonl: line 2 is not JSON"):
        read_teleop_log(path)


# ------------------------------------------------------------------------------------- TFRecord


@pytest.fixture
def tfrecord(tmp_path) -> Path:
    path = tmp_path / "x.tfrecord"
    ex = {
        "steps/is_first": np.array([1, 0, 0]),
        "steps/observation/state": np.arange(21, dtype=np.float32) / 21,
        "steps/action": np.zeros(21, np.float32),
    }
    write_tfrecord(path, [encode_example(ex), encode_example(ex)])
    return path


def test_tfrecord_data_crc(tfrecord):
    raw = bytearray(tfrecord.read_bytes())
    first = 8 + 4 + int.from_bytes(raw[:8], "little") + 4
    raw[first + 12 + 20] ^= 0x01  # one bit inside the second record's payload
    tfrecord.write_bytes(bytes(raw))
    with pytest.raises(
        FormatError,
        match=rf"x.tfrecord: record 1 at byte {first}: data CRC "
        r"mismatch .* expected crc32c of the \d+-byte payload",
    ):
        list(iter_tfrecord(tfrecord))
    with pytest.raises(FormatError, match=r"record 1 .* data CRC mismatch"):
        read_rlds(tfrecord)


def test_tfrecord_length_crc_and_truncation(tfrecord):
    raw = tfrecord.read_bytes()
    tfrecord.write_bytes(raw[:-10])
    with pytest.raises(FormatError, match=r"x.tfrecord: record 1 at byte \d+: truncated record"):
        read_rlds(tfrecord)
    tfrecord.write_bytes(raw[:5])
    with pytest.raises(FormatError, match=r"record 0 at byte 0: truncated header"):
        read_rlds(tfrecord)
    tfrecord.write_bytes(b"\x07" + raw[1:])
    with pytest.raises(FormatError, match=r"record 0 at byte 0: length CRC mismatch"):
        read_rlds(tfrecord)


def test_rlds_bad_payload_and_state(tmp_path):
    path = tmp_path / "y.tfrecord"
    write_tfrecord(path, [b"\x0a\x05abc"])  # field 1, length 5, only 3 bytes
    with pytest.raises(FormatError, match=r"y.tfrecord: record 0: malformed tf.train.Example"):
        read_rlds(path)
    ex = {"steps/is_first": np.array([1, 0]), "steps/observation/state": np.zeros(12, np.float32)}
    write_tfrecord(path, [encode_example(ex)])
    with pytest.raises(
        FormatError,
        match=r"record 0: 'steps/observation/state' has 6 values per "
        r"step; expected 7",
    ):
        read_rlds(path)
    state = np.zeros(14, np.float32)
    state[9] = np.nan
    write_tfrecord(path, [encode_example({**ex, "steps/observation/state": state})])
    with pytest.raises(SchemaError, match=r"'steps/observation/state' has NaN/inf at step 1"):
        read_rlds(path)


# ------------------------------------------------------------------------------------- formats


def test_unknown_format(tmp_path):
    path = tmp_path / "demo.txt"
    path.write_text("hello")
    with pytest.raises(
        FormatError,
        match=r"demo.txt: cannot detect the demo format; expected a "
        r"LeRobot directory",
    ):
        read_episodes(path)
    with pytest.raises(
        UnknownNameError,
        match=r"unknown format 'parquet'; expected one of: "
        r"auto, lerobot, mimicgen, rlds, robomimic",
    ):
        read_episodes(path, format="parquet")
    with pytest.raises(FormatError, match=r"nope.hdf5: no such file or directory"):
        detect_format(tmp_path / "nope.hdf5")


def test_dispatch_to_lerobot_reader(tmp_path):
    root = tmp_path / "ds"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text('{"codebase_version": "v9.9", "fps": 30}')
    assert detect_format(root) == "lerobot"
    pytest.importorskip("sim.io.lerobot")
    with pytest.raises(
        FormatError,
        match=r"info.json: key 'codebase_version' is 'v9.9'; "
        r"expected one of",
    ):
        read_episodes(root)
    g1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "g1_pick_bottle"
    if g1.is_dir():
        (ep,) = read_episodes(g1, episodes=[0])
        assert len(ep) > 100 and ep.meta.source


# ------------------------------------------------------------------------------------- atomic


def test_robomimic_writer_leaves_nothing_on_failure(tmp_path):
    def broken_camera():
        raise RuntimeError("camera died")

    eps = [episode(0), episode(1, images={"wrist": broken_camera})]
    with pytest.raises(RuntimeError, match="camera died"):
        write_robomimic(eps, tmp_path / "out.hdf5", ENV_ARGS)
    assert only_file(tmp_path) == []
    # an existing file survives a failed overwrite untouched
    good = write_robomimic([episode(0)], tmp_path / "out.hdf5", ENV_ARGS)
    before = good.read_bytes()
    with pytest.raises(RuntimeError, match="camera died"):
        write_robomimic(eps, good, ENV_ARGS, overwrite=True)
    assert good.read_bytes() == before and only_file(tmp_path) == ["out.hdf5"]


def test_teleop_writer_leaves_nothing_on_failure(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = teleop_log._fmt

    def failing(x):
        calls["n"] += 1
        if calls["n"] > 40:
            raise OSError("disk full")
        return real(x)

    monkeypatch.setattr(teleop_log, "_fmt", failing)
    with pytest.raises(OSError, match="disk full"):
        write_teleop_log(episode(), tmp_path / "log.csv")
    assert only_file(tmp_path) == []
    with pytest.raises(SchemaError, match="has no 'ee'"):
        write_teleop_log(
            Episode(meta=EpisodeMeta("t", "r", 10.0), time=np.arange(3) / 10),
            tmp_path / "log.jsonl",
            format="jsonl",
        )
    assert only_file(tmp_path) == []
