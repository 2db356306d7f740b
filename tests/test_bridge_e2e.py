"""End to end over loopback: the twin served from another process, driven through the client."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bridge_helpers import tiny_hw

from sim.bridge.client import BridgeClient
from sim.bridge.commands import compare, record, replay
from sim.bridge.config import (
    CompareConfig,
    HardwareConfig,
    RecordConfig,
    ReplayConfig,
    ServeConfig,
)
from sim.bridge.process import ServerProcess
from sim.bridge.protocol import Driver

FPS = 50.0


def hw(**kw) -> HardwareConfig:
    workspace = {"workspace_lo": [-0.7, -0.7, 0.05], "workspace_hi": [0.7, 0.7, 0.9]}
    return tiny_hw(FPS, safety=workspace, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(ServeConfig(hardware=hw()), dir=tmp_path_factory.mktemp("srv")) as p:
        yield p


def test_client_is_a_driver_with_the_twins_features(server):
    c = BridgeClient(server.endpoint)
    c.connect()
    try:
        assert isinstance(c, Driver)
        assert c.capabilities.action_names == [
            "shoulder_yaw",
            "shoulder_pitch",
            "elbow",
            "right_gripper",
        ]
        assert c.observation_features["ee.right"] == (7,)
        assert c.action_features == {"action": (4,)}
        obs = c.get_observation()
        assert obs["qpos"].shape == (3,) and obs["gripper.right"].shape == ()
        status = c.heartbeat()
        assert status["estop"] is None and status["server"]["malformed"] == 0
    finally:
        c.disconnect()


@pytest.mark.timing
def test_record_two_episodes_into_lerobot_and_read_back(server, tmp_path: Path):
    lerobot = pytest.importorskip("sim.io.lerobot")
    out = tmp_path / "ds"
    h = hw(endpoint=server.endpoint)
    res = record(
        RecordConfig(
            hardware=h,
            out=str(out),
            n_episodes=2,
            steps=30,
            task="wave",
            policy="sine",
            reset_seed=7,
        )
    )
    assert res.fault is None and len(res.episodes) == 2
    assert all(j["rate_hz"] == pytest.approx(FPS, rel=0.1) for j in res.jitter)
    eps = lerobot.read_lerobot(out)
    assert len(eps) == 2
    audit = (out / "meta" / "bridge_audit.jsonl").read_text().splitlines()
    assert any('"event": "claim"' in line for line in audit)  # who commanded, beside the data
    for ep, orig in zip(eps, res.episodes, strict=True):
        assert len(ep) == 30 and ep.meta.robot == "tiny_arm" and ep.meta.fps == FPS
        assert ep.meta.source == "hardware" and ep.meta.task == "wave"
        assert ep.action_names == orig.action_names and ep.joint_names == orig.joint_names
        np.testing.assert_allclose(ep.qpos, orig.qpos, atol=1e-5)  # float32 storage
        np.testing.assert_allclose(ep.action, orig.action, atol=1e-5)
        assert set(ep.ee) == {"right"} and set(ep.objects) == {"cube"}
    # the sine moved the arm, and what was sent respects the step limit
    assert np.ptp(eps[0].qpos[:, 0]) > 0.1
    assert np.all(np.abs(np.diff(eps[0].action[:, :3], axis=0)) <= 0.08 + 1e-5)


def test_replay_recorded_episode_on_the_twin(server, tmp_path: Path):
    out = tmp_path / "rec"
    h = hw(endpoint=server.endpoint)
    src = record(
        RecordConfig(
            hardware=h, out=str(out), n_episodes=1, steps=40, fmt="npz", policy="sine", reset_seed=3
        )
    ).episodes[0]
    res = replay(
        ReplayConfig(
            hardware=h,
            episodes=str(out),
            dry_run=True,
            home_s=0.0,
            report=str(tmp_path / "replay.json"),
        )
    )
    assert len(res.episode) == 40 and res.dry_run is not None
    assert res.clamped_steps == 0 and res.dry_run.clamped_steps == 0
    # same actions from the same initial state: the twin retraces the recorded motion
    assert max(res.tracking_rms.values()) < 0.02, res.tracking_rms
    np.testing.assert_allclose(res.episode.action, src.action)
    assert json.loads((tmp_path / "replay.json").read_text())["steps"] == 40


@pytest.mark.timing
def test_compare_reports_divergence_of_a_twin_with_latency_and_noise(tmp_path: Path):
    slow = {"cmd_latency_s": 0.06, "obs_latency_s": 0.02, "noise_qpos": 0.004, "seed": 2}
    with ServerProcess(ServeConfig(hardware=hw(twin=slow)), dir=tmp_path) as robot:
        rep = compare(
            CompareConfig(
                hardware=hw(endpoint=robot.endpoint), out=str(tmp_path), steps=120, amplitude=0.25
            )
        )
    # 60 ms command + 20 ms observation latency ~ 4 ticks at 50 Hz (+-1 for scheduling)
    assert 0.04 <= rep.lag_s <= 0.16, rep.to_dict()  # generous: loaded machines add lag
    assert all(d.rms > 0.004 for d in rep.joints.values())
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["joints"]) == {"shoulder_yaw", "shoulder_pitch", "elbow"}
    assert report["drivers"] == ["twin", "tiny"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "plot.png").stat().st_size > 1000
