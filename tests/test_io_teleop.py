"""Teleop logs (CSV, JSONL): resampling irregular samples, header metadata, writer round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError
from sim.io.formats import detect_format, read_episodes
from sim.io.teleop_log import (
    SCHEMA,
    interp_slerp,
    read_teleop_log,
    write_teleop_log,
)
from sim.transforms import quat_mul, yaw_quat


def yaw_wxyz(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle / 2), 0 * angle, 0 * angle, np.sin(angle / 2)], axis=1)


def smooth_episode(T: int = 60, fps: float = 30.0) -> Episode:
    """Two arms moving smoothly (what the scripted demonstrator produces), joints, gripper."""
    t = np.arange(T) / fps
    ee = {}
    for k, arm in enumerate(("left", "right")):
        pos = np.stack([0.4 + 0.1 * np.sin(t + k), 0.2 * t, 0.3 + 0.05 * np.cos(2 * t)], 1)
        tilt = np.array([np.cos(0.2), np.sin(0.2), 0.0, 0.0])
        quat = quat_mul(yaw_wxyz(0.8 * t + k), tilt)
        ee[arm] = np.concatenate([pos, quat], 1)
    return Episode(
        meta=EpisodeMeta(task="pour", robot="bimanual_panda", fps=fps, instruction="pour water"),
        time=t,
        joint_names=["left_j1", "left_j2", "right_j1"],
        qpos=np.stack([np.sin(t), np.cos(t), 0.5 * t], 1),
        ee=ee,
        gripper={"left": 0.5 + 0.5 * np.cos(t), "right": np.clip(t / 2, 0, 1)},
    )


def assert_poses_close(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=atol)
    sign = np.sign(np.sum(a[:, 3:] * b[:, 3:], axis=1, keepdims=True))
    np.testing.assert_allclose(a[:, 3:], sign * b[:, 3:], atol=atol)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_writer_reader_round_trip_without_jitter(tmp_path, fmt):
    ep = smooth_episode()
    path = write_teleop_log(ep, tmp_path / f"log.{fmt}", format=fmt, t0=1700000000.25)
    assert detect_format(path) == "teleop"
    (back,) = read_episodes(path)
    assert len(back) == len(ep) and back.meta.fps == 30.0
    assert back.meta.task == "pour" and back.meta.robot == "bimanual_panda"
    assert back.meta.instruction == "pour water"
    np.testing.assert_allclose(back.time, ep.time, atol=1e-9)
    for arm in ep.ee:
        # t0 = 1.7e9 s costs float64 resolution (~2e-7 s); motion is ~1 m/s at most
        assert_poses_close(back.ee[arm], ep.ee[arm], atol=1e-6)
        np.testing.assert_allclose(back.gripper[arm], ep.gripper[arm], atol=1e-6)
    assert back.joint_names == ep.joint_names
    np.testing.assert_allclose(back.qpos, ep.qpos, atol=1e-6)


def test_jittered_log_resamples_back_to_the_motion(tmp_path):
    ep = smooth_episode()
    path = write_teleop_log(ep, tmp_path / "log.csv", jitter=0.012, rng=np.random.default_rng(0))
    raw = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")][1:]
    t_raw = np.array([float(r.split(",")[0]) for r in raw])
    assert np.std(np.diff(t_raw)) > 1e-3  # really irregular
    back = read_teleop_log(path)
    assert len(back) == len(ep)
    for arm in ep.ee:
        # resampling a jittered sampling of a smooth path: second-order interpolation error
        assert_poses_close(back.ee[arm], ep.ee[arm], atol=2e-3)
    np.testing.assert_allclose(back.qpos, ep.qpos, atol=2e-3)


def test_irregular_samples_are_interpolated_linearly_and_by_slerp(tmp_path):
    # constant velocity and constant yaw rate: linear / slerp interpolation is exact
    t = np.array([0.0, 0.013, 0.05, 0.061, 0.12, 0.2, 0.21, 0.3])
    yaw = 2.0 * t
    rows = [
        "t,arm.pos.x,arm.pos.y,arm.pos.z,arm.quat.w,arm.quat.x,arm.quat.y,arm.quat.z,"
        "arm.gripper,arm.joint.elbow"
    ]
    for ti, yi in zip(t + 5.0, yaw, strict=True):
        q = yaw_quat(yi)
        rows.append(
            ",".join(
                repr(float(v))
                for v in (
                    ti,
                    0.1 + ti - 5.0,
                    2 * (ti - 5.0),
                    0.5,
                    *q,
                    1 - (ti - 5.0) / 0.3,
                    10 * (ti - 5.0),
                )
            )
        )
    header = "# frame: world\n# units: m\n# joint_units: deg\n# robot: widowx\n# task: wipe\n"
    path = tmp_path / "irregular.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    ep = read_teleop_log(path, fps=50)
    grid = np.arange(16) / 50
    np.testing.assert_allclose(ep.time, grid)
    np.testing.assert_allclose(ep.ee["arm"][:, 0], 0.1 + grid, atol=1e-12)
    np.testing.assert_allclose(ep.ee["arm"][:, 1], 2 * grid, atol=1e-12)
    np.testing.assert_allclose(ep.ee["arm"][:, 3:], yaw_wxyz(2.0 * grid), atol=1e-9)
    np.testing.assert_allclose(ep.gripper["arm"], 1 - grid / 0.3, atol=1e-12)
    np.testing.assert_allclose(ep.qpos[:, 0], np.deg2rad(10 * grid), atol=1e-12)
    assert ep.joint_names == ["elbow"] and ep.meta.robot == "widowx" and ep.meta.task == "wipe"
    assert ep.meta.provenance["raw_samples"] == 8


def test_header_units_and_rig_frame(tmp_path):
    path = tmp_path / "rig.jsonl"
    lines = [json.dumps({"meta": {"frame": "rig", "units": "mm", "fps": 10}})]
    for i in range(5):
        lines.append(
            json.dumps(
                {
                    "t": i * 0.1,
                    "h.pos.x": 100.0 * i,
                    "h.pos.y": 0,
                    "h.pos.z": 0,
                    "h.quat.w": 1,
                    "h.quat.x": 0,
                    "h.quat.y": 0,
                    "h.quat.z": 0,
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    rig_to_world = np.array([1.0, 2.0, 0.0, *yaw_quat(np.pi / 2)])
    ep = read_teleop_log(path, rig_to_world=rig_to_world)
    assert ep.meta.fps == 10 and "h" not in ep.gripper
    # x in the rig (0.1 m per step) is +y in the world after a 90 deg yaw
    np.testing.assert_allclose(
        ep.ee["h"][:, :3],
        np.stack([np.ones(5), 2 + 0.1 * np.arange(5), np.zeros(5)], 1),
        atol=1e-12,
    )
    np.testing.assert_allclose(np.abs(ep.ee["h"][:, 3:]), np.abs(np.tile(rig_to_world[3:], (5, 1))))
    kept = read_teleop_log(path)
    np.testing.assert_allclose(kept.ee["h"][:, 0], 0.1 * np.arange(5), atol=1e-12)
    assert kept.meta.provenance["frame"] == "rig"


def test_slerp_shortest_arc_and_endpoints():
    qa, qb = yaw_quat(0.0), -yaw_quat(0.5)  # same rotation as +yaw_quat(0.5), other hemisphere
    out = interp_slerp(np.array([0.0, 1.0]), np.stack([qa, qb]), np.array([0.0, 0.5, 1.0, 2.0]))
    np.testing.assert_allclose(out[1], yaw_quat(0.25), atol=1e-12)
    np.testing.assert_allclose(out[0], qa, atol=1e-12)
    np.testing.assert_allclose(np.abs(out[3]), np.abs(qb), atol=1e-12)  # held past the end


def test_writer_options_are_checked(tmp_path):
    ep = smooth_episode()
    with pytest.raises(ConfigError, match="jitter=0.5 s out of range"):
        write_teleop_log(ep, tmp_path / "a.csv", jitter=0.5, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="needs rng"):
        write_teleop_log(ep, tmp_path / "a.csv", jitter=0.001)
    with pytest.raises(ConfigError, match="format 'xml' unknown"):
        write_teleop_log(ep, tmp_path / "a.csv", format="xml")
    assert not (tmp_path / "a.csv").exists()
    assert set(SCHEMA) >= {
        "t",
        "<arm>.pos.x",
        "<arm>.quat.w",
        "<arm>.gripper",
        "<arm>.joint.<name>",
    }
