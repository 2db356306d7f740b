"""Generation sharded over a local 2-worker Ray cluster equals a single-process run, also when
a Ray worker is killed mid-run (its shard is retried)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.generate import GenerateConfig, generate
from sim.io.lerobot import read_lerobot
from sim.render import CameraConfig

ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'demoforge[ray]')")


def _arrays(path: str | Path) -> list[bytes]:
    return [
        np.asarray(a, np.float32).tobytes()
        for e in read_lerobot(path)
        for a in (e.qpos, e.action, e.ee["right"])
    ]


@pytest.mark.slow
def test_ray_two_workers_equal_single_process_with_a_killed_worker(tmp_path, monkeypatch):
    cams = CameraConfig(("head",), 32, 32)
    ref = generate(
        GenerateConfig(episodes=5, output=str(tmp_path / "local"), cameras=cams), progress=False
    )
    marker = tmp_path / "killed_once"
    monkeypatch.setenv("DEMOFORGE_RAY_KILL_ONCE", str(marker))
    try:
        res = generate(
            GenerateConfig(
                episodes=5, output=str(tmp_path / "ray"), cameras=cams, executor="ray", workers=2
            ),
            progress=False,
        )
    finally:
        ray.shutdown()
    assert marker.exists(), "the kill hook never fired: no worker was lost"
    assert res.episodes == ref.episodes == 5 and res.attempts == ref.attempts
    assert _arrays(res.path) == _arrays(ref.path)
    a, b = read_lerobot(ref.path), read_lerobot(res.path)
    assert [e.meta.seed for e in a] == [e.meta.seed for e in b]
    np.testing.assert_array_equal(a[0].image("head"), b[0].image("head"))
