"""Replay: kinematic G1 playback, G1 -> humanoid EE retargeting, teleop round trip, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.episode import Episode, EpisodeMeta
from sim.retarget import ee_calibrated, fk_poses, map_joints

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
G1_DATA = SHARED / "data" / "g1_pick_bottle"
G1_MJCF = SHARED / "robots" / "unitree_g1" / "g1_29dof.xml"
G1_WRISTS = {"left": "left_wrist_yaw_link", "right": "right_wrist_yaw_link"}
needs_g1 = pytest.mark.skipif(
    not (G1_DATA.is_dir() and G1_MJCF.is_file()),
    reason=f"real G1 data/model not found under {SHARED} (../shared is not checked out)",
)


@pytest.fixture(scope="module")
def stack_scene():
    from sim.control.ik import ArmIK
    from sim.tasks import build_scene

    scene = build_scene(task="stack_blocks")
    return scene, ArmIK.for_scene(scene)


@pytest.fixture(scope="module")
def g1_episode() -> Episode:
    from sim.io.lerobot import read_lerobot

    return read_lerobot(G1_DATA, episodes=[1])[0]


@needs_g1
def test_g1_all_episodes_ingested():
    from sim.io.lerobot import read_lerobot

    eps = read_lerobot(G1_DATA)
    assert len(eps) == 100
    assert sum(len(e) for e in eps) == 35_965
    assert all(e.qpos is not None and e.qpos.shape[1] == 26 for e in eps)


@pytest.mark.slow
@needs_g1
def test_g1_kinematic_replay_video(g1_episode, tmp_path):
    import imageio.v3 as iio

    from sim.replay import replay_kinematic

    ep = g1_episode
    stride = 3  # documented: every 3rd frame rendered (CPU rendering of the G1 meshes is slow)
    video = tmp_path / "g1.mp4"
    r = replay_kinematic(ep, G1_MJCF, size=(240, 320), video=video, stride=stride)
    assert r.mapped_joints["kLeftShoulderPitch"] == "left_shoulder_pitch_joint"
    assert len(r.mapped_joints) == 14
    assert "kLeftHandPinky" in r.unmatched_joints and len(r.unmatched_joints) == 12
    frames = iio.imread(video, plugin="pyav")
    assert len(frames) == r.video_frames == -(-len(ep) // stride)
    assert frames.shape[1:] == (240, 320, 3)
    assert frames.std() > 5  # not a blank image
    # the arms move, so some frame differs from the first
    assert max(np.abs(f.astype(int) - frames[0].astype(int)).mean() for f in frames) > 0.2
    r.to_json(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["video_frames"] == len(frames)
    print(
        f"\nG1 kinematic replay: {len(ep)} frames at {ep.meta.fps:.0f} fps, video "
        f"{len(frames)} frames (stride {stride}) {frames.shape[2]}x{frames.shape[1]}, "
        f"{r.seconds:.1f} s"
    )


@needs_g1
def test_g1_retarget_ee_to_humanoid(g1_episode, stack_scene):
    import mujoco

    from sim.replay import chain_length, replay_ee

    ep = g1_episode
    g1 = mujoco.MjModel.from_xml_path(str(G1_MJCF))
    g1_joints = [g1.joint(j).name for j in range(g1.njnt)]
    m = map_joints(ep.joint_names, g1_joints)
    src = fk_poses(g1, [g1_joints[d] for d in m.values()], ep.qpos[:, list(m)], G1_WRISTS)
    scene, ik = stack_scene
    scene.reset(np.random.default_rng(0))
    g1_len = chain_length(g1, "left_wrist_yaw_link", "left_shoulder_pitch_link")
    our_len = chain_length(scene.model, "left_wrist", "left_shoulder")  # wrist to wrist
    scale = our_len / g1_len
    ee = {arm: ee_calibrated(src[arm], scene.ee_pose(arm), scale=scale) for arm in src}
    retargeted = Episode(
        meta=EpisodeMeta(
            task="stack_blocks",
            robot="demoforge_humanoid",
            fps=ep.meta.fps,
            source=f"{ep.meta.source} (G1 wrists, calibrated)",
        ),
        time=np.asarray(ep.time, float),
        ee=ee,
    ).validate()
    out, r = replay_ee(retargeted, scene, ik, mode="world")
    pos_mean = max(e["mean"] for e in r.ee_pos_err.values())
    pos_max = max(e["max"] for e in r.ee_pos_err.values())
    rot_mean = max(e["mean"] for e in r.ee_rot_err.values())
    rot_max = max(e["max"] for e in r.ee_rot_err.values())
    numbers = {
        "source": ep.meta.source,
        "frames": len(ep),
        "source_fps": ep.meta.fps,
        "replayed_steps": r.steps,
        "control_hz": 1.0 / scene.control_dt,
        "scale": scale,
        "g1_arm_length_m": g1_len,
        "humanoid_arm_length_m": our_len,
        "source_wrist_travel_m": {a: float(np.ptp(src[a][:, :3], 0).max()) for a in src},
        "ee_pos_err_m": r.ee_pos_err,
        "ee_rot_err_rad": r.ee_rot_err,
        "seconds": r.seconds,
    }
    Path("/tmp/g1_retarget_report.json").write_text(json.dumps(numbers, indent=2))
    print(
        f"\nG1 -> demoforge_humanoid EE retarget (episode 1, {len(ep)} frames @ "
        f"{ep.meta.fps:.0f} Hz -> {r.steps} steps @ {1 / scene.control_dt:.0f} Hz, "
        f"scale {scale:.3f}): EE position error mean {pos_mean * 100:.2f} cm max "
        f"{pos_max * 100:.2f} cm; orientation error mean {np.degrees(rot_mean):.2f} deg max "
        f"{np.degrees(rot_max):.2f} deg ({r.seconds:.1f} s)"
    )
    assert pos_mean < 0.02
    assert rot_mean < 0.1
    assert len(out) == r.steps


@pytest.mark.slow
def test_teleop_round_trip_succeeds(stack_scene, tmp_path):
    from sim.io.teleop_log import read_teleop_log, write_teleop_log
    from sim.replay import replay_ee
    from sim.rollout import run_scripted

    scene, ik = stack_scene
    demo = run_scripted(scene, ik, seed=5)
    assert demo.meta.success
    # a teleop rig logs EE poses and the operator's gripper command (not the measured opening)
    grip = {a: demo.action[:, demo.action_names.index(f"{a}_gripper")] for a in demo.ee}
    human = Episode(meta=demo.meta, time=demo.time, ee=demo.ee, gripper=grip)
    log = write_teleop_log(
        human, tmp_path / "teleop.csv", jitter=0.004, rng=np.random.default_rng(1)
    )
    ep = read_teleop_log(log, fps=demo.meta.fps)
    assert ep.qpos is None and set(ep.ee) == {"left", "right"}
    scene.reset(np.random.default_rng(5))  # same seed -> same object poses as the demo
    for name, pose in demo.objects.items():
        np.testing.assert_allclose(scene.body_pose(name), pose[0], atol=1e-9)
    out, r = replay_ee(ep, scene, ik, mode="world")
    print(
        f"\nteleop round trip: success={r.success}, EE error mean "
        f"{r.ee_pos_err_mean * 100:.2f} cm / {np.degrees(r.ee_rot_err_mean):.2f} deg"
    )
    assert r.success is True and out.meta.success


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run(
        [sys.executable, "-c", "from sim.cli import replay_main; replay_main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    from sim.generate import GenerateConfig, generate
    from sim.render import CameraConfig

    out = tmp_path_factory.mktemp("gen") / "ds"
    generate(
        GenerateConfig(episodes=1, cameras=CameraConfig(names=()), output=str(out)), progress=False
    )
    return out


@pytest.mark.slow
def test_cli_ee_replay(small_dataset, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "replay"
    p = _run_cli(f"source={small_dataset}", "mode=ee", f"output={out}", "height=96", "width=128")
    assert p.returncode == 0, p.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "ee" and report["ee_frame"] == "world"
    assert report["success"] is True
    frames = iio.imread(out / "replay.mp4", plugin="pyav")
    assert len(frames) == report["video_frames"] == report["steps"]
    assert frames.shape[1:] == (96, 128, 3)


def test_cli_unknown_mode_and_format(tmp_path):
    p = _run_cli(f"source={tmp_path}", "mode=dance", f"output={tmp_path / 'o'}")
    assert p.returncode == 2
    assert "demoforge: error: unknown replay mode 'dance'" in p.stderr
    assert p.stderr.count("error") == 1
    p = _run_cli(f"source={tmp_path}", "format=bogus", f"output={tmp_path / 'o'}")
    assert p.returncode == 2
    assert "demoforge: error: unknown format 'bogus'" in p.stderr


def test_joint_replay_reproduces_scripted_demo(stack_scene, tmp_path):
    from sim.replay import replay_joint
    from sim.rollout import run_scripted

    scene, ik = stack_scene
    demo = run_scripted(scene, ik, seed=5)
    scene.reset(np.random.default_rng(5))
    r = replay_joint(demo, scene)
    assert r.success is True
    assert set(r.mapped_joints.values()) == set(scene.action_names)
    assert max(e["rms"] for e in r.joint_err.values()) < 0.05
    data = json.loads(r.to_json(tmp_path / "r.json").read_text())
    assert data["mode"] == "joint" and data["success"] is True


def test_ee_replay_errors_name_the_thing(stack_scene):
    from sim.errors import ConfigError, SchemaError, UnknownNameError
    from sim.replay import replay_ee

    scene, ik = stack_scene
    scene.reset(np.random.default_rng(0))
    pose = np.tile(scene.ee_pose("left"), (3, 1))
    ep = Episode(
        meta=EpisodeMeta(task="t", robot="r", fps=20.0), time=np.arange(3) / 20.0, ee={"hand": pose}
    )
    with pytest.raises(ConfigError, match="no source arm"):
        replay_ee(ep, scene, ik)
    with pytest.raises(ConfigError, match="target arm 'middle'"):
        replay_ee(ep, scene, ik, arm_map={"hand": "middle"})
    with pytest.raises(UnknownNameError, match="EE replay mode 'sideways'"):
        replay_ee(ep, scene, ik, arm_map={"hand": "left"}, mode="sideways")
    with pytest.raises(ConfigError, match="needs object_map"):
        replay_ee(ep, scene, ik, arm_map={"hand": "left"}, mode="object")
    with pytest.raises(SchemaError, match="no 'ee'"):
        replay_ee(Episode(meta=ep.meta, time=ep.time), scene, ik)


def test_ee_replay_resamples_and_calibrates(stack_scene):
    """A 30 Hz source is resampled to the 20 Hz control rate; calibrated mode starts at the
    robot's current EE pose and scales the motion."""
    from sim.replay import ee_targets

    scene, _ = stack_scene
    scene.reset(np.random.default_rng(0))
    T = 31
    src = np.zeros((T, 7))
    src[:, 3] = 1.0
    src[:, 0] = np.linspace(0.0, 0.1, T)  # 10 cm along x in 1 s
    ep = Episode(
        meta=EpisodeMeta(task="t", robot="r", fps=30.0), time=np.arange(T) / 30.0, ee={"right": src}
    )
    targets, used = ee_targets(ep, scene, mode="calibrated", scale=0.5, settle=0.0)
    assert used == {"right": "right"} and len(targets) == 21
    start = scene.ee_pose("right")
    np.testing.assert_allclose(targets.pose["right"][0], start, atol=1e-9)
    np.testing.assert_allclose(targets.pose["right"][-1, :3] - start[:3], [0.05, 0, 0], atol=1e-9)
    np.testing.assert_allclose(targets.gripper["right"], 1.0)


# ------------------------------------------------------------------ two-arm source on the humanoid


@pytest.fixture(scope="module")
def two_arm_file(tmp_path_factory) -> Path:
    """A two-robot robosuite file (robot0, robot1; OSC_POSE + gripper per arm), recorded here."""
    from wild_helpers import ArmNames, env_info, record, scene_xml, write_demo

    a0, a1 = ArmNames.robosuite(0), ArmNames.robosuite(1)
    xml = scene_xml([(a0, "0 0 0.3", "1 0 0 0"), (a1, "0.9 0 0.3", "0 0 0 1")])
    rec = record(xml, [a0, a1], 60, seed=4)
    ctrl = {
        "type": "OSC_POSE",
        "output_max": [0.03] * 3 + [0.1] * 3,
        "output_min": [-0.03] * 3 + [-0.1] * 3,
    }
    attrs = {
        "env": "TwoArmHandover",
        "repository_version": "1.4.1",
        "env_info": env_info(["Panda", "Panda"], ctrl),
    }
    return write_demo(tmp_path_factory.mktemp("two_arm") / "handover.hdf5", [rec], xml, attrs)


def test_two_arm_source_drives_both_humanoid_arms_and_grippers(stack_scene, two_arm_file):
    from sim.io import read_episodes
    from sim.replay import replay_ee

    scene, ik = stack_scene
    (ep,) = read_episodes(two_arm_file)
    assert set(ep.ee) == {"robot0", "robot1"} and set(ep.gripper_cmd) == {"robot0", "robot1"}
    scene.reset(np.random.default_rng(0))
    start = {a: scene.ee_pose(a) for a in ("left", "right")}
    out, r = replay_ee(
        ep,
        scene,
        ik,
        arm_map={"robot0": "right", "robot1": "left"},
        mode="calibrated",
        scale=0.5,
        settle=0.3,
    )
    err = {a: r.ee_pos_err[a]["mean"] * 100 for a in ("right", "left")}
    print(
        f"\ntwo-arm source on the humanoid: EE error mean {err['right']:.2f} / {err['left']:.2f} cm"
    )
    for src, arm in (("robot0", "right"), ("robot1", "left")):
        moved = np.linalg.norm(out.ee[arm][:, :3] - start[arm][:3], axis=1).max()
        assert moved > 0.03, f"{arm} arm did not follow {src}"
        assert r.ee_pos_err[arm]["mean"] < 0.03
        cmd = out.action[:, out.action_names.index(f"{arm}_gripper")]
        assert cmd.min() < 0.1 and cmd.max() > 0.9, f"{arm} gripper not commanded closed/open"
        g = out.gripper[arm]
        assert np.ptp(g) > 0.3, f"{arm} gripper did not move"
    # each arm follows its own source's gripper schedule (they close at different steps)
    c_r = out.action[:, out.action_names.index("right_gripper")]
    c_l = out.action[:, out.action_names.index("left_gripper")]
    assert not np.array_equal(c_r, c_l)


def test_cli_map_overrides_as_typed(two_arm_file, tmp_path):
    out = tmp_path / "o"
    p = _run_cli(
        f"source={two_arm_file}",
        "arm_map.robot0=right",
        "arm_map.robot1=left",
        "object_map.cube=block_a",
        "~task",
        "scale=0.5",
        "height=48",
        "width=64",
        f"output={out}",
    )
    assert p.returncode == 0, p.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report["ee_pos_err"]) == {"right", "left"}
    assert report["ee_frame"] == "calibrated"
    p = _run_cli(f"source={two_arm_file}", "arm_map.robot0=middle", "~task", f"output={out}")
    assert p.returncode == 2 and "target arm 'middle'" in p.stderr
    p = _run_cli(f"source={two_arm_file}", "arm_mapp.robot0=right", f"output={out}")
    assert p.returncode != 0 and "arm_mapp" in p.stderr


def test_reset_like_source_uses_the_recorded_reset_stream(stack_scene):
    from sim.replay.run import reset_like_source

    scene, _ = stack_scene
    meta = EpisodeMeta(
        task="stack_blocks",
        robot="demoforge_humanoid",
        fps=20.0,
        seed=99,
        provenance={"streams": {"reset": "123456789"}, "level": "D0"},
    )
    ep = Episode(meta=meta, time=np.arange(2) / 20.0)
    note = reset_like_source(scene, ep)
    assert "reset stream 123456789" in note
    got = {o: scene.body_pose(o) for o in ("block_a", "block_b")}
    scene.reset(np.random.default_rng(123456789), "D0")
    for o, pose in got.items():
        np.testing.assert_array_equal(scene.body_pose(o), pose)
    assert reset_like_source(scene, ep, seed=5) == "scene reset with seed 5"
    ep.meta.provenance = {}
    assert reset_like_source(scene, ep) == "scene reset with seed 99"


def test_object_mode_anchors_each_segment_to_its_own_object(stack_scene):
    """Object mode uses the demos source's rule: the grasp follows block_a, the place follows
    block_b, each to its new pose (moved independently), and the block is stacked in physics."""
    from sim.replay import replay_ee
    from sim.replay.ee import ee_targets
    from sim.rollout import run_scripted

    scene, ik = stack_scene
    demo = run_scripted(scene, ik, seed=5)
    assert demo.meta.success
    scene.reset(np.random.default_rng(5))
    a0, b0 = scene.body_pose("block_a"), scene.body_pose("block_b")
    moved = {
        "block_a": a0 + [0.04, -0.03, 0, 0, 0, 0, 0],
        "block_b": b0 + [-0.03, 0.05, 0, 0, 0, 0, 0],
    }
    for name, pose in moved.items():
        scene.set_free_pose(name, pose)
    import mujoco

    mujoco.mj_forward(scene.model, scene.data)
    objs = {"block_a": "block_a", "block_b": "block_b"}
    arm = next(a for a in demo.ee if np.ptp(demo.ee[a][:, 0]) > 0.05)
    targets, _ = ee_targets(demo, scene, {arm: arm}, "object", object_map=objs, settle=0.0)
    g = int(np.argmax(demo.subtasks["grasped"]))  # grasp frame: EE moved with block_a
    np.testing.assert_allclose(
        targets.pose[arm][g, :2] - demo.ee[arm][g, :2], [0.04, -0.03], atol=0.01
    )
    p = int(np.argmax(demo.subtasks["placed"]))  # placing: moved with block_b
    np.testing.assert_allclose(
        targets.pose[arm][p, :2] - demo.ee[arm][p, :2], [-0.03, 0.05], atol=0.01
    )
    out, r = replay_ee(demo, scene, ik, arm_map={arm: arm}, mode="object", object_map=objs)
    assert r.success is True and out.meta.success
