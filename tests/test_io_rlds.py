"""RLDS TFRecord: CRC-32C, protobuf wire format, Bridge mapping and the real WidowX sample."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sim.io.formats import detect_format, read_episodes
from sim.io.rlds import WIDOWX_DEFAULT_ROT, euler_xyz_to_mat, read_rlds
from sim.io.tfrecord import (
    _raw_update,
    crc32c,
    encode_example,
    frame_record,
    iter_tfrecord,
    masked_crc32c,
    parse_example,
    write_tfrecord,
)
from sim.transforms import quat_angle, quat_to_mat

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "bridge_rlds_sample"


def rot(axis: int, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    if axis == 1:
        m[i, j], m[j, i] = s, -s
    return m


def test_crc32c_known_values_and_vectorized_path():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 zero bytes
    assert crc32c(b"123456789") != zlib.crc32(b"123456789")  # not plain CRC-32
    rng = np.random.default_rng(0)
    for n in (1023, 1024, 1025, 4097, 70001):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == _raw_update(0xFFFFFFFF, data) ^ 0xFFFFFFFF, n
    c = crc32c(b"abc")
    assert masked_crc32c(b"abc") == ((((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def test_tfrecord_framing_round_trip(tmp_path):
    payloads = [b"", b"x" * 5000, b"hello"]
    path = tmp_path / "r.tfrecord"
    write_tfrecord(path, payloads)
    assert list(iter_tfrecord(path)) == payloads
    frame = frame_record(b"hello")
    assert struct.unpack("<Q", frame[:8])[0] == 5 and len(frame) == 8 + 4 + 5 + 4


@pytest.mark.parametrize("packed", [True, False])
def test_example_codec_packed_and_unpacked(packed):
    feats = {
        "steps/action": np.array([0.5, -1.25, 3.0], dtype=np.float32),
        "ids": np.array([0, 1, -7, 2**40], dtype=np.int64),
        "flags": np.array([True, False]),
        "text": [b"put carrot on plate", b""],
        "empty": np.zeros(0, np.float32),
    }
    ex = parse_example(encode_example(feats, packed=packed))
    np.testing.assert_array_equal(ex["steps/action"], feats["steps/action"])
    assert ex["steps/action"].dtype == np.float32
    np.testing.assert_array_equal(ex["ids"], feats["ids"])
    np.testing.assert_array_equal(ex["flags"], [1, 0])
    assert ex["text"] == [b"put carrot on plate", b""]
    assert len(ex["empty"]) == 0


def jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def synthetic_bridge(path: Path, n_episodes: int = 2, T: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    states, payloads = [], []
    for e in range(n_episodes):
        state = np.concatenate(
            [
                rng.uniform(0.1, 0.3, (T, 3)),
                rng.uniform(-0.5, 0.5, (T, 3)),
                rng.uniform(0, 1.01, (T, 1)),
            ],
            1,
        ).astype(np.float32)
        states.append(state)
        smooth = np.tile(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], (16, 1, 3))
        feats = {
            "steps/is_first": np.array([1] + [0] * (T - 1)),
            "steps/is_last": np.array([0] * (T - 1) + [1]),
            "steps/observation/state": state.ravel(),
            "steps/action": np.concatenate(
                [0.01 * rng.normal(size=(T, 6)), rng.uniform(0, 1, (T, 1))], 1
            )
            .astype(np.float32)
            .ravel(),
            "steps/observation/image_0": [jpeg(np.roll(smooth, k, axis=1)) for k in range(T)],
            "steps/observation/image_1": [jpeg(np.zeros((16, 16, 3), np.uint8))] * T,
            "steps/language_instruction": [f"task {e}".encode()] * T,
            "episode_metadata/episode_id": np.array([e]),
            "episode_metadata/file_path": [b"/data/raw/out.npy"],
        }
        payloads.append(encode_example(feats, packed=e % 2 == 0))
    write_tfrecord(path, payloads)
    return states


def test_bridge_mapping_on_synthetic_records(tmp_path):
    path = tmp_path / "bridge_dataset-train.tfrecord-00000-of-00001"
    states = synthetic_bridge(path)
    assert detect_format(path) == "rlds" and detect_format(tmp_path) == "rlds"
    episodes = read_rlds(path)
    assert len(episodes) == 2
    for i, (ep, state) in enumerate(zip(episodes, states, strict=True)):
        s = state.astype(np.float64)
        assert len(ep) == 4 and ep.meta.fps == 5.0 and ep.meta.robot == "widowx"
        assert ep.meta.source == f"{path}#{i}" and ep.meta.instruction == f"task {i}"
        np.testing.assert_array_equal(ep.ee["main"][:, :3], s[:, :3])
        for t in range(4):
            roll, pitch, yaw = s[t, 3:6]
            want = rot(2, yaw) @ rot(1, pitch) @ rot(0, roll) @ WIDOWX_DEFAULT_ROT
            np.testing.assert_allclose(quat_to_mat(ep.ee["main"][t, 3:]), want, atol=1e-12)
        np.testing.assert_allclose(ep.gripper["main"], np.clip(s[:, 6], 0, 1))
        assert ep.action.shape == (4, 7) and ep.action_names[-1] == "gripper"
        a = ep.action
        np.testing.assert_allclose(ep.target["main"][:, :3], s[:, :3] + a[:, :3], atol=1e-12)
        for t in range(4):
            want = euler_xyz_to_mat(a[t, 3:6]) @ euler_xyz_to_mat(s[t, 3:6]) @ WIDOWX_DEFAULT_ROT
            np.testing.assert_allclose(quat_to_mat(ep.target["main"][t, 3:]), want, atol=1e-12)
        np.testing.assert_allclose(ep.gripper_cmd["main"], a[:, 6])
        assert list(ep.images) == ["image_0"]
        assert "image_1" in ep.meta.provenance["skipped_cameras"]
        assert ep.image("image_0").shape == (4, 16, 16, 3)
        assert ep.meta.provenance["file_path"] == "/data/raw/out.npy"
    raw = read_rlds(tmp_path, apply_default_rot=False, episodes=[1])
    assert len(raw) == 1
    roll, pitch, yaw = states[1][0, 3:6].astype(np.float64)
    np.testing.assert_allclose(
        quat_to_mat(raw[0].ee["main"][0, 3:]),
        euler_xyz_to_mat(np.array([roll, pitch, yaw])),
        atol=1e-12,
    )


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"shared Bridge sample not found at {SAMPLE}")
def test_real_bridge_sample():
    episodes = read_episodes(SAMPLE)
    assert len(episodes) == 25
    instructions = {ep.meta.instruction for ep in episodes}
    assert instructions == {
        "put carrot on plate",
        "put cup from counter or drying rack into sink",
        "turn lever vertical to front",
        "flip pot upright which is in sink",
    }
    for ep in episodes:
        assert len(ep) == 10 and ep.meta.task == "bridge_dataset"
        assert list(ep.images) == ["image_0", "image_1", "image_2"]
        assert set(ep.meta.provenance["skipped_cameras"]) == {"image_3"}
        frames = ep.image("image_1")
        assert frames.shape == (10, 64, 64, 3) and frames.dtype == np.uint8 and frames.std() > 5
        # WidowX workspace: within half a metre of the base, gripper pointing roughly down
        assert np.all(np.linalg.norm(ep.ee["main"][:, :3], axis=1) < 0.5)
        approach = quat_to_mat(ep.ee["main"][:, 3:])[:, :, 0]  # gripper x axis in the world
        assert np.all(approach[:, 2] < -0.5)
        assert ep.action.shape == (10, 7) and np.all(np.abs(ep.action[:, :3]) < 0.05)
        assert np.all((ep.gripper["main"] >= 0) & (ep.gripper["main"] <= 1))
    # delta actions -> absolute targets in the documented (base) frame: the target of step t
    # is where the next state lands, to within a centimetre
    pos_err, rot_err, moved = [], [], []
    for ep in episodes:
        tgt, ee = ep.target["main"], ep.ee["main"]
        pos_err.append(np.linalg.norm(tgt[:-1, :3] - ee[1:, :3], axis=1))
        moved.append(np.linalg.norm(ee[1:, :3] - ee[:-1, :3], axis=1))
        rot_err.append(quat_angle(tgt[:-1, 3:], ee[1:, 3:]))
    pos_err, rot_err, moved = map(np.concatenate, (pos_err, rot_err, moved))
    print(
        f"\nBridge delta->absolute: target vs next state {pos_err.mean() * 1000:.2f} mm mean "
        f"(holding still would be {moved.mean() * 1000:.2f} mm), {rot_err.mean():.4f} rad"
    )
    assert pos_err.mean() < 0.01 and pos_err.mean() < 0.6 * moved.mean()
    assert rot_err.mean() < 0.03
