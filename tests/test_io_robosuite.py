"""robosuite demo.hdf5 reader: EE/object trajectories recovered by FK on a stale, asset-less XML."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import mujoco
import numpy as np
import pytest

from sim.errors import FormatError, UnknownNameError
from sim.io.fk import (
    default_ee_sites,
    default_objects,
    frame_poses,
    load_kinematic_model,
    sanitize_mjcf,
)
from sim.io.formats import detect_format, read_episodes
from sim.io.robosuite import read_robosuite

# The model the demo was "recorded" with. Its mesh is inline (vertex list) so it compiles here.
CLEAN_XML = """
<mujoco model="tiny_lift">
  <compiler angle="radian"/>
  <option timestep="0.01"/>
  <asset>
    <mesh name="link_vis" vertex="0 0 0  0.1 0 0  0 0.1 0  0 0 0.1"/>
    <texture name="grid" type="2d" builtin="checker" width="8" height="8"/>
    <material name="grid_mat" texture="grid"/>
  </asset>
  <default>
    <default class="visual"><geom type="mesh" contype="0" conaffinity="0" group="1"/></default>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="1 1 0.1" material="grid_mat"/>
    <body name="robot0_base" pos="0 0 0.1">
      <body name="robot0_link1" pos="0 0 0.1">
        <joint name="robot0_joint1" axis="0 0 1" range="-3 3" damping="0.5"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
        <geom class="visual" mesh="link_vis"/>
        <body name="robot0_link2" pos="0.3 0 0" quat="0.92388 0 0.38268 0">
          <joint name="robot0_joint2" axis="0 1 0" damping="0.5"/>
          <geom type="capsule" fromto="0 0 0 0.25 0 0" size="0.025"/>
          <body name="gripper0_eef" pos="0.25 0 0">
            <joint name="robot0_joint3" axis="1 0 0" damping="0.2"/>
            <geom type="mesh" mesh="link_vis"/>
            <site name="gripper0_grip_site" pos="0.05 0.01 -0.02" quat="0.9 0.1 0.3 0.2"/>
            <body name="gripper0_finger1" pos="0.04 0 0">
              <joint name="gripper0_finger_joint1" type="slide" axis="0 1 0" range="0 0.04"/>
              <geom type="box" size="0.01 0.005 0.02"/>
            </body>
          </body>
        </body>
      </body>
    </body>
    <body name="cube_main" pos="0.4 0.2 0.3">
      <freejoint name="cube_joint0"/>
      <geom type="box" size="0.02 0.02 0.02"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="robot0_joint1" gear="3"/>
    <motor joint="robot0_joint2" gear="3"/>
    <motor joint="robot0_joint3" gear="1"/>
    <motor joint="gripper0_finger_joint1" gear="1"/>
  </actuator>
</mujoco>
"""


def stale_xml(xml: str = CLEAN_XML) -> str:
    """The XML as stored in the file: assets point at files that do not exist, plus attributes
    and elements from an older MuJoCo that this one rejects."""
    return (
        xml.replace('vertex="0 0 0  0.1 0 0  0 0.1 0  0 0 0.1"', 'file="/no/such/dir/missing.stl"')
        .replace('builtin="checker" width="8" height="8"', 'file="missing_texture.png"')
        .replace('<option timestep="0.01"/>', '<option timestep="0.01" mpr_iterations="50"/>')
        .replace("<worldbody>", "<worldbody>\n    <oldstyle_marker/>")
    )


def simulate(model: mujoco.MjModel, steps: int, seed: int):
    """Random torques; returns robosuite-style states (time, qpos, qvel), actions, and the EE
    site / cube body poses of the original model at each recorded state."""
    rng = np.random.default_rng(seed)
    data = mujoco.MjData(model)
    site = model.site("gripper0_grip_site").id
    cube = model.body("cube_main").id
    states, actions, ee, obj = [], [], [], []
    for _ in range(steps):
        mujoco.mj_forward(model, data)
        states.append(np.concatenate([[data.time], data.qpos, data.qvel]))
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, data.site_xmat[site])
        ee.append(np.concatenate([data.site_xpos[site], quat]))
        obj.append(np.concatenate([data.xpos[cube], data.xquat[cube]]))
        action = rng.uniform(-1, 1, size=4)
        data.ctrl[:] = action
        actions.append(action)
        for _ in range(5):
            mujoco.mj_step(model, data)
    return np.array(states), np.array(actions), np.array(ee), np.array(obj)


def write_demo_hdf5(path: Path, demos: list[tuple[np.ndarray, np.ndarray]], xml: str) -> None:
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["date"] = "11-25-2026"
        data.attrs["time"] = "06:00:00"
        data.attrs["repository_version"] = "1.4.1"
        data.attrs["env"] = "TinyLift"
        data.attrs["env_info"] = json.dumps(
            {
                "env_name": "TinyLift",
                "robots": ["Tiny"],
                "controller_configs": {"type": "JOINT_TORQUE"},
                "control_freq": 20,
            }
        )
        for i, (states, actions) in enumerate(demos, start=1):
            g = data.create_group(f"demo_{i}")
            g.attrs["model_file"] = xml
            g.create_dataset("states", data=states)
            g.create_dataset("actions", data=actions)


def assert_same_pose(a: np.ndarray, b: np.ndarray, tol: float = 1e-6) -> None:
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=tol)
    sign = np.sign(np.sum(a[:, 3:] * b[:, 3:], axis=1, keepdims=True))
    np.testing.assert_allclose(a[:, 3:], sign * b[:, 3:], atol=tol)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    model = mujoco.MjModel.from_xml_string(CLEAN_XML)
    runs = [simulate(model, 40, seed) for seed in (0, 1)]
    path = tmp_path_factory.mktemp("robosuite") / "demo.hdf5"
    write_demo_hdf5(path, [(s, a) for s, a, _, _ in runs], stale_xml())
    return path, runs


def test_stale_xml_does_not_compile_as_is():
    with pytest.raises(ValueError):
        mujoco.MjModel.from_xml_string(stale_xml())


def test_fk_recovers_ee_and_object_trajectories(recorded, caplog):
    path, runs = recorded
    with caplog.at_level(logging.WARNING, logger="sim.io.fk"):
        episodes = read_robosuite(path)
    assert "mpr_iterations" in caplog.text and "oldstyle_marker" in caplog.text
    assert len(episodes) == 2
    for ep, (states, actions, ee_ref, obj_ref) in zip(episodes, runs, strict=True):
        assert ep.meta.source == f"{path}#demo_{episodes.index(ep) + 1}"
        assert list(ep.ee) == ["main"] and list(ep.objects) == ["cube"]
        assert_same_pose(ep.ee["main"], ee_ref)
        assert_same_pose(ep.objects["cube"], obj_ref)
        # the cube fell and the arm moved: the comparison is not between constants
        assert np.ptp(obj_ref[:, 2]) > 0.05 and np.ptp(ee_ref[:, 0]) > 1e-3
        assert ep.joint_names == [
            "robot0_joint1",
            "robot0_joint2",
            "robot0_joint3",
            "gripper0_finger_joint1",
        ]
        np.testing.assert_array_equal(ep.qpos[:, :3], states[:, 1:4])
        np.testing.assert_array_equal(ep.action, actions)
        np.testing.assert_allclose(ep.gripper_cmd["main"], np.clip((1 - actions[:, -1]) / 2, 0, 1))
        lo, hi = 0.0, 0.04  # gripper0_finger_joint1 range: opening measured from the finger
        np.testing.assert_allclose(
            ep.gripper["main"], np.clip((states[:, 4] - lo) / (hi - lo), 0, 1)
        )
        assert ep.arm_joints["main"] == ep.joint_names
        assert "finger" in ep.meta.provenance["derived"]["gripper"]
        np.testing.assert_allclose(ep.time, states[:, 0] - states[0, 0])
        assert ep.meta.fps == 20 and ep.meta.task == "TinyLift" and ep.meta.robot == "Tiny"
        changes = " ".join(ep.meta.provenance["model_changes"])
        assert "missing.stl" in changes and "mpr_iterations" in changes


def test_explicit_frames_and_dispatch(recorded):
    path, runs = recorded
    assert detect_format(path) == "robosuite"
    (ep,) = read_episodes(
        path, ee_sites={"arm": "gripper0_eef"}, objects={"box": "cube_main"}, demos=[2]
    )
    ref_model = mujoco.MjModel.from_xml_string(CLEAN_XML)
    states = runs[1][0]
    ref = frame_poses(ref_model, states[:, 1 : 1 + ref_model.nq], {"b": "gripper0_eef"})["b"]
    assert_same_pose(ep.ee["arm"], ref)
    assert_same_pose(ep.objects["box"], runs[1][3])
    with pytest.raises(UnknownNameError, match="'no_such_site'"):
        read_robosuite(path, ee_sites={"arm": "no_such_site"})


def test_sanitize_keeps_kinematic_structure():
    text, changes = sanitize_mjcf(stale_xml())
    assert "missing.stl" not in text and "missing_texture.png" not in text
    assert any("link_vis" in c for c in changes)
    model = load_kinematic_model(stale_xml())
    clean = mujoco.MjModel.from_xml_string(CLEAN_XML)
    assert (model.nq, model.nv, model.nbody, model.nsite) == (
        clean.nq,
        clean.nv,
        clean.nbody,
        clean.nsite,
    )
    np.testing.assert_allclose(model.body_pos, clean.body_pos)
    np.testing.assert_allclose(model.site_quat, clean.site_quat)
    assert default_ee_sites(model) == {"main": "gripper0_grip_site"}
    assert default_objects(model) == {"cube": "cube_main"}


def test_load_kinematic_model_gives_up_with_named_error():
    broken = '<mujoco><worldbody><body><joint/><geom type="box"/></body></worldbody></mujoco>'
    with pytest.raises(FormatError, match="does not compile"):
        load_kinematic_model(broken)
    many = (
        '<mujoco><option a1="1" a2="2" a3="3"/><worldbody><body><joint/>'
        '<geom size=".1"/></body></worldbody></mujoco>'
    )
    with pytest.raises(FormatError, match="still failing after 2 removals"):
        load_kinematic_model(many, max_retries=2)
    assert load_kinematic_model(many).nq == 1
    with pytest.raises(FormatError, match="not well-formed"):
        load_kinematic_model("<mujoco><worldbody>")


def test_state_width_mismatch_is_named(tmp_path, recorded):
    _, runs = recorded
    path = tmp_path / "demo.hdf5"
    write_demo_hdf5(path, [(runs[0][0][:, :-1], runs[0][1])], stale_xml())
    with pytest.raises(FormatError, match=r"data/demo_1/states' has width .* expected 1 \+ nq"):
        read_robosuite(path)


def test_invalid_keyword_from_old_mujoco_is_dropped(caplog):
    xml = (
        '<mujoco><option integrator="oldmethod"/><worldbody><body><joint/>'
        '<geom size=".1"/></body></worldbody></mujoco>'
    )
    report: list[str] = []
    with caplog.at_level(logging.WARNING, logger="sim.io.fk"):
        model = load_kinematic_model(xml, report=report)
    assert model.nq == 1
    assert report == ["removed attribute option@integrator='oldmethod' (invalid keyword)"]
    assert "invalid keyword: 'oldmethod'" in caplog.text
