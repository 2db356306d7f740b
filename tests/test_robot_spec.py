"""Robot YAML -> RobotSpec -> MjSpec edits: MJCF candidates, build-time edits, weld grasp, and the
errors a bad robot description must raise (each naming the offending key/name)."""

from __future__ import annotations

import copy
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from sim.control.ik import ArmIK
from sim.errors import ConfigError, ReachError, UnknownNameError
from sim.model.robot import (
    _resolve_mjcf,
    check_robot_model,
    known_robots,
    load_robot,
    robot_from_dict,
    robot_mjspec,
)
from sim.paths import conf_dir, scenes_dir
from sim.rollout import run_scripted
from sim.tasks import build_scene

HUMANOID_XML = scenes_dir() / "robots" / "demoforge_humanoid" / "humanoid.xml"


def humanoid_raw() -> dict:
    with open(conf_dir() / "robot" / "demoforge_humanoid.yaml") as f:
        return yaml.safe_load(f)


# A three-slide-joint "hand" with one collision pad and no fingers: the smallest weld gripper.
WELD_HAND_XML = """
<mujoco model="weld_hand">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast"/>
  <worldbody>
    <body name="carriage" pos="0 0 1.0">
      <inertial pos="0 0 0" mass="0.5" diaginertia="0.001 0.001 0.001"/>
      <joint name="hx" type="slide" axis="1 0 0" range="-1 1"/>
      <body name="slider">
        <inertial pos="0 0 0" mass="0.5" diaginertia="0.001 0.001 0.001"/>
        <joint name="hy" type="slide" axis="0 1 0" range="-1 1"/>
        <body name="hand">
          <inertial pos="0 0 0" mass="0.5" diaginertia="0.001 0.001 0.001"/>
          <joint name="hz" type="slide" axis="0 0 1" range="-1 0.5"/>
          <geom name="pad" type="box" size="0.03 0.03 0.005" rgba="0.2 0.2 0.2 1"/>
          <site name="ee" pos="0 0 -0.03"/>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <position name="hx" joint="hx" kp="3000" kv="150"/>
    <position name="hy" joint="hy" kp="3000" kv="150"/>
    <position name="hz" joint="hz" kp="3000" kv="150"/>
  </actuator>
</mujoco>
"""


@pytest.fixture(scope="module")
def weld_hand_scene(tmp_path_factory):
    path = tmp_path_factory.mktemp("weld_hand") / "weld_hand.xml"
    path.write_text(WELD_HAND_XML)
    robot = {
        "name": "weld_hand",
        "mjcf": str(path),
        "home_key": None,
        "gravcomp": ["carriage"],
        "arms": {
            "right": {"joints": ["hx", "hy", "hz"], "ee_site": "ee", "gripper": {"weld": True}}
        },
    }
    return build_scene(robot, "stack_blocks")


# ---------------------------------------------------------------------------- bad input
def test_unknown_robot_lists_known_robots():
    with pytest.raises(UnknownNameError) as e:
        load_robot("no_such_robot")
    msg = str(e.value)
    assert "no_such_robot" in msg
    for name in known_robots():
        assert name in msg
    assert "demoforge_humanoid" in known_robots()


def test_missing_joint_and_site_are_named():
    raw = humanoid_raw()
    raw["arms"]["left"]["joints"][3] = "left_elbowz"
    raw["arms"]["right"]["ee_site"] = "right_eee"
    spec = robot_from_dict(raw, "bad.yaml")
    model = mujoco.MjModel.from_xml_path(str(spec.mjcf))
    with pytest.raises(ConfigError) as e:
        check_robot_model(spec, model)
    msg = str(e.value)
    assert "bad.yaml" in msg
    assert "arms.left.joints: joint 'left_elbowz'" in msg
    assert "arms.right.ee_site: site 'right_eee'" in msg
    with pytest.raises(ConfigError, match="left_elbowz"):
        build_scene(raw, "stack_blocks")


def test_unknown_keys_are_named():
    raw = humanoid_raw()
    raw["reachh"] = 0.5
    with pytest.raises(ConfigError, match="reachh"):
        robot_from_dict(raw, "r.yaml")
    raw = humanoid_raw()
    raw["arms"]["left"]["gripper"]["strength"] = 3
    with pytest.raises(ConfigError, match=r"strength.*in arms\.left\.gripper"):
        robot_from_dict(raw, "r.yaml")
    raw = humanoid_raw()
    del raw["arms"]["left"]["gripper"]["actuator"]
    with pytest.raises(ConfigError, match=r"arms\.left\.gripper needs keys 'actuator'"):
        robot_from_dict(raw, "r.yaml")


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("fixed_joints", ["no_such_*"], "fixed_joints: no joint .* matches 'no_such_\\*'"),
        (
            "position_actuators",
            {"g": {"joints": ["nope"], "kp": 1, "kv": 0}},
            "position_actuators.g.joints: no joint .* matches 'nope'",
        ),
        ("gravcomp", ["no_body"], "gravcomp: body 'no_body'"),
        (
            "add_cameras",
            {"c": {"body": "no_body", "pos": [0, 0, 0]}},
            "add_cameras.c.body: body 'no_body'",
        ),
        (
            "add_geoms",
            [{"body": "torso", "type": "blob", "size": [0.1]}],
            "add_geoms\\[0\\].type 'blob'",
        ),
        ("exclude_contacts", [["torso", "no_body*"]], "exclude_contacts\\[0\\].*'no_body\\*'"),
        ("base_body", "no_body", "base_body: body 'no_body'"),
    ],
)
def test_build_time_edits_name_what_is_missing(key, value, named):
    raw = humanoid_raw()
    raw[key] = value
    with pytest.raises(ConfigError, match=named):
        robot_mjspec(robot_from_dict(raw, "r.yaml"))


def test_ee_body_missing_is_named():
    raw = humanoid_raw()
    raw["arms"]["left"]["ee_body"] = "left_palm"
    raw["arms"]["left"]["ee_site"] = "left_new_ee"
    with pytest.raises(ConfigError, match="arms.left.ee_body: body 'left_palm'"):
        robot_mjspec(robot_from_dict(raw, "r.yaml"))


def test_unreachable_task_raises_reach_error_naming_arm_waypoint_distance():
    raw = humanoid_raw()
    raw["reach"] = 0.2
    scene = build_scene(raw, "stack_blocks")
    with pytest.raises(ReachError) as e:
        run_scripted(scene, ArmIK.for_scene(scene), seed=0)
    msg = str(e.value)
    assert "arm 'right'" in msg and "waypoint 'approach'" in msg
    assert "m from the shoulder, reach is 0.200 m" in msg


# ---------------------------------------------------------------------------- MJCF candidates
def test_mjcf_candidates_first_existing_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("DF_TEST_MJCF", str(HUMANOID_XML))
    monkeypatch.delenv("DF_TEST_UNSET", raising=False)
    got = _resolve_mjcf(["$DF_TEST_UNSET", str(tmp_path / "nope.xml"), "$DF_TEST_MJCF"], "r.yaml")
    assert got == HUMANOID_XML.resolve()
    # relative paths: scenes/, the YAML's folder, then the checkout root
    assert _resolve_mjcf("robots/demoforge_humanoid/humanoid.xml", "r") == HUMANOID_XML.resolve()
    rel = Path("scenes") / "robots" / "demoforge_humanoid" / "humanoid.xml"
    assert _resolve_mjcf(str(rel), "<config>") == HUMANOID_XML.resolve()


def test_mjcf_candidates_error_lists_everything_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("DF_TEST_UNSET", raising=False)
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))  # never downloads
    with pytest.raises(ConfigError) as e:
        _resolve_mjcf(["$DF_TEST_UNSET", "/no/such/robot.xml", "menagerie:unitree_g1"], "g.yaml")
    msg = str(e.value)
    assert "g.yaml" in msg and "key 'mjcf'" in msg
    assert "$DF_TEST_UNSET (environment variable unset)" in msg
    assert "/no/such/robot.xml (no such file)" in msg
    assert "menagerie:unitree_g1 (" in msg and "not found" in msg
    with pytest.raises(ConfigError, match="points to /no/such.xml, which does not exist"):
        _resolve_mjcf("/no/such.xml", "g.yaml")


def test_menagerie_name_resolves_robot_only_xml_from_local_root(tmp_path, monkeypatch):
    d = tmp_path / "unitree_g1"
    d.mkdir()
    for f in ("g1.xml", "g1_mjx.xml", "scene.xml"):
        (d / f).write_text("<mujoco/>")
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    assert _resolve_mjcf(["/no/such.xml", "menagerie:unitree_g1"], "r") == d / "g1.xml"
    assert _resolve_mjcf("menagerie:unitree_g1/scene", "r") == d / "scene.xml"


def test_shipped_g1_yaml_lists_local_path_then_menagerie():
    with open(conf_dir() / "robot" / "unitree_g1.yaml") as f:
        raw = yaml.safe_load(f)
    assert isinstance(raw["mjcf"], list) and raw["mjcf"][-1] == "menagerie:unitree_g1"


# ---------------------------------------------------------------------------- build-time edits
def test_fixed_joint_is_locked_at_its_home_value():
    """Deleting a joint folds its home angle into the body pose: the hand ends up where the
    unedited model puts it at home."""
    raw = humanoid_raw()
    raw["fixed_joints"] = ["left_elbow", "left_wrist_*"]
    raw["arms"] = {"right": raw["arms"]["right"]}
    spec = robot_from_dict(raw, "r.yaml")
    edited = robot_mjspec(spec).compile()
    assert mujoco.mj_name2id(edited, mujoco.mjtObj.mjOBJ_JOINT, "left_elbow") < 0
    assert mujoco.mj_name2id(edited, mujoco.mjtObj.mjOBJ_ACTUATOR, "left_elbow") < 0
    ref = mujoco.MjModel.from_xml_path(str(HUMANOID_XML))
    d_ref, d_ed = mujoco.MjData(ref), mujoco.MjData(edited)
    mujoco.mj_resetDataKeyframe(ref, d_ref, ref.key("home").id)
    for j in range(edited.njnt):  # remaining joints at their home values, by name
        d_ed.qpos[edited.jnt_qposadr[j]] = d_ref.joint(edited.joint(j).name).qpos[0]
    mujoco.mj_forward(ref, d_ref)
    mujoco.mj_forward(edited, d_ed)
    assert abs(d_ref.joint("left_elbow").qpos[0] + 1.3) < 1e-9  # a non-zero home angle
    for site in ("left_ee", "right_ee"):
        np.testing.assert_allclose(d_ed.site(site).xpos, d_ref.site(site).xpos, atol=1e-9)
        np.testing.assert_allclose(d_ed.site(site).xmat, d_ref.site(site).xmat, atol=1e-9)


def test_spec_edits_servos_sites_cameras_geoms_mount():
    raw = humanoid_raw()
    raw.update(
        mount_offset=[0.1, 0.0, -0.05],
        position_actuators={"wrist": {"joints": ["*_wrist_pitch"], "kp": 77, "kv": 3}},
        add_cameras={
            "chest_cam": {
                "body": "torso",
                "pos": [0.12, 0, 0.3],
                "xyaxes": [0, -1, 0, 0, 0, 1],
                "fovy": 50,
            }
        },
        add_geoms=[
            {
                "body": "left_hand",
                "name": "left_palm_pad",
                "size": [0.02, 0.02, 0.005],
                "pos": [0, 0, -0.08],
            }
        ],
        exclude_contacts=[["torso", "*_hand"]],
    )
    raw["arms"]["left"].update(ee_site="left_tip", ee_body="left_hand", ee_offset=[0, 0, -0.2])
    m = robot_mjspec(robot_from_dict(raw, "r.yaml")).compile()
    for side in ("left", "right"):
        a = m.actuator(f"{side}_wrist_pitch")
        assert a.gainprm[0] == 77 and tuple(a.biasprm[:3]) == (0, -77, -3)
    assert m.actuator("left_wrist_roll").gainprm[0] == 150  # untouched group
    assert m.camera("chest_cam").fovy[0] == 50
    assert m.geom("left_palm_pad").bodyid[0] == m.body("left_hand").id
    assert m.site("left_tip").bodyid[0] == m.body("left_hand").id
    np.testing.assert_allclose(m.site("left_tip").pos, [0, 0, -0.2])
    np.testing.assert_allclose(m.body("base").pos, [0.1, 0.0, -0.05])
    pairs = {
        (m.body(b1).name, m.body(b2).name)
        for b1, b2 in zip(m.exclude_signature >> 16, m.exclude_signature & 0xFFFF, strict=True)
    }
    want = {frozenset(("torso", f"{side}_hand")) for side in ("left", "right")}
    assert want <= set(map(frozenset, pairs))


def test_humanoid_unchanged_by_the_new_options():
    """Backwards compatibility: the built-in robot builds exactly as before (no welds)."""
    scene = build_scene("demoforge_humanoid", "stack_blocks")
    assert scene.weld is None
    names = [scene.model.equality(i).name for i in range(scene.model.neq)]
    assert not any(n.startswith("grasp_weld") for n in names)
    assert scene.action_names[-2:] == ["left_gripper", "right_gripper"]
    assert set(scene.gripper_act) == {"left", "right"}


# ---------------------------------------------------------------------------- weld grasp
def _hand_to(scene, target: np.ndarray, steps: int = 250) -> None:
    """Drive the weld hand's carriage so its pad centre goes to ``target`` (world) [m]."""
    mount = scene.model.site("robot_mount").pos
    q = target - (mount + np.array([0.0, 0.0, 1.0]))
    scene.set_action(np.concatenate([q, [scene.current_action()[-1]]]))
    scene.step(steps)


def test_weld_grasp_holds_touching_object_and_releases(weld_hand_scene):
    scene = weld_hand_scene
    scene.reset(np.random.default_rng(0))
    assert scene.action_names == ["hx", "hy", "hz", "right_gripper"]
    assert scene.gripper_opening("right") == 1.0
    a0 = scene.body_pose("block_a")
    top = a0[:3] + np.array([0.0, 0.0, 0.025 + 0.005])  # pad centre resting on the block
    # closing far from any object grasps nothing
    _hand_to(scene, top + [0, 0, 0.05])
    scene.set_action(np.concatenate([scene.current_action()[:3], [0.0]]))
    assert scene.weld.held("right") is None and scene.gripper_opening("right") == 1.0
    scene.set_action(np.concatenate([scene.current_action()[:3], [1.0]]))
    # touch the block's top face, then close: the touching block is welded where it is
    _hand_to(scene, top - [0, 0, 0.001])
    before = scene.body_pose("block_a")
    scene.set_action(np.concatenate([scene.current_action()[:3], [0.0]]))
    assert scene.weld.held("right") == "block_a"
    assert scene.gripper_opening("right") == 0.0 and scene.current_action()[-1] == 0.0
    assert scene.observe()["gripper"]["right"] == 0.0
    scene.step(10)
    assert np.linalg.norm(scene.body_pose("block_a")[:3] - before[:3]) < 0.002  # no jump
    # lift 10 cm: the block comes along
    _hand_to(scene, top + [0, 0, 0.10], steps=500)
    assert scene.body_pose("block_a")[2] > a0[2] + 0.08
    # open: released, the block falls back onto the table
    scene.set_action(np.concatenate([scene.current_action()[:3], [1.0]]))
    assert scene.weld.held("right") is None and scene.gripper_opening("right") == 1.0
    scene.step(500)
    assert abs(scene.body_pose("block_a")[2] - a0[2]) < 0.005
    # reset clears a held object
    _hand_to(scene, scene.body_pose("block_a")[:3] + [0, 0, 0.029])
    scene.set_action(np.concatenate([scene.current_action()[:3], [0.0]]))
    assert scene.weld.held("right") == "block_a"
    scene.reset(np.random.default_rng(1))
    assert scene.weld.held("right") is None and not scene.data.eq_active.any()


def test_weld_grasp_prefers_object_under_the_grasp_centre(weld_hand_scene):
    """Two blocks touch the pad; the one nearest the EE site is held."""
    scene = weld_hand_scene
    scene.reset(np.random.default_rng(0))
    a = scene.body_pose("block_a")
    b = a.copy()
    b[:3] += [0.052, 0.0, 0.0]  # block_b right beside block_a, both under the 6 cm pad
    scene.set_free_pose("block_b", b)
    mujoco.mj_forward(scene.model, scene.data)
    _hand_to(scene, a[:3] + [0.015, 0, 0.029])  # site nearer block_a's centre
    scene.set_action(np.concatenate([scene.current_action()[:3], [0.0]]))
    assert scene.weld.held("right") == "block_a"


def test_weld_gripper_without_collision_geoms_is_rejected(tmp_path):
    xml = WELD_HAND_XML.replace(
        '<geom name="pad" type="box"', '<geom name="pad" type="box" contype="0" conaffinity="0"'
    )
    path = tmp_path / "ghost_hand.xml"
    path.write_text(xml)
    robot = {
        "name": "ghost",
        "mjcf": str(path),
        "home_key": None,
        "arms": {
            "right": {"joints": ["hx", "hy", "hz"], "ee_site": "ee", "gripper": {"weld": True}}
        },
    }
    with pytest.raises(ConfigError, match="hand body 'hand' has no collision geoms"):
        build_scene(copy.deepcopy(robot), "stack_blocks")


# ------------------------------------------------------------------ tool frames, gripper speed
def test_tool_frame_declared_robot_wide_and_per_arm():
    raw = humanoid_raw()
    raw["tool_frame"] = {"approach": [0, 0, 1], "closing": [0, 1, 0]}
    raw["arms"]["left"]["tool_frame"] = {"approach": [1, 0, 0], "closing": [0, 0, 2]}
    spec = robot_from_dict(raw, "<test>")
    assert spec.arms["right"].tool_frame.approach == (0.0, 0.0, 1.0)  # robot-wide default
    assert spec.arms["left"].tool_frame.closing == (0.0, 0.0, 1.0)  # per arm, normalized
    assert spec.tool_frames()["left"].approach == (1.0, 0.0, 0.0)
    assert robot_from_dict(humanoid_raw(), "<test>").arms["left"].tool_frame.is_canonical


@pytest.mark.parametrize(
    ("where", "value", "named"),
    [
        ("robot", {"approach": [0, 0, 1], "closing": [0, 0, 1]}, r"tool_frame: .*perpendicular"),
        ("robot", {"aproach": [0, 0, 1]}, r"unknown key\(s\) \['aproach'\] in tool_frame"),
        ("robot", [0, 0, 1], "tool_frame must be a mapping"),
        ("arm", {"closing": [0, 0]}, r"arms\.right\.tool_frame: .*non-zero 3-vector"),
    ],
)
def test_bad_tool_frame_is_named(where, value, named):
    raw = humanoid_raw()
    if where == "robot":
        raw["tool_frame"] = value
    else:
        raw["arms"]["right"]["tool_frame"] = value
    with pytest.raises(ConfigError, match=named):
        robot_from_dict(raw, "<test>")


def test_gripper_stroke_time_declared_and_checked():
    for name in ("demoforge_humanoid", "unitree_g1", "test_panda"):
        try:
            spec = load_robot(name)
        except ConfigError:
            continue  # G1 MJCF absent here
        for arm in spec.arms.values():
            assert 0.2 <= arm.gripper.stroke_time <= 2.0  # realistic, not one 50 ms frame
            assert arm.gripper.speed == pytest.approx(1.0 / arm.gripper.stroke_time)
    raw = humanoid_raw()
    raw["arms"]["right"]["gripper"]["stroke_time"] = 0
    with pytest.raises(ConfigError, match=r"arms\.right\.gripper: key 'stroke_time' must be > 0"):
        robot_from_dict(raw, "<test>")


def test_robot_home_lives_in_robot_module():
    from sim.model.robot import robot_home

    home = robot_home(load_robot("demoforge_humanoid"))
    m = mujoco.MjModel.from_xml_path(str(HUMANOID_XML))
    k = m.key("home").id
    j = m.joint("right_elbow")
    assert home["right_elbow"] == pytest.approx(m.key_qpos[k, j.qposadr[0]])
    panda = robot_home(load_robot("test_panda"))  # no keyframe: YAML values only
    assert panda == {
        "panda_joint2": 0.6,
        "panda_joint4": 1.9,
        "panda_joint6": 0.64,
        "panda_finger_a": 0.04,
        "panda_finger_b": 0.04,
    }
