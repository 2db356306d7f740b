"""Recorded demos in the layouts users bring (robosuite 0.3 / 1.0 / 1.4, one and two arms).

Small 6-DoF arms with a two-finger gripper, written as MJCF here; a small OSC-like controller
(damped least squares onto position servos) that records robosuite-style ``states`` and
controller actions; writers for each ``demo.hdf5`` layout. Reference EE/object poses come from
the original (clean) model at each recorded state, independent of the reader's FK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

DT = 0.002
NC = 'contype="0" conaffinity="0"'  # arm geoms do not collide (kinematic-ish test arm)
LINK = 'damping="5" armature="0.1"'
FINGER = 'damping="1" armature="0.01"'
SUBSTEPS = 25  # 20 Hz control


@dataclass(frozen=True)
class ArmNames:
    """Element names of one arm (robosuite 1.x ``robot0_``/``gripper0_`` or 0.3 Sawyer/Baxter)."""

    base: str
    joints: tuple[str, ...]
    fingers: tuple[str, str]
    site: str
    bodies: str  # prefix for body names

    @staticmethod
    def robosuite(i: int) -> ArmNames:
        return ArmNames(
            base=f"robot{i}_base",
            joints=tuple(f"robot{i}_joint{k}" for k in range(1, 7)),
            fingers=(f"gripper{i}_finger_joint1", f"gripper{i}_finger_joint2"),
            site=f"gripper{i}_grip_site",
            bodies=f"robot{i}_",
        )

    @staticmethod
    def legacy(side: str) -> ArmNames:
        s = side[0]
        return ArmNames(
            base=f"{side}_arm_base_link",
            joints=tuple(f"{side}_j{k}" for k in range(6)),
            fingers=(f"{s}_gripper_l_finger_joint", f"{s}_gripper_r_finger_joint"),
            site="grip_site" if side == "right" else "l_g_grip_site",
            bodies=f"{side}_",
        )


def arm_xml(n: ArmNames, pos: str, quat: str = "1 0 0 0", list_style: bool = False) -> str:
    """A 6-DoF arm with a two-finger gripper; ``list_style`` writes some vectors as lists."""
    p = "[0, 0, 0.12]" if list_style else "0 0 0.12"
    axes = ["0 0 1", "0 1 0", "0 1 0", "1 0 0", "0 1 0", "1 0 0"]
    offs = [p, "0 0 0.1", "0.25 0 0", "0.22 0 0", "0.06 0 0", "0.05 0 0"]
    rng = ["-2.9 2.9", "-1.8 1.8", "-2.6 2.6", "-2.9 2.9", "-2 2", "-2.9 2.9"]
    body = (
        f'<body name="{n.bodies}link6" pos="0.04 0 0">'
        f'<site name="{n.site}" pos="0.06 0 0" quat="0.7071 0 0.7071 0"/>'
        f'<body name="{n.bodies}lfinger" pos="0.05 0.01 0" gravcomp="1">'
        f'<joint name="{n.fingers[0]}" type="slide" axis="0 1 0" range="0 0.04" {FINGER}/>'
        f'<geom type="box" size="0.01 0.005 0.02" mass="0.02" {NC}/></body>'
        f'<body name="{n.bodies}rfinger" pos="0.05 -0.01 0" gravcomp="1">'
        f'<joint name="{n.fingers[1]}" type="slide" axis="0 1 0" range="-0.04 0" {FINGER}/>'
        f'<geom type="box" size="0.01 0.005 0.02" mass="0.02" {NC}/></body></body>'
    )
    for k in range(5, -1, -1):
        body = (
            f'<body name="{n.bodies}link{k}" pos="{offs[k]}" gravcomp="1">'
            f'<joint name="{n.joints[k]}" axis="{axes[k]}" range="{rng[k]}" {LINK}/>'
            f'<geom type="capsule" fromto="0 0 0 0.05 0 0" size="0.02" mass="0.5" {NC}/>'
            f"{body}</body>"
        )
    geom_pos = "[0, 0, 0.005]" if list_style else "0 0 0.005"
    return (
        f'<body name="{n.base}" pos="{pos}" quat="{quat}" gravcomp="1">'
        f'<geom type="cylinder" size="0.06 0.005" pos="{geom_pos}" {NC}/>'
        f"{body}</body>"
    )


def scene_xml(arms: list[tuple[ArmNames, str, str]], list_style: bool = False) -> str:
    """MJCF of the arms (names, base pos, base quat) + a free cube, servos on every joint."""
    bodies = "".join(arm_xml(n, pos, quat, list_style) for n, pos, quat in arms)
    acts = []
    for n, _, _ in arms:
        acts += [
            f'<position name="{j}_servo" joint="{j}" kp="400" ctrlrange="-3 3"/>' for j in n.joints
        ]
        acts += [f'<position joint="{f}" kp="200" ctrlrange="-0.05 0.05"/>' for f in n.fingers]
    return (
        '<mujoco model="wild"><compiler angle="radian"/>'
        '<option timestep="0.002" gravity="0 0 -9.81"/>'
        '<worldbody><geom name="floor" type="plane" size="2 2 0.1"/>'
        f"{bodies}"
        '<body name="cube_main" pos="0.45 0.05 0.2"><freejoint name="cube_joint0"/>'
        '<geom type="box" size="0.02 0.02 0.02" mass="0.05"/></body>'
        f"</worldbody><actuator>{''.join(acts)}</actuator></mujoco>"
    )


@dataclass
class Recording:
    """One recorded demo: robosuite ``states``/``actions`` + references from the clean model."""

    states: np.ndarray
    actions: np.ndarray
    ee: dict[str, np.ndarray] = field(default_factory=dict)  # site name -> (T, 7)
    cube: np.ndarray | None = None
    joint_vel: np.ndarray | None = None
    grip: np.ndarray | None = None  # (T, n_arms) gripper actions (-1 open, +1 close)


def site_pose(model: mujoco.MjModel, data: mujoco.MjData, site: str) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, data.site(site).xmat)
    return np.concatenate([data.site(site).xpos, q])


class OscLike:
    """robosuite-style OSC on position servos: goal pose -> damped-least-squares joint targets.

    ``scale(a)`` follows robosuite's affine input->output scaling; ``delta`` goals are relative
    to the EE pose measured at the step, rotations applied in the world frame on the left.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        arm: ArmNames,
        out_pos: float,
        out_rot: float,
        base_frame: bool = False,
    ):
        self.m, self.arm = model, arm
        q = model.body(arm.base).quat if base_frame else np.array([1.0, 0, 0, 0])
        self.r_ref = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()
        self.out = np.array([out_pos] * 3 + [out_rot] * 3)
        self.qadr = [int(model.joint(j).qposadr[0]) for j in arm.joints]
        self.dadr = [int(model.joint(j).dofadr[0]) for j in arm.joints]
        self.act = [model.actuator(f"{j}_servo").id for j in arm.joints]
        self.fing = [
            next(a for a in range(model.nu) if model.actuator_trnid[a, 0] == model.joint(f).id)
            for f in arm.fingers
        ]

    def goal_from_delta(self, data: mujoco.MjData, a: np.ndarray) -> np.ndarray:
        ee = site_pose(self.m, data, self.arm.site)
        d = np.clip(a[:6], -1, 1) * self.out
        d = np.concatenate([self.r_ref @ d[:3], self.r_ref @ d[3:]])  # input frame -> world
        rot = Rotation.from_rotvec(d[3:]) * Rotation.from_quat(np.r_[ee[4:], ee[3]])
        q = rot.as_quat()
        return np.concatenate([ee[:3] + d[:3], [q[3], *q[:3]]])

    def command(self, data: mujoco.MjData, goal: np.ndarray, grip: float) -> None:
        ee = site_pose(self.m, data, self.arm.site)
        jacp, jacr = np.zeros((3, self.m.nv)), np.zeros((3, self.m.nv))
        mujoco.mj_jacSite(self.m, data, jacp, jacr, self.m.site(self.arm.site).id)
        J = np.vstack([jacp, jacr])[:, self.dadr]
        r_goal = Rotation.from_quat(np.r_[goal[4:], goal[3]])
        r_ee = Rotation.from_quat(np.r_[ee[4:], ee[3]])
        err = np.concatenate([goal[:3] - ee[:3], (r_goal * r_ee.inv()).as_rotvec()])
        dq = J.T @ np.linalg.solve(J @ J.T + 1e-2 * np.eye(6), err)
        dq *= min(1.0, 0.2 / max(float(np.abs(dq).max()), 1e-12))
        data.ctrl[self.act] = data.qpos[self.qadr] + dq
        opening = 0.04 * (1.0 - np.clip(grip, -1, 1)) / 2.0
        data.ctrl[self.fing] = [opening, -opening]


def smooth_actions(rng: np.random.Generator, T: int, k: int, amp: float = 0.6) -> np.ndarray:
    t = np.arange(T)[:, None] / 20.0
    f = rng.uniform(0.8, 1.6, k)
    ph = rng.uniform(0, 2 * np.pi, k)
    return amp * np.sin(2 * np.pi * f * t + ph)


def grip_schedule(T: int, shift: int = 0) -> np.ndarray:
    """-1 (open) then +1 (close) then -1 again."""
    g = -np.ones(T)
    g[T // 3 + shift : 2 * T // 3 + shift] = 1.0
    return g


def record(
    xml: str,
    arms: list[ArmNames],
    T: int,
    seed: int,
    out_pos: float = 0.03,
    out_rot: float = 0.1,
    base_frame: bool = False,
) -> Recording:
    """Run OSC_POSE delta actions on every arm; states recorded before each action (robosuite)."""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    ctrls = [OscLike(model, a, out_pos, out_rot, base_frame) for a in arms]
    for c in ctrls:
        data.qpos[c.qadr] = [0.0, -0.8, 1.8, 0.0, 0.5, 0.0]
        data.ctrl[c.act] = data.qpos[c.qadr]
    mujoco.mj_forward(model, data)
    arm_actions = [smooth_actions(rng, T, 6) for _ in arms]
    grips = [grip_schedule(T, shift=3 * i) for i in range(len(arms))]
    states, actions, jv = [], [], []
    ee = {a.site: [] for a in arms}
    cube = []
    for t in range(T):
        mujoco.mj_forward(model, data)
        states.append(np.concatenate([[data.time], data.qpos, data.qvel]))
        for a in arms:
            ee[a.site].append(site_pose(model, data, a.site))
        cube.append(np.concatenate([data.body("cube_main").xpos, data.body("cube_main").xquat]))
        row = []
        for c, aa, g in zip(ctrls, arm_actions, grips, strict=True):
            c.command(data, c.goal_from_delta(data, aa[t]), g[t])
            row += [*aa[t], g[t]]
        actions.append(row)
        jv.append(np.concatenate([data.qvel[c.dadr] for c in ctrls]))
        for _ in range(SUBSTEPS):
            mujoco.mj_step(model, data)
    return Recording(
        states=np.array(states),
        actions=np.array(actions),
        ee={k: np.array(v) for k, v in ee.items()},
        cube=np.array(cube),
        joint_vel=np.array(jv),
        grip=np.stack(grips, 1),
    )


def replay_absolute(
    xml: str, arms: list[ArmNames], state0: np.ndarray, targets: list[np.ndarray], grips: np.ndarray
) -> dict[str, np.ndarray]:
    """Drive the arms to absolute EE goals with the same controller; EE pose before each step."""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    data.time = state0[0]
    data.qpos[:] = state0[1 : 1 + model.nq]
    data.qvel[:] = state0[1 + model.nq : 1 + model.nq + model.nv]
    ctrls = [OscLike(model, a, 0.0, 0.0) for a in arms]
    for c in ctrls:
        data.ctrl[c.act] = data.qpos[c.qadr]
    out = {a.site: [] for a in arms}
    for t in range(len(targets[0])):
        mujoco.mj_forward(model, data)
        for i, c in enumerate(ctrls):
            out[c.arm.site].append(site_pose(model, data, c.arm.site))
            c.command(data, targets[i][t], grips[t, i])
        for _ in range(SUBSTEPS):
            mujoco.mj_step(model, data)
    return {k: np.array(v) for k, v in out.items()}


def write_demo(
    path: Path,
    recs: list[Recording],
    model_file: str,
    attrs: dict,
    layout: str = "actions",
) -> Path:
    """Write ``data/demo_<i>`` groups in one of the layouts.

    ``layout``: "actions" (robosuite >= 1.0), "velocity" (0.3 Sawyer: joint_velocities +
    gripper_actuations + right_dpos/right_dquat), "states" (0.3 Baxter: states only).
    """
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for k, v in attrs.items():
            data.attrs[k] = json.dumps(v) if isinstance(v, dict) else v
        for i, r in enumerate(recs, start=1):
            g = data.create_group(f"demo_{i}")
            g.attrs["model_file"] = model_file
            g.create_dataset("states", data=r.states)
            if layout == "actions":
                g.create_dataset("actions", data=r.actions)
            elif layout == "velocity":
                g.create_dataset("joint_velocities", data=r.joint_vel)
                g.create_dataset("gripper_actuations", data=r.grip)
                g.create_dataset("right_dpos", data=r.actions[:, :3] * 0.05)
                g.create_dataset("right_dquat", data=np.tile([1.0, 0, 0, 0], (len(r.states), 1)))
    return path


def env_info(robots: list[str], controller: dict, freq: int = 20) -> dict:
    return {
        "env_name": "Wild",
        "robots": robots,
        "controller_configs": controller,
        "control_freq": freq,
    }
