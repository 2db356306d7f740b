"""robomimic / MimicGen HDF5: exact round trip of Episodes, layout, and foreign files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from sim.episode import Episode, EpisodeMeta
from sim.errors import OutputExistsError, SchemaError
from sim.io.formats import detect_format, read_episodes
from sim.io.robomimic import read_robomimic, write_robomimic
from sim.transforms import pose_to_mat, quat_normalize, wxyz_to_xyzw

ENV_ARGS = {
    "env_name": "Stack_D0",
    "env_version": "1.4.1",
    "type": 1,
    "env_kwargs": {"control_freq": 20, "robots": ["Panda"]},
}


def random_poses(rng: np.random.Generator, T: int) -> np.ndarray:
    """Random but physically plausible tracks (small steps), so sanity checks on read pass."""
    pos = rng.normal(size=3) + np.cumsum(rng.normal(scale=0.01, size=(T, 3)), axis=0)
    quat = rng.normal(size=4) + np.cumsum(rng.normal(scale=0.02, size=(T, 4)), axis=0)
    return np.concatenate([pos, quat_normalize(quat)], 1)


def walk(rng: np.random.Generator, T: int, n: int, step: float = 0.01) -> np.ndarray:
    return rng.normal(size=n) + np.cumsum(rng.normal(scale=step, size=(T, n)), axis=0)


def make_episode(rng: np.random.Generator, T: int = 12, full: bool = True, idx: int = 0) -> Episode:
    meta = EpisodeMeta(
        task="stack",
        robot="panda",
        fps=20.0,
        source=f"scripted#{idx}",
        success=bool(idx % 2 == 0),
        seed=idx,
        instruction="stack the cubes",
        provenance={"transforms": ["se3"], "noise": 0.01, "nested": {"a": [1, 2]}},
    )
    ep = Episode(
        meta=meta,
        time=np.arange(T) / 20.0,
        joint_names=[f"joint{j}" for j in range(7)],
        qpos=walk(rng, T, 7),
        action_names=[f"joint{j}" for j in range(7)] + ["gripper"],
        action=rng.normal(size=(T, 8)),
        ee={"left": random_poses(rng, T), "right": random_poses(rng, T)},
        gripper={"left": rng.uniform(size=T), "right": rng.uniform(size=T)},
        objects={"cube_a": random_poses(rng, T), "cube_b": random_poses(rng, T)},
        subtasks={"grasp": np.arange(T) >= T // 2, "place": np.arange(T) >= T - 2},
    )
    if full:
        ep.qvel = walk(rng, T, 7)
        ep.images = {"agentview": rng.integers(0, 256, (T, 8, 10, 3), dtype=np.uint8)}
    else:
        ep.action, ep.action_names = None, []
    return ep


def assert_episodes_equal(a: Episode, b: Episode) -> None:
    assert a.meta == b.meta
    assert a.joint_names == b.joint_names and a.action_names == b.action_names
    np.testing.assert_array_equal(a.time, b.time)
    for name in ("qpos", "qvel", "action"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
    for group in ("ee", "gripper", "objects", "subtasks"):
        ga, gb = getattr(a, group), getattr(b, group)
        assert list(ga) == list(gb), group
        for k in ga:
            np.testing.assert_array_equal(ga[k], gb[k])
            assert np.asarray(ga[k]).dtype == np.asarray(gb[k]).dtype, (group, k)
    assert list(a.images) == list(b.images)
    for cam in a.images:
        np.testing.assert_array_equal(a.image(cam), b.image(cam))


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [
        make_episode(rng, 12, True, 0),
        make_episode(rng, 9, False, 1),
        make_episode(rng, 5, True, 2),
    ]
    path = write_robomimic(episodes, tmp_path / "out.hdf5", ENV_ARGS, model_xml="<mujoco/>")
    assert detect_format(path) == "robomimic"
    back = read_robomimic(path)
    assert len(back) == 3
    assert callable(back[0].images["agentview"])  # lazy until first use
    for a, b in zip(episodes, back, strict=True):
        assert_episodes_equal(a, b)
    assert back[1].qvel is None and back[1].action is None and back[1].images == {}
    eager = read_episodes(path, lazy_images=False, demos=[2])
    assert len(eager) == 1 and isinstance(eager[0].images["agentview"], np.ndarray)
    assert_episodes_equal(episodes[2], eager[0])


def test_layout_matches_robomimic_and_mimicgen(tmp_path):
    rng = np.random.default_rng(1)
    episodes = [make_episode(rng, 10, True, i) for i in range(10)]
    path = write_robomimic(
        episodes,
        tmp_path / "out.hdf5",
        ENV_ARGS,
        model_xml="<mujoco/>",
        valid_fraction=0.2,
        rng=np.random.default_rng(3),
    )
    ep = episodes[0]
    with h5py.File(path, "r") as f:
        data = f["data"]
        assert data.attrs["total"] == 100
        env_args = json.loads(data.attrs["env_args"])
        assert set(env_args) == {"env_name", "env_version", "type", "env_kwargs"}
        g = data["demo_0"]
        assert g.attrs["num_samples"] == 10 and g.attrs["model_file"] == "<mujoco/>"
        np.testing.assert_array_equal(g["states"][()], np.concatenate([ep.qpos, ep.qvel], 1))
        np.testing.assert_array_equal(g["rewards"][()], [0] * 9 + [1])
        np.testing.assert_array_equal(g["dones"][()], [0] * 9 + [1])
        # robomimic stores quaternions x, y, z, w
        xyzw = wxyz_to_xyzw(ep.ee["left"][:, 3:])
        np.testing.assert_array_equal(g["obs/robot0_eef_quat"][()], xyzw)
        np.testing.assert_array_equal(g["obs/robot1_eef_pos"][()], ep.ee["right"][:, :3])
        assert g["obs/agentview_image"].dtype == np.uint8
        assert g["obs/agentview_image"].shape == (10, 8, 10, 3)
        assert g["obs/object"].shape == (10, 14)
        dg = g["datagen_info"]
        assert dg.attrs["env_interface_name"] == "MG_stack"
        assert dg.attrs["env_interface_type"] == "robosuite"
        np.testing.assert_allclose(dg["eef_pose"][()], pose_to_mat(ep.ee["left"]))
        assert dg["eef_pose"].shape == (10, 4, 4) and dg["target_pose"].shape == (10, 4, 4)
        np.testing.assert_allclose(dg["target_pose"][:-1], dg["eef_pose"][1:])
        np.testing.assert_allclose(dg["object_poses/cube_b"][()], pose_to_mat(ep.objects["cube_b"]))
        np.testing.assert_array_equal(dg["subtask_term_signals/grasp"][()], ep.subtasks["grasp"])
        np.testing.assert_allclose(dg["gripper_action"][()], 1 - 2 * ep.action[:, 7:])
        train = sorted(x.decode() for x in f["mask/train"][()])
        valid = sorted(x.decode() for x in f["mask/valid"][()])
        assert f["mask/train"].dtype.kind == "S"
        assert len(valid) == 2 and sorted(train + valid) == sorted(f"demo_{i}" for i in range(10))


def test_writer_refuses_existing_file_and_bad_env_args(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "x.hdf5"
    write_robomimic([make_episode(rng)], path, ENV_ARGS)
    with pytest.raises(OutputExistsError, match="x.hdf5 already exists; pass overwrite=True"):
        write_robomimic([make_episode(rng)], path, ENV_ARGS)
    write_robomimic([make_episode(rng, 4)], path, ENV_ARGS, overwrite=True)
    assert len(read_robomimic(path)[0]) == 4
    with pytest.raises(SchemaError, match="env_args lacks key 'env_name'"):
        write_robomimic([make_episode(rng)], tmp_path / "y.hdf5", {"type": 1})
    assert not (tmp_path / "y.hdf5").exists()


def write_mimicgen_file(path, T=6, names=("demo_10", "demo_2", "demo_1"), quat_order="xyzw"):
    """A MimicGen-style file as prepare_src_dataset/generate_dataset write it (no demoforge attrs).

    The obs EE pose is offset from datagen_info/eef_pose so a test can tell which one was used.
    """
    rng = np.random.default_rng(5)
    refs = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(ENV_ARGS)
        data.attrs["total"] = T * len(names)
        for name in names:
            g = data.create_group(name)
            g.attrs["num_samples"] = T
            g.attrs["model_file"] = "<mujoco/>"
            eef = random_poses(rng, T)
            cube = random_poses(rng, T)
            actions = rng.uniform(-1, 1, (T, 7))
            g.create_dataset("actions", data=actions)
            g.create_dataset("states", data=rng.normal(size=(T, 20)))
            obs = g.create_group("obs")
            obs.create_dataset("robot0_eef_pos", data=eef[:, :3])
            q = wxyz_to_xyzw(eef[:, 3:]) if quat_order == "xyzw" else eef[:, 3:]
            obs.create_dataset("robot0_eef_quat", data=q)
            obs.create_dataset("robot0_joint_pos", data=rng.normal(size=(T, 7)))
            obs.create_dataset("robot0_gripper_qpos", data=rng.normal(size=(T, 2)))
            obs.create_dataset("object", data=rng.normal(size=(T, 10)))
            obs.create_dataset("agentview_image", data=rng.integers(0, 255, (T, 4, 4, 3), np.uint8))
            dg = g.create_group("datagen_info")
            dg.attrs["env_interface_name"] = "MG_Stack"
            dg.attrs["env_interface_type"] = "robosuite"
            shifted = eef.copy()
            shifted[:, 0] += 0.5 if quat_order == "xyzw" else 0.0
            dg.create_dataset("eef_pose", data=pose_to_mat(shifted))
            dg.create_dataset("target_pose", data=pose_to_mat(shifted))
            dg.create_dataset("object_poses/cubeA", data=pose_to_mat(cube))
            sig = (np.arange(T) >= 3).astype(np.int64)
            dg.create_dataset("subtask_term_signals/grasp", data=sig)
            dg.create_dataset("gripper_action", data=actions[:, -1:])
            refs[name] = (shifted, cube, actions, sig)
    return refs


def test_reads_foreign_mimicgen_file(tmp_path):
    path = tmp_path / "mg.hdf5"
    refs = write_mimicgen_file(path)
    episodes = read_robomimic(path)
    assert [e.meta.source.split("#")[1] for e in episodes] == ["demo_1", "demo_2", "demo_10"]
    for ep in episodes:
        shifted, cube, actions, sig = refs[ep.meta.source.split("#")[1]]
        assert list(ep.ee) == ["main"]
        np.testing.assert_allclose(ep.ee["main"][:, :3], shifted[:, :3])  # datagen_info wins
        dots = np.abs(np.sum(ep.ee["main"][:, 3:] * shifted[:, 3:], axis=1))
        np.testing.assert_allclose(dots, 1.0, atol=1e-9)
        np.testing.assert_allclose(ep.objects["cubeA"][:, :3], cube[:, :3])
        np.testing.assert_array_equal(ep.subtasks["grasp"], sig.astype(bool))
        np.testing.assert_allclose(ep.gripper["main"], (1 - actions[:, -1]) / 2)
        assert ep.meta.fps == 20 and ep.meta.task == "Stack_D0" and ep.meta.robot == "Panda"
        assert ep.qpos.shape == (6, 7) and ep.image("agentview").shape == (6, 4, 4, 3)
        np.testing.assert_allclose(ep.time, np.arange(6) / 20)


def test_foreign_quaternion_in_wrong_order_is_flagged(tmp_path):
    path = tmp_path / "mg_wxyz.hdf5"
    write_mimicgen_file(path, names=("demo_0",), quat_order="wxyz")
    with pytest.raises(SchemaError, match=r"robot0_eef_quat' matches .* only when read as w,x,y,z"):
        read_robomimic(path)


def test_reads_bimanual_eef_pose_stack(tmp_path):
    """DexMimicGen-style ``datagen_info/eef_pose`` (T, 2, 4, 4): one EE track per robot."""
    path = tmp_path / "dex.hdf5"
    rng = np.random.default_rng(9)
    T = 5
    left, right = random_poses(rng, T), random_poses(rng, T)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(ENV_ARGS)
        g = data.create_group("demo_0")
        g.create_dataset("actions", data=rng.uniform(-1, 1, (T, 14)))
        obs = g.create_group("obs")
        for k, pose in enumerate((left, right)):
            obs.create_dataset(f"robot{k}_eef_pos", data=pose[:, :3])
            obs.create_dataset(f"robot{k}_eef_quat", data=wxyz_to_xyzw(pose[:, 3:]))
        dg = g.create_group("datagen_info")
        dg.create_dataset("eef_pose", data=np.stack([pose_to_mat(left), pose_to_mat(right)], 1))
    ep = read_robomimic(path)[0]
    assert list(ep.ee) == ["robot0", "robot1"]
    np.testing.assert_allclose(ep.ee["robot1"][:, :3], right[:, :3])
    dots = np.abs(np.sum(ep.ee["robot0"][:, 3:] * left[:, 3:], axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-9)
