"""Recorded demos as they exist in the wild: each real robosuite layout, read with the right arms,
EE and object trajectories (checked against the original model), and controller deltas
converted to absolute targets that reproduce the recorded EE trajectory."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from wild_helpers import (
    ArmNames,
    env_info,
    record,
    replay_absolute,
    scene_xml,
    write_demo,
)

from sim.errors import FormatError
from sim.io import ReadReport, detect_format, read_episodes
from sim.io.deltas import osc_scaling, osc_targets
from sim.io.model_file import resolve_model_xml

ARM0, ARM1 = ArmNames.robosuite(0), ArmNames.robosuite(1)
OSC = {
    "type": "OSC_POSE",
    "input_max": 1,
    "input_min": -1,
    "output_max": [0.03] * 3 + [0.1] * 3,
    "output_min": [-0.03] * 3 + [-0.1] * 3,
}
T = 50


def assert_pose(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> None:
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=tol)
    sign = np.sign(np.sum(a[:, 3:] * b[:, 3:], axis=1, keepdims=True))
    np.testing.assert_allclose(a[:, 3:], sign * b[:, 3:], atol=tol)


@pytest.fixture(scope="module")
def one_arm():
    xml = scene_xml([(ARM0, "0 0 0.3", "1 0 0 0")])
    return xml, record(xml, [ARM0], T, seed=0, out_pos=0.03, out_rot=0.1)


@pytest.fixture(scope="module")
def two_arm():
    # robot1 faces robot0 from 1 m away (rotated 180 deg about z), as in TwoArmHandover
    xml = scene_xml([(ARM0, "0 0 0.3", "1 0 0 0"), (ARM1, "0.9 0 0.3", "0 0 0 1")])
    return xml, record(xml, [ARM0, ARM1], T, seed=1, out_pos=0.03, out_rot=0.1)


def attrs_14(robots=("Panda",)) -> dict:
    return {"env": "Wild", "repository_version": "1.4.1", "env_info": env_info(list(robots), OSC)}


def test_model_file_beside_the_demo_with_list_style_attributes(tmp_path, one_arm, caplog):
    """robosuite 1.0-era: @model_file is a file name, the XML (with list-style vectors) lies in
    models/ next to demo.hdf5."""
    _, rec = one_arm
    old_xml = scene_xml([(ARM0, "0 0 0.3", "1 0 0 0")], list_style=True)
    assert 'pos="[0, 0, 0.005]"' in old_xml
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model_1.xml").write_text(old_xml)
    path = write_demo(tmp_path / "demo.hdf5", [rec], "model_1.xml", attrs_14())
    assert detect_format(path) == "robosuite"
    with caplog.at_level(logging.INFO, logger="sim.io.fk"):
        (ep,) = read_episodes(path)
    prov = ep.meta.provenance
    assert prov["model_file"] == str(tmp_path / "models" / "model_1.xml")
    changes = " ".join(prov["model_changes"])
    assert "body@pos list syntax '[0, 0, 0.12]' -> '0 0 0.12'" in changes
    assert "geom@pos list syntax '[0, 0, 0.005]'" in changes
    assert list(ep.ee) == ["main"] and list(ep.objects) == ["cube"]
    assert_pose(ep.ee["main"], rec.ee[ARM0.site])
    assert_pose(ep.objects["cube"], rec.cube)
    assert np.ptp(rec.ee[ARM0.site][:, 0]) > 0.05  # it moved: not a comparison of constants


def test_model_file_lookup_order_and_error_lists_every_place(tmp_path, one_arm):
    xml, rec = one_arm
    path = write_demo(tmp_path / "demo.hdf5", [rec], "model_1.xml", attrs_14())
    with pytest.raises(FormatError) as e:
        read_episodes(path)
    msg = str(e.value)
    assert "data/demo_1/@model_file' names the model file 'model_1.xml'" in msg
    assert str(tmp_path / "models" / "model_1.xml") in msg and str(tmp_path / "model_1.xml") in msg
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model_1.xml").write_text(xml)
    (ep,) = read_episodes(path, model_dir=elsewhere)
    assert ep.meta.provenance["model_file"] == str(elsewhere / "model_1.xml")
    (tmp_path / "model_1.xml").write_text(xml)  # the demo's own folder
    (ep,) = read_episodes(path)
    assert ep.meta.provenance["model_file"] == str(tmp_path / "model_1.xml")
    assert_pose(ep.ee["main"], rec.ee[ARM0.site])
    # an absolute path of the recording machine: only its file name is looked up
    assert resolve_model_xml(path, "k", "/home/lab/robosuite/models/model_1.xml")[1] == str(
        tmp_path / "model_1.xml"
    )


def test_velocity_action_file_robosuite_03(tmp_path):
    """RoboTurk era (Sawyer): joint_velocities + gripper_actuations + right_dpos, no actions;
    0.3 names (right_j0.., grip_site), time not recorded."""
    arm = ArmNames.legacy("right")
    xml = scene_xml([(arm, "0 0 0.3", "1 0 0 0")])
    rec = record(xml, [arm], T, seed=2)
    rec.states[:, 0] = 0.0  # 0.3 collection scripts did not store sim time
    path = write_demo(
        tmp_path / "demo.hdf5",
        [rec],
        xml,
        {"env": "SawyerLift", "repository_version": "0.3.0"},
        layout="velocity",
    )
    assert detect_format(path) == "robosuite"
    (ep,) = read_episodes(path, fps=20.0)
    assert list(ep.ee) == ["main"]
    assert_pose(ep.ee["main"], rec.ee[arm.site])
    assert_pose(ep.objects["cube"], rec.cube)
    assert ep.arm_joints["main"] == [*arm.joints, *arm.fingers]
    np.testing.assert_allclose(ep.time, np.arange(T) / 20.0)
    assert "time: not recorded" in ep.meta.provenance["time"]
    assert ep.action_names[:6] == [f"{j}_vel" for j in arm.joints]
    assert ep.action_names[6] == "gripper"
    np.testing.assert_allclose(ep.action[:, :6], rec.joint_vel)
    np.testing.assert_allclose(ep.gripper_cmd["main"], (1 - rec.grip[:, 0]) / 2)
    # measured opening from the fingers follows the command (open -> closed -> open)
    g = ep.gripper["main"]
    assert g[5] > 0.9 and g[T // 2] < 0.1 and g[-1] > 0.9
    assert "finger joints" in ep.meta.provenance["derived"]["gripper"]


def test_states_only_two_arm_baxter_03(tmp_path):
    """Baxter (0.3): two arms named right/left by their 0.3 grip sites, states only."""
    right, left = ArmNames.legacy("right"), ArmNames.legacy("left")
    xml = scene_xml([(right, "0 -0.3 0.3", "1 0 0 0"), (left, "0 0.3 0.3", "1 0 0 0")])
    rec = record(xml, [right, left], T, seed=3)
    path = write_demo(
        tmp_path / "demo.hdf5",
        [rec],
        xml,
        {"env": "BaxterLift", "repository_version": "0.3.0"},
        layout="states",
    )
    (ep,) = read_episodes(path)
    assert list(ep.ee) == ["right", "left"]
    assert_pose(ep.ee["right"], rec.ee[right.site])
    assert_pose(ep.ee["left"], rec.ee[left.site])
    assert_pose(ep.objects["cube"], rec.cube)
    assert ep.action is None and ep.meta.provenance["action_space"] == "none (states only)"
    assert set(ep.gripper) == {"right", "left"} and not ep.gripper_cmd
    assert ep.arm_joints["left"] == [*left.joints, *left.fingers]
    assert ep.meta.fps == pytest.approx(1 / 0.05)  # from the recorded state period


def test_two_arm_file_with_env_args_is_robosuite_with_per_arm_grippers(tmp_path, two_arm):
    """A two-robot file (robot0_*, robot1_*) that also has env_args: robosuite, not robomimic;
    each arm gets its EE, joints, gripper command and OSC targets from its action columns."""
    xml, rec = two_arm
    attrs = attrs_14(("Panda", "Panda"))
    attrs["env_args"] = {"env_name": "TwoArmHandover", "type": 1, "env_kwargs": {}}
    path = write_demo(tmp_path / "handover.hdf5", [rec, rec], xml, attrs)
    assert detect_format(path) == "robosuite"
    eps = read_episodes(path)
    assert len(eps) == 2
    ep = eps[0]
    assert list(ep.ee) == ["robot0", "robot1"] and list(ep.objects) == ["cube"]
    for arm, names in (("robot0", ARM0), ("robot1", ARM1)):
        assert_pose(ep.ee[arm], rec.ee[names.site])
        assert ep.arm_joints[arm] == [*names.joints, *names.fingers]
    assert ep.action_names[6] == "robot0_gripper" and ep.action_names[13] == "robot1_gripper"
    np.testing.assert_allclose(ep.gripper_cmd["robot0"], (1 - rec.grip[:, 0]) / 2)
    np.testing.assert_allclose(ep.gripper_cmd["robot1"], (1 - rec.grip[:, 1]) / 2)
    assert not np.array_equal(ep.gripper_cmd["robot0"], ep.gripper_cmd["robot1"])
    layout = ep.meta.provenance["action_layout"]
    assert layout["robot1"] == {
        "arm": [7, 13],
        "controller": "OSC_POSE",
        "gripper": 13,
        "scaling": layout["robot0"]["scaling"],
    }
    assert set(ep.target) == {"robot0", "robot1"}


def test_osc_delta_conversion_reproduces_the_recorded_ee_trajectory(tmp_path, two_arm):
    """Replaying the converted absolute targets with the same controller (absolute mode)
    reproduces the recorded EE trajectory of both arms; the scaling comes from the file's
    env metadata (robosuite's default scaling would miss by many cm)."""
    xml, rec = two_arm
    path = write_demo(tmp_path / "demo.hdf5", [rec], xml, attrs_14(("Panda", "Panda")))
    (ep,) = read_episodes(path)
    arms = [ARM0, ARM1]
    out = replay_absolute(
        xml, arms, rec.states[0], [ep.target["robot0"], ep.target["robot1"]], rec.grip
    )
    for arm, names in (("robot0", ARM0), ("robot1", ARM1)):
        err = np.linalg.norm(out[names.site][:, :3] - rec.ee[names.site][:, :3], axis=1)
        moved = np.ptp(rec.ee[names.site][:, :3], axis=0).max()
        print(
            f"\n{arm}: replayed converted targets, EE error max {err.max() * 100:.2e} cm "
            f"(motion range {moved * 100:.1f} cm)"
        )
        assert err.max() < 0.01 and moved > 0.05
        # each target lies ahead of the EE, towards where it went next (the controller lags)
        nxt = np.linalg.norm(ep.target[arm][:-1, :3] - rec.ee[names.site][1:, :3], axis=1)
        assert nxt.mean() < 0.02
    wrong = osc_targets(osc_scaling({"type": "OSC_POSE"}), ep.action[:, :6], ep.ee["robot0"])
    miss = replay_absolute(xml, [ARM0, ARM1], rec.states[0], [wrong, ep.target["robot1"]], rec.grip)
    assert np.linalg.norm(miss[ARM0.site][:, :3] - rec.ee[ARM0.site][:, :3], axis=1).max() > 0.03


def test_osc_position_and_base_frame():
    """OSC_POSITION holds the first orientation; input_ref_frame=base rotates the deltas."""
    ee = np.tile([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0], (3, 1))
    a = np.array([[1.0, 0.0, 0.0]] * 3)
    s = osc_scaling({"type": "OSC_POSITION", "input_ref_frame": "base"})
    base = np.array([0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # rotated 180 deg about z
    out = osc_targets(s, a, ee, base)
    np.testing.assert_allclose(out[:, :3], [[0.45, 0.0, 0.3]] * 3, atol=1e-12)
    np.testing.assert_allclose(np.abs(out[:, 3]), 1.0)
    absolute = osc_scaling({"type": "OSC_POSE", "control_delta": False})
    out = osc_targets(absolute, np.zeros((1, 6)), ee[:1])
    np.testing.assert_allclose(out[0], [0, 0, 0, 1, 0, 0, 0], atol=1e-12)
    with pytest.raises(FormatError, match="input_ref_frame 'tool'"):
        osc_scaling({"type": "OSC_POSE", "input_ref_frame": "tool"})
    with pytest.raises(FormatError, match="controller type 'JOINT_VELOCITY'"):
        osc_scaling({"type": "JOINT_VELOCITY"})


def test_backwards_time_is_an_error_not_a_grid(tmp_path, one_arm):
    xml, rec = one_arm
    states = rec.states.copy()
    states[20:, 0] -= 0.5  # time runs backwards at row 20
    bad = type(rec)(states=states, actions=rec.actions)
    path = write_demo(tmp_path / "demo.hdf5", [rec, bad], xml, attrs_14())
    with pytest.raises(Exception, match=r"demo_2: field 'time' at row 20: .*strictly increasing"):
        read_episodes(path)
    report = ReadReport()
    eps = read_episodes(path, on_bad_episode="skip", report=report)
    assert len(eps) == 1 and report.read == 1 and report.n_skipped == 1
    assert report.skipped[0]["episode"].endswith("#demo_2")


def test_robosuite_15_composite_controller_in_the_base_frame(tmp_path):
    """robosuite 1.5: grip site gripper0_right_grip_site, composite controller config
    (BASIC with body_parts), OSC deltas in the robot base frame (base turned 90 deg)."""
    arm = ArmNames(
        base="robot0_base",
        joints=ARM0.joints,
        fingers=ARM0.fingers,
        site="gripper0_right_grip_site",
        bodies="robot0_",
    )
    xml = scene_xml([(arm, "0 0 0.3", "0.7071068 0 0 0.7071068")])
    rec = record(xml, [arm], T, seed=5, base_frame=True)
    part = {**OSC, "input_ref_frame": "base", "gripper": {"type": "GRIP"}}
    composite = {"type": "BASIC", "body_parts": {"right": part}}
    attrs = {
        "env": "Lift",
        "repository_version": "1.5.1",
        "env_info": env_info(["Panda"], composite),
    }
    path = write_demo(tmp_path / "demo.hdf5", [rec], xml, attrs)
    (ep,) = read_episodes(path)
    assert list(ep.ee) == ["main"] and ep.meta.provenance["controller"] == "OSC_POSE"
    assert ep.meta.provenance["action_layout"]["main"]["scaling"]["ref_frame"] == "base"
    assert_pose(ep.ee["main"], rec.ee[arm.site])
    out = replay_absolute(xml, [arm], rec.states[0], [ep.target["main"]], rec.grip)
    err = np.linalg.norm(out[arm.site][:, :3] - rec.ee[arm.site][:, :3], axis=1)
    assert err.max() < 0.01 and np.ptp(rec.ee[arm.site][:, :3], axis=0).max() > 0.05
    world = osc_targets(osc_scaling(OSC), ep.action[:, :6], ep.ee["main"])  # frame ignored
    miss = replay_absolute(xml, [arm], rec.states[0], [world], rec.grip)
    assert np.linalg.norm(miss[arm.site][:, :3] - rec.ee[arm.site][:, :3], axis=1).max() > 0.03
