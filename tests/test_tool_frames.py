"""Tool-frame conventions: robot YAMLs declare them, poses map through the canonical grasp frame
(round trip, known axes), a Panda-style test arm records demos in its own convention, and object
frames are inferred from the EE at gripper closure for sources without object poses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sim.augment.infer import (
    as_tool_frame,
    convert_tool_frame,
    episode_tool_frames,
    from_canonical,
    grasp_events,
    infer_object_frame,
    infer_object_track,
    infer_release_frame,
    to_canonical,
)
from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError, SchemaError
from sim.model.robot import ToolFrame, load_robot
from sim.transforms import pose_inv, pose_mul, quat_normalize, quat_to_mat, yaw_quat

PANDA = ToolFrame(approach=(0, 0, 1), closing=(0, 1, 0))
ROOT = Path(__file__).resolve().parents[1]


def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.concatenate(
        [rng.uniform(-1, 1, (n, 3)), quat_normalize(rng.normal(size=(n, 4)))], axis=1
    )


def random_frame(rng: np.random.Generator) -> ToolFrame:
    a = rng.normal(size=3)
    c = np.cross(a, rng.normal(size=3))
    return ToolFrame(approach=tuple(a), closing=tuple(c))


def axes(pose: np.ndarray) -> np.ndarray:
    return quat_to_mat(pose[..., 3:])


def test_round_trip_and_conversion_compose():
    rng = np.random.default_rng(0)
    poses = random_poses(rng, 64)
    for _ in range(10):
        a, b = random_frame(rng), random_frame(rng)
        back = from_canonical(to_canonical(poses, a), a)
        np.testing.assert_allclose(axes(back), axes(poses), atol=1e-9)
        np.testing.assert_array_equal(back[:, :3], poses[:, :3])  # the grasp point is kept
        ab = convert_tool_frame(poses, a, b)
        np.testing.assert_allclose(axes(convert_tool_frame(ab, b, a)), axes(poses), atol=1e-9)


def test_known_axes_map_onto_the_canonical_frame():
    """Whatever the convention, the mapped pose approaches along canonical -z and closes along
    canonical y, in the same world directions as the source site's approach/closing axes."""
    rng = np.random.default_rng(1)
    poses = random_poses(rng, 32)
    for conv in [PANDA, ToolFrame(), *[random_frame(rng) for _ in range(5)]]:
        R_site = axes(poses)
        R_can = axes(to_canonical(poses, conv))
        np.testing.assert_allclose(-R_can[:, :, 2], R_site @ np.array(conv.approach), atol=1e-9)
        np.testing.assert_allclose(R_can[:, :, 1], R_site @ np.array(conv.closing), atol=1e-9)


def test_panda_top_down_grasp_is_yaw_quat_on_ours():
    """A Panda grip site pointing down (z along the fingers = world -z) is a top-down grasp:
    on demoforge's humanoid (canonical) it is yaw_quat(yaw), not flipped by ~180 deg."""
    yaw = 0.4
    # Panda site: z down, y (closing) along the yawed world y
    R = np.column_stack(
        [[np.cos(yaw), np.sin(yaw), 0], [-np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]
    ) @ np.diag([-1.0, 1.0, -1.0])
    from sim.transforms import mat_to_quat

    panda = np.r_[0.4, 0.0, 0.8, mat_to_quat(R)]
    humanoid = load_robot("demoforge_humanoid").arms["right"].tool_frame
    got = convert_tool_frame(panda, PANDA, humanoid)
    np.testing.assert_allclose(axes(got), quat_to_mat(yaw_quat(yaw)), atol=1e-9)
    # copying the Panda orientation as-is would point the humanoid's fingers up
    assert axes(panda)[2, 2] == pytest.approx(-1.0)


def test_robot_yamls_declare_their_conventions():
    h = load_robot("demoforge_humanoid")
    assert all(a.tool_frame.is_canonical for a in h.arms.values())
    p = load_robot("test_panda")
    assert p.arms["right"].tool_frame == PANDA
    assert p.arms["right"].gripper.stroke_time > 0.1


def test_bad_conventions_are_named():
    with pytest.raises(ConfigError, match="perpendicular"):
        ToolFrame(approach=(0, 0, 1), closing=(0, 0.5, 1))
    with pytest.raises(ConfigError, match="closing"):
        ToolFrame(closing=(0, 0, 0))
    with pytest.raises(ConfigError, match=r"source_tool_frame: unknown key\(s\) \['aproach'\]"):
        as_tool_frame({"aproach": [0, 0, 1]}, "source_tool_frame")
    with pytest.raises(SchemaError, match=r"\(\.\.\., 7\)"):
        to_canonical(np.zeros(6), PANDA)


def _episode(ee: dict[str, np.ndarray], **kw) -> Episode:
    T = len(next(iter(ee.values())))
    return Episode(
        meta=EpisodeMeta(task="t", robot="r", fps=20.0, source="test"),
        time=np.arange(T) / 20.0,
        ee=ee,
        **kw,
    )


def test_episode_conversion_per_arm_and_provenance():
    rng = np.random.default_rng(2)
    ep = _episode(
        {"right": random_poses(rng, 5), "left": random_poses(rng, 5)},
        target={"right": random_poses(rng, 5)},
    )
    out = episode_tool_frames(ep, {"right": PANDA, "left": None})
    np.testing.assert_allclose(out.ee["right"], to_canonical(ep.ee["right"], PANDA))
    np.testing.assert_allclose(axes(out.ee["left"]), axes(ep.ee["left"]), atol=1e-9)
    np.testing.assert_allclose(out.target["right"], to_canonical(ep.target["right"], PANDA))
    assert out.meta.provenance["tool_frame"]["right"]["source"]["approach"] == [0.0, 0.0, 1.0]
    assert ep.meta.provenance == {}  # the input is not modified
    with pytest.raises(ConfigError, match="has arm 'left'"):
        episode_tool_frames(ep, {"right": PANDA})


# ------------------------------------------------------------------ object frames at the grasp
def grasp_track() -> tuple[np.ndarray, np.ndarray]:
    """Canonical EE track: approach a point, close, lift 10 cm and move 15 cm, release."""
    T = 60
    ee = np.tile(np.r_[0.4, 0.0, 0.9, yaw_quat(0.3)], (T, 1))
    ee[:20, 2] = np.linspace(0.95, 0.8, 20)
    ee[20:30, 2] = 0.8
    ee[30:45, 2] = np.linspace(0.8, 0.9, 15)
    ee[30:45, 1] = np.linspace(0.0, -0.15, 15)
    ee[45:, 1:3] = [-0.15, 0.9]
    opening = np.ones(T)
    opening[22:50] = 0.1
    return ee, opening


def test_grasp_events_and_missing_grasp():
    _, opening = grasp_track()
    ev = grasp_events(opening)
    assert (ev.close, ev.release) == (22, 50)
    with pytest.raises(SchemaError, match="no grasp event"):
        grasp_events(np.full(30, 0.8))
    with pytest.raises(SchemaError, match="no grasp event"):
        grasp_events(np.r_[np.ones(20), 0.0, np.ones(20)], min_steps=3)


def test_object_track_follows_the_hand_and_stays_after_release():
    ee, opening = grasp_track()
    track, info = infer_object_track(ee, opening, depth=0.01)
    grasp = ee[22]
    np.testing.assert_allclose(track[0, :3], grasp[:3] + [0, 0, -0.01], atol=1e-12)  # -z approach
    np.testing.assert_allclose(track[0, 3:], [1, 0, 0, 0])  # "world": upright, world axes
    rel = pose_mul(pose_inv(ee[22:50]), track[22:50])  # rigid in the hand while held
    np.testing.assert_allclose(rel, np.broadcast_to(rel[0], rel.shape), atol=1e-9)
    np.testing.assert_allclose(track[50:], np.broadcast_to(track[49], track[50:].shape))
    assert info["close_step"] == 22 and info["release_step"] == 50
    assert info["method"] == "ee_at_gripper_closure"
    frame, rinfo = infer_release_frame(ee, opening)
    np.testing.assert_allclose(frame[:3], ee[49, :3])
    assert rinfo["release_step"] == 50
    with pytest.raises(SchemaError, match="no release event"):
        infer_release_frame(ee[:40], opening[:40])


def test_object_frame_orientations():
    side = to_canonical(np.r_[0, 0, 0, 0.5, 0.5, 0.5, 0.5], ToolFrame())  # some side grasp
    approach = -axes(side)[:, 2]
    f = infer_object_frame(side, 0.02, "yaw")
    assert np.dot(axes(f)[:, 0], [*approach[:2], 0]) > 0 and axes(f)[2, 2] == pytest.approx(1)
    np.testing.assert_allclose(f[:3], 0.02 * approach, atol=1e-12)
    np.testing.assert_allclose(infer_object_frame(side, 0, "ee")[3:], side[3:])
    with pytest.raises(ConfigError, match="orientation 'up' unknown"):
        infer_object_frame(side, 0, "up")


# ------------------------------------------------------------------ the Panda-style test arm
def _cross_robot():
    spec = importlib.util.spec_from_file_location("cross_robot", ROOT / "benchmarks/cross_robot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def panda_demo():
    from sim.control.ik import ArmIK
    from sim.tasks import build_scene

    scene = build_scene("test_panda", "stack_blocks")
    return scene, _cross_robot().record_demo(scene, ArmIK.for_scene(scene), seed=0, level="D0")


def test_panda_is_mounted_offset_and_rotated(panda_demo):
    scene, _ = panda_demo
    root = scene.body_pose("panda_mount")
    mount = scene.model.site("robot_mount").pos
    np.testing.assert_allclose(root[:3], mount + [0.15, 0.3, 0.0], atol=1e-9)
    yaw = 2 * np.arctan2(root[6], root[3])
    assert yaw == pytest.approx(-0.6, abs=1e-6)


def test_panda_demo_is_recorded_in_the_panda_convention(panda_demo):
    """The recorded EE track is the Panda grip site (z along the fingers: pointing down while
    grasping), it stacks the block in physics, and mapping it to canonical gives top-down
    grasps (yaw_quat) near the block's face yaw."""
    scene, ep = panda_demo
    assert ep.meta.success and ep.meta.robot == "test_panda"
    assert ep.meta.provenance["tool_frame"]["right"]["approach"] == [0.0, 0.0, 1.0]
    t = int(np.argmax(ep.subtasks["grasped"]))
    assert axes(ep.ee["right"][t])[:, 2] @ [0, 0, 1] < -0.99  # Panda z points down at the grasp
    can = to_canonical(ep.ee["right"][t], PANDA)
    assert axes(can)[:, 2] @ [0, 0, 1] > 0.99  # canonical z up: fingers (-z) down
    np.testing.assert_allclose(ep.ee["right"][t, :2], ep.objects["block_a"][t, :2], atol=0.01)
    ep.validate()


def test_jaw_twin_is_the_same_grasp_turned_half_about_the_approach():
    from sim.augment.infer import episode_jaw_twins, jaw_twin, prefer_jaw_twin

    rng = np.random.default_rng(3)
    poses = to_canonical(random_poses(rng, 8), None)
    twin = jaw_twin(poses)
    np.testing.assert_allclose(axes(twin)[:, :, 2], axes(poses)[:, :, 2], atol=1e-9)  # approach
    np.testing.assert_allclose(axes(twin)[:, :, 1], -axes(poses)[:, :, 1], atol=1e-9)  # closing
    np.testing.assert_allclose(axes(jaw_twin(twin)), axes(poses), atol=1e-9)
    top = np.r_[0, 0, 0, yaw_quat(np.pi)]  # a top-down grasp at yaw pi: its twin is yaw 0
    assert prefer_jaw_twin(top, yaw_quat(0.1)) and not prefer_jaw_twin(top, yaw_quat(3.0))
    ep = _episode({"right": np.tile(top, (4, 1))})
    out = episode_jaw_twins(ep, {"right": yaw_quat(0.0)})
    assert out.meta.provenance["jaw_twin"] == ["right"]
    np.testing.assert_allclose(axes(out.ee["right"][0]), quat_to_mat(yaw_quat(0.0)), atol=1e-9)


def test_trim_approach_cuts_the_source_robots_free_space_start():
    from sim.augment.infer import trim_approach

    ee, opening = grasp_track()
    track, _ = infer_object_track(ee, opening)
    ee[:10, :3] += [0.3, 0.2, 0.0]  # the source robot's own home, far from the object
    ep = _episode({"right": ee}, objects={"cube": track})
    out = trim_approach(ep, "right", "cube", radius=0.15)
    assert len(out) == len(ep) - 10 and out.meta.provenance["trimmed_start"]["steps"] == 10
    np.testing.assert_allclose(out.ee["right"][0], ee[10])
    far = _episode({"right": ee}, objects={"cube": track + [1.0, 0, 0, 0, 0, 0, 0]})
    with pytest.raises(SchemaError, match="never comes within 0.15 m of 'cube'"):
        trim_approach(far, "right", "cube", radius=0.15)
    with pytest.raises(SchemaError, match="objects\\['mug'\\]"):
        trim_approach(ep, "right", "mug")
