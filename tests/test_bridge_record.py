"""The bridge's npz episode format behind the Writer protocol (sim.io.bridge_record)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim.bridge.backends import load_backend
from sim.bridge.record import close_writer, load_episodes, open_writer, record_episodes
from sim.bridge.twin import TwinConfig, TwinDriver
from sim.errors import FormatError, OutputExistsError
from sim.io.bridge_record import NpzWriter, load_episode_npz, read_npz_dir
from sim.io.writer import Writer


@pytest.fixture(scope="module")
def episodes():
    twin = TwinDriver(load_backend("tiny_arm"), TwinConfig(realtime=False, seed=3))
    twin.connect()
    res = record_episodes(twin, 3, 12, fps=50, task="wave", seed=5)
    twin.disconnect()
    assert res.fault is None
    return res.episodes


def test_npz_writer_is_a_writer_and_publishes_once(tmp_path: Path, episodes):
    root = tmp_path / "rec"
    w = open_writer(root, "npz")
    assert isinstance(w, NpzWriter) and isinstance(w, Writer)
    assert [w.add(e) for e in episodes[:2]] == [0, 1] and w.num_staged == 2
    assert not root.exists() and w.partial.is_dir()  # nothing visible before finalize
    path = close_writer(w, {"bridge_audit.jsonl": b'{"event": "claim"}\n'})
    assert path == root and w.published and not w.partial.exists()
    assert sorted(p.name for p in root.iterdir()) == [
        "bridge_audit.jsonl",
        "episode_000000.json",
        "episode_000000.npz",
        "episode_000001.json",
        "episode_000001.npz",
    ]
    back = load_episodes(root)
    assert len(back) == 2
    for a, b in zip(back, episodes[:2], strict=True):
        np.testing.assert_array_equal(a.action, b.action)
        np.testing.assert_array_equal(a.ee["right"], b.ee["right"])
        assert a.meta.seed == b.meta.seed and a.meta.task == "wave"
        assert a.meta.provenance["partial"] is False
    with pytest.raises(OutputExistsError, match="already exists"):
        NpzWriter(root)


def test_npz_writer_resumes_a_staged_run(tmp_path: Path, episodes):
    root = tmp_path / "rec"
    w = NpzWriter(root)
    w.add(episodes[0])
    del w  # the process "dies" before finalize
    with pytest.raises(OutputExistsError, match=r"unfinished write .* \(1 staged episodes\)"):
        NpzWriter(root)
    w = NpzWriter(root, resume=True)
    assert w.num_staged == 1 and w.add(episodes[1]) == 1
    w.finalize()
    assert len(read_npz_dir(root)) == 2
    again = NpzWriter(root, overwrite=True)
    again.add(episodes[2])
    again.finalize()
    assert [e.meta.seed for e in read_npz_dir(root)] == [episodes[2].meta.seed]


def test_damaged_npz_episodes_name_the_file(tmp_path: Path, episodes):
    root = tmp_path / "rec"
    w = NpzWriter(root)
    w.add(episodes[0])
    w.finalize()
    npz = root / "episode_000000.npz"
    side = npz.with_suffix(".json")
    good = side.read_text()
    side.write_text(json.dumps({"meta": {}}))
    with pytest.raises(FormatError, match=r"episode_000000.json: expected keys"):
        load_episode_npz(npz)
    side.write_text(good)
    npz.write_bytes(npz.read_bytes()[:100])
    with pytest.raises(FormatError, match=r"episode_000000.npz: (cannot read|malformed)"):
        load_episode_npz(npz)
    with pytest.raises(FormatError, match="neither a LeRobot dataset"):
        load_episodes(tmp_path / "empty")
