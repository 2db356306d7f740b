"""Control and scene basics: IK converges and respects joint limits, two-arm plans time each arm
on its own, nominal model values come back at reset, thumbnails render."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sim.control.plan import Plan, Waypoint, plan_targets
from sim.transforms import quat_angle


def test_ik_converges_to_a_reachable_pose(scene_ik):
    scene, ik = scene_ik()
    scene.reset(np.random.default_rng(0), "D0")
    start = scene.ee_pose("right")
    goal = start.copy()
    goal[:3] += [0.05, -0.04, 0.06]
    ik.reset(scene.joint_qpos())
    for _ in range(60):
        q = ik.solve({"right": goal, "left": scene.ee_pose("left")})
    reached = ik.ee_pose("right")
    assert np.linalg.norm(reached[:3] - goal[:3]) < 2e-3
    assert float(quat_angle(reached[3:], goal[3:])) < np.deg2rad(1.0)
    assert q.shape == (len(scene.joint_names),)


def test_ik_keeps_joint_limits_for_an_unreachable_target(scene_ik):
    scene, ik = scene_ik()
    scene.reset(np.random.default_rng(0), "D0")
    far = scene.ee_pose("right")
    far[:3] += [1.5, -1.5, 1.0]  # far beyond reach
    ik.reset(scene.joint_qpos())
    for _ in range(80):
        q = ik.solve({"right": far})
    lo = scene.model.jnt_range[[scene.model.joint(j).id for j in scene.joint_names], 0]
    hi = scene.model.jnt_range[[scene.model.joint(j).id for j in scene.joint_names], 1]
    assert np.all(q >= lo - 1e-6) and np.all(q <= hi + 1e-6)
    from sim.errors import ReachError

    with pytest.raises(ReachError, match="arm 'right' cannot reach"):
        ik.check_reach("right", far, "the far target")


def test_two_arm_plan_targets_time_each_arm_on_its_own():
    dt = 0.05
    start = {
        a: np.array([0.0, y, 0.0, 1.0, 0.0, 0.0, 0.0]) for a, y in (("left", 0.2), ("right", -0.2))
    }
    left_goal = np.array([0.1, 0.2, 0.0, 1.0, 0, 0, 0])
    right_goal = np.array([0.0, -0.2, 0.2, 1.0, 0, 0, 0])
    plan = Plan(settle=0.2).add("left", Waypoint(left_goal, 1.0, 0.0, "reach", "obj_l"))
    plan.add("right", Waypoint(right_goal, 2.0, 1.0, "lift", "obj_r"))
    t = plan_targets(plan, start, {"left": 1.0, "right": 1.0}, dt)
    assert len(t) == int(np.ceil((2.0 + 0.2) / dt)) + 1
    i1, i2 = int(round(1.0 / dt)), int(round(2.0 / dt))
    np.testing.assert_allclose(t.pose["left"][i1:, :3], np.tile(left_goal[:3], (len(t) - i1, 1)))
    assert not np.allclose(t.pose["right"][i1, :3], right_goal[:3])  # still moving at 1 s
    np.testing.assert_allclose(t.pose["right"][i2, :3], right_goal[:3], atol=1e-9)
    assert t.gripper["left"][i1] == 0.0 and t.gripper["left"][i1 - 1] == 1.0
    assert t.label["left"][1] == "reach" and t.ref["right"][1] == "obj_r"
    assert t.label["left"][-1] == "" and t.ref["left"][-1] == ""


def test_reset_restores_nominal_model_values(scene_ik):
    scene, _ = scene_ik("insert_peg")
    rng = np.random.default_rng(1)
    scene.reset(rng, "D2")
    nominal = {k: v.copy() for k, v in scene._nominal.items()}
    assert nominal, "insert_peg randomizes body poses through remember_nominal"
    for name in nominal:
        getattr(scene.model, name)[:] += 0.123  # what a randomizer would do
    scene.reset(rng, "D0")
    for name, arr in nominal.items():
        # reset writes the nominal values back before the task samples new ones: any array the
        # task leaves alone equals nominal exactly, the rest differ only where the task moved it
        changed = getattr(scene.model, name) != arr
        assert changed.mean() < 0.1, f"{name}: nominal values not restored"


def test_action_ctrl_writes_what_set_action_writes_for_a_whole_sequence(scene_ik):
    """execute() sets the actuators of a whole attempt from one vectorised conversion: each row
    must equal set_action's ctrl for that action bit for bit (openings outside [0, 1] clipped);
    a NaN names its step, a wrong width names the action layout."""
    from sim.errors import ConfigError, PhysicsError

    scene, _ = scene_ik()
    scene.reset(np.random.default_rng(0), "D0")
    rng = np.random.default_rng(3)
    n = len(scene.joint_names)
    actions = np.concatenate(
        [rng.uniform(-1, 1, (30, n)), rng.uniform(-0.5, 1.5, (30, len(scene.gripper_arms)))], 1
    )
    idx, values = scene.action_ctrl(actions)
    assert values.shape == (30, len(idx)) and len(set(idx.tolist())) == len(idx)
    for t in range(30):
        scene.set_action(actions[t])
        assert np.array_equal(scene.data.ctrl[idx], values[t]), f"step {t}"
    bad = actions.copy()
    bad[7, 2] = np.nan
    with pytest.raises(PhysicsError, match="NaN/inf at step 7"):
        scene.action_ctrl(bad)
    with pytest.raises(ConfigError, match=r"shape \(T, 16\)"):
        scene.action_ctrl(actions[:, :-1])


def test_execute_records_the_same_episode_as_stepping_by_hand(scene_ik):
    """The rollout solves IK for the whole attempt, then steps physics recording states and
    frames into arrays; the episode must equal a plain loop over set_action/mj_step reading
    the scene's own accessors at each step."""
    import mujoco

    from sim.control.plan import plan_targets
    from sim.rollout import STATE_SPEC, execute

    scene, ik = scene_ik()
    rng = np.random.default_rng(5)
    scene.reset(rng, "D0")
    start_state = np.empty(mujoco.mj_stateSize(scene.model, STATE_SPEC))
    mujoco.mj_getState(scene.model, scene.data, start_state, STATE_SPEC)
    plan = scene.task.demo(scene, rng)
    start = {arm: scene.ee_pose(arm) for arm in scene.arms}
    grip = {arm: scene.gripper_opening(arm) for arm in scene.gripper_arms}
    targets = plan_targets(plan, start, grip, scene.control_dt)
    ep = execute(scene, ik, targets).episode(scene, _meta())
    mujoco.mj_setState(scene.model, scene.data, start_state, STATE_SPEC)
    mujoco.mj_forward(scene.model, scene.data)
    obs = []
    for t in range(len(ep)):
        o = scene.observe()
        o["subtasks"] = scene.task.subtasks(scene)
        obs.append(o)
        scene.set_action(ep.action[t])
        scene.step()
    assert len(ep) == len(targets) > 50
    np.testing.assert_array_equal(ep.qpos, [o["qpos"] for o in obs])
    np.testing.assert_array_equal(ep.qvel, [o["qvel"] for o in obs])
    for arm in scene.arms:
        np.testing.assert_array_equal(ep.ee[arm], [o["ee"][arm] for o in obs])
    for arm in scene.gripper_arms:
        np.testing.assert_array_equal(ep.gripper[arm], [o["gripper"][arm] for o in obs])
    for name in scene.object_names():
        np.testing.assert_array_equal(ep.objects[name], [o["objects"][name] for o in obs])
    for k, v in ep.subtasks.items():
        assert v.tolist() == [bool(o["subtasks"][k]) for o in obs], k
    assert ep.subtasks["grasped"].any() and ep.subtasks["placed"][-1]
    np.testing.assert_array_equal(ep.state[0], start_state)


def _meta():
    from sim.episode import EpisodeMeta

    return EpisodeMeta(task="stack_blocks", robot="demoforge_humanoid", fps=20.0)


@pytest.mark.slow
def test_thumbnails_command_writes_pngs(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.cli.thumbnails",
            "--out",
            str(tmp_path),
            "--size",
            "48x64",
            "--tasks",
            "stack_blocks",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    import imageio.v3 as iio

    img = iio.imread(tmp_path / "stack_blocks.png")
    assert img.shape == (48, 64, 3) and img.std() > 5
    assert (tmp_path / "room_home.png").exists()


def test_fast_ik_matches_the_mink_qp_along_a_trajectory():
    """The numpy DLS solver minimises mink's objective: same joints along a real two-arm plan."""
    from sim.control.ik import ArmIK
    from sim.rollout import run_scripted
    from sim.tasks import build_scene

    scene = build_scene("demoforge_humanoid", "carry_tray")  # bimanual, joints near limits
    ep = run_scripted(scene, ArmIK.for_scene(scene, solver="mink"), 3, "D0")
    n = len(scene.joint_names)
    fast = ArmIK.for_scene(scene, solver="dls", iters=3)  # mink's default count
    fast.reset(ep.qpos[0])
    err = [
        np.abs(fast.solve({a: ep.target[a][t] for a in scene.arms}) - ep.action[t, :n]).max()
        for t in range(len(ep))
    ]
    assert max(err) < 0.01, f"dls deviates from mink by up to {max(err):.4f} rad"
    with pytest.raises(Exception, match="ik solver 'lbfgs' unknown"):
        ArmIK.for_scene(scene, solver="lbfgs")


def test_ik_model_drops_joints_that_move_no_tool_frame_and_solves_the_same():
    """Fingers leave the IK model (the arm joints become its dofs: no Jacobian column gather);
    the solution equals IK on the whole robot, with the fingers' equality constraints gone."""
    import mujoco

    from sim.control.ik import ArmIK, ik_model
    from sim.model.robot import robot_mjspec
    from sim.model.scene import attach_body, compile_quiet
    from sim.tasks import build_scene

    scene = build_scene("demoforge_humanoid", "stack_blocks")
    scene.reset(np.random.default_rng(0), "D0")
    mount = scene.model.site("robot_mount")
    slim = ik_model(scene.robot, mount.pos, mount.quat)
    names = {slim.joint(j).name for j in range(slim.njnt)}
    assert names == set(scene.joint_names)  # 14 arm joints, no finger_a/finger_b
    world = mujoco.MjSpec()  # the whole robot, as the IK model was built before
    attach_body(
        world.worldbody.add_frame(pos=mount.pos, quat=mount.quat),
        robot_mjspec(scene.robot).worldbody.first_body(),
    )
    full = compile_quiet(world)
    assert full.njnt == len(names) + 4
    home = {n: float(scene.home_qpos[scene.model.joint(n).qposadr[0]]) for n in names}
    iks = [ArmIK(m, scene.robot, scene.joint_names, home, scene.control_dt) for m in (slim, full)]
    assert iks[0]._direct and not iks[1]._direct
    rng = np.random.default_rng(1)
    start = {arm: scene.ee_pose(arm) for arm in scene.arms}
    for ik in iks:
        ik.reset(scene.joint_qpos())
    for _ in range(40):
        goal = {a: p + np.r_[rng.normal(0, 0.02, 3), 0, 0, 0, 0] for a, p in start.items()}
        q_slim, q_full = (ik.solve(goal) for ik in iks)
        np.testing.assert_allclose(q_slim, q_full, atol=1e-12)
    for arm in scene.arms:
        np.testing.assert_allclose(iks[0].ee_pose(arm), iks[1].ee_pose(arm), atol=1e-12)


def test_bounded_step_is_the_box_constrained_least_squares_optimum():
    from scipy.optimize import lsq_linear

    from sim.control.ik import _bounded_step

    rng = np.random.default_rng(0)
    for _ in range(50):
        A = rng.normal(size=(12, 7))
        H = A.T @ A + 1e-3 * np.eye(7)
        g = rng.normal(size=7)
        lo, hi = -rng.uniform(0.01, 0.5, 7), rng.uniform(0.01, 0.5, 7)
        dq = _bounded_step(H, g, lo, hi)
        assert np.all(dq >= lo - 1e-12) and np.all(dq <= hi + 1e-12)
        L = np.linalg.cholesky(H)  # 0.5 x'Hx - g'x = 0.5 |L'x - L^-1 g|^2 + const
        ref = lsq_linear(L.T, np.linalg.solve(L, g), bounds=(lo, hi), tol=1e-12).x
        f, f_ref = 0.5 * dq @ H @ dq - g @ dq, 0.5 * ref @ H @ ref - g @ ref
        assert f <= f_ref + 1e-6 * abs(f_ref) + 1e-9
    free = _bounded_step(np.eye(3), np.array([0.1, -0.2, 0.0]), -np.ones(3), np.ones(3))
    np.testing.assert_allclose(free, [0.1, -0.2, 0.0])
