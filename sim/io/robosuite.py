"""Reader for raw robosuite ``demo.hdf5`` files, as recorded across releases, one or more arms.

Layouts read (attributes on ``data`` or on the root)::

    data/@env                 environment name, e.g. "Lift", "TwoArmHandover", "SawyerLift"
    data/@env_info            JSON (robosuite >= 1.0): robots, controller_configs, control_freq
    data/@env_args            JSON (robomimic's un-extracted downloads): env_name, env_kwargs{..}
    data/@repository_version  robosuite version string ("0.3.0", "1.4.1", ...)
    data/demo_<i>/@model_file MJCF XML (robosuite >= 1.2), or a file name whose XML lies in
                              models/ beside demo.hdf5 (1.0 era; see sim.io.model_file)
    data/demo_<i>/@ep_meta    JSON (robosuite >= 1.5, optional; "lang" = instruction)
    data/demo_<i>/states      (N, 1 + nq + nv) flattened MuJoCo state: time [s], qpos, qvel
    data/demo_<i>/actions     (N, A) controller commands, per arm: arm action + gripper
    -- or, RoboTurk era (robosuite 0.3), instead of actions --
    data/demo_<i>/joint_velocities   (N, n) joint velocity commands [rad/s] (Sawyer)
    data/demo_<i>/gripper_actuations (N, g) gripper commands (-1 open, +1 close)
    data/demo_<i>/right_dpos, right_dquat, left_dpos, left_dquat  teleop device deltas
    -- or states only (Baxter) --

There are no EE or object observations: they are recovered by forward kinematics of ``states``
on the demo's MJCF (:mod:`sim.io.fk`), which works without the mesh/texture files and repairs
attributes this MuJoCo no longer accepts (list-style vectors, removed options), each change
listed in ``provenance["model_changes"]``.

Episode mapping (``provenance["derived"]`` says how each derived field was made):

- arms: one per grip site (:func:`sim.io.fk.default_ee_sites`): ``"main"`` for one arm,
  ``"robot0"``, ``"robot1"`` for two robots, ``"right"``/``"left"`` for a 0.3 Baxter;
  ``arm_joints[arm]`` = the arm's chain + finger joints (:func:`sim.io.fk.arm_chain`);
- ``time`` = ``states[:, 0]`` re-based to 0. A constant column (time not recorded) becomes the
  nominal grid at ``fps`` (noted in provenance); any other non-increasing time is an error;
- ``fps`` = ``fps=``, else ``control_freq`` from the env metadata, else the median state period;
- ``qpos``/``qvel``: the arms' joints and every joint named ``robot<i>_`` / ``gripper<i>_``;
- ``ee[arm]`` / ``objects[name]`` (each free-joint body, without the ``_main`` suffix): FK;
- ``gripper[arm]``: measured opening from the finger joints, each normalized over its joint range
  (0 = closed end, i.e. the end nearer 0), averaged;
- action layout: per arm, in arm order, the controller's arm action (OSC_POSE 6, OSC_POSITION 3,
  IK_POSE 6, JOINT_* one per arm joint) then one gripper column, from each robot's controller in
  the env metadata; ``gripper_cmd[arm]`` = ``(1 - a_gripper) / 2`` clipped to [0, 1] (robosuite:
  -1 open, +1 close; the gripper controller clips the same way);
- ``target[arm]``: absolute EE goals of OSC_POSE / OSC_POSITION arm actions, with the
  controller's scaling from the env metadata (:mod:`sim.io.deltas`);
- ``action`` = the commands as recorded (controller space; layout in provenance).

Checks: raw quaternions of free/ball joints in ``states`` must be unit-norm (row and joint
named); every other plausibility check runs in :func:`sim.io.read_episodes`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import mujoco
import numpy as np

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError, SimError
from sim.io.fk import (
    arm_chain,
    default_ee_sites,
    default_objects,
    frame_poses,
    joint_limits,
    load_kinematic_model,
    quat_columns,
)
from sim.io.hdf5 import attr_str, demo_names, hdf5_errors, open_hdf5, read_dataset
from sim.io.model_file import resolve_model_xml
from sim.io.robosuite_actions import (
    DEVICE_DATASETS,
    arm_controller,
    env_metadata,
    legacy_commands,
    robot_side,
    split_actions,
)
from sim.io.sanity import SanityError

log = logging.getLogger(__name__)

_DEMO = re.compile(r"^demo_?(\d+)$")  # robosuite: demo_1, demo_2, ... (older: demo1)
_HINGE_SLIDE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
_VELOCITY_DATASETS = ("joint_velocities", "gripper_actuations")


# ----------------------------------------------------------------------------- reader


def read_robosuite(
    path: str | Path,
    ee_sites: dict[str, str] | None = None,
    objects: dict[str, str] | None = None,
    fps: float | None = None,
    demos: Sequence[int] | None = None,
    joint_prefixes: Sequence[str] = ("robot", "gripper"),
    model_dir: str | Path | None = None,
    quat_tol: float = 1e-3,
    on_error: Callable[[str, SimError], None] | None = None,
) -> list[Episode]:
    """Read a robosuite ``demo.hdf5`` and recover EE/object trajectories by forward kinematics.

    Args:
        path: the HDF5 file.
        ee_sites: arm -> site (or body) name of the end effector; default robosuite grip sites.
        objects: object name -> body name; default every free-joint body.
        fps: sampling rate [Hz]; default ``control_freq`` or the state period.
        demos: demo indices (the ``<i>`` of ``demo_<i>``) to read; default all, sorted.
        joint_prefixes: joint-name prefixes (followed by a robot index) included in ``qpos``.
        model_dir: extra folder where ``model_file`` names are looked up first.
        quat_tol: allowed |norm - 1| of free/ball-joint quaternions in ``states``.
        on_error: called with (source, error) for a demo that fails, which is then skipped;
            default: raise.

    Raises:
        FormatError: unreadable file, missing/mismatched datasets, model file not found or XML
            that does not compile.
        SanityError: a non-unit joint quaternion in ``states`` (row and joint named).
    """
    path = Path(path)
    with open_hdf5(path) as f, hdf5_errors(path):
        if "data" not in f:
            raise FormatError(f"{path}: missing group 'data'; expected robosuite demo.hdf5 layout")
        data = f["data"]
        attrs = {**dict(f.attrs), **dict(data.attrs)}
        meta = env_metadata(path, attrs)
        names = demo_names(path, data, _DEMO)
        if demos is not None:
            wanted = {int(d) for d in demos}
            names = [n for n in names if int(_DEMO.match(n).group(1)) in wanted]
        models: dict[str, tuple[mujoco.MjModel, list[str], str]] = {}
        episodes = []
        for name in names:
            try:
                ep = _read_demo(
                    path,
                    name,
                    data[name],
                    models,
                    meta,
                    attrs,
                    ee_sites,
                    objects,
                    fps,
                    joint_prefixes,
                    model_dir,
                    quat_tol,
                )
            except SimError as e:
                if on_error is None:
                    raise
                on_error(f"{path}#{name}", e)
            else:
                episodes.append(ep)
    return episodes


def _model(
    path: Path,
    name: str,
    grp: h5py.Group,
    models: dict[str, tuple[mujoco.MjModel, list[str], str]],
    model_dir: str | Path | None,
) -> tuple[mujoco.MjModel, list[str], str]:
    key = f"data/{name}/@model_file"
    if "model_file" not in grp.attrs:
        raise FormatError(
            f"{path}: missing attribute '{key}'; expected the MJCF XML (or its file name) "
            "needed for forward kinematics"
        )
    value = attr_str(grp.attrs["model_file"])
    if value not in models:
        xml, origin = resolve_model_xml(path, key, value, model_dir)
        report: list[str] = []
        try:
            m = load_kinematic_model(xml, report=report)
        except FormatError as e:
            raise FormatError(f"{path}: {key} ({origin}): {e}") from e
        models[value] = (m, report, origin)
    return models[value]


def _commands(
    path: Path, name: str, grp: h5py.Group, T: int
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """``actions`` (T, A), or the 0.3-era command datasets present (name -> (T, k))."""
    rows_from = f"= rows of 'data/{name}/states'"
    if "actions" in grp:
        return read_dataset(path, grp, "actions", ndim=2, rows=T, rows_from=rows_from), {}
    found = {}
    for key in (*_VELOCITY_DATASETS, *DEVICE_DATASETS):
        if key in grp:
            arr = read_dataset(path, grp, key, ndim=(1, 2), rows=T, rows_from=rows_from)
            found[key] = arr.reshape(T, -1).astype(np.float64)
    return None, found


def _check_joint_quats(path: Path, name: str, model: mujoco.MjModel, qpos: np.ndarray, tol: float):
    for joint, adr in quat_columns(model).items():
        norms = np.linalg.norm(qpos[:, adr : adr + 4], axis=1)
        bad = ~(np.abs(norms - 1.0) <= tol)
        if bad.any():
            row = int(np.argmax(bad))
            raise SanityError(
                str(path),
                name,
                row,
                f"'data/{name}/states' quaternion of joint {joint!r} (columns "
                f"{1 + adr}..{4 + adr})",
                "unit_quat",
                f"norm {norms[row]:.6g}; expected a unit quaternion (w,x,y,z) +- {tol:g}",
            )


def _read_demo(
    path: Path,
    name: str,
    grp: h5py.Group,
    models: dict,
    meta: dict[str, Any],
    attrs: dict,
    ee_sites: dict[str, str] | None,
    objects: dict[str, str] | None,
    fps: float | None,
    joint_prefixes: Sequence[str],
    model_dir: str | Path | None,
    quat_tol: float,
) -> Episode:
    model, report, origin = _model(path, name, grp, models, model_dir)
    states = read_dataset(path, grp, "states", ndim=2)
    nq, nv, na = model.nq, model.nv, model.na
    if states.shape[1] not in (1 + nq + nv, 1 + nq + nv + na):
        raise FormatError(
            f"{path}: 'data/{name}/states' has width {states.shape[1]}; expected "
            f"1 + nq + nv = {1 + nq + nv} (time, qpos, qvel) for its model_file"
        )
    if len(states) < 1:
        raise FormatError(f"{path}: 'data/{name}/states' has no rows; expected >= 1")
    T = len(states)
    actions, legacy = _commands(path, name, grp, T)
    qpos_full = states[:, 1 : 1 + nq].astype(np.float64)
    qvel_full = states[:, 1 + nq : 1 + nq + nv].astype(np.float64)
    _check_joint_quats(path, name, model, qpos_full, quat_tol)

    ee_map = default_ee_sites(model) if ee_sites is None else dict(ee_sites)
    obj_map = default_objects(model) if objects is None else dict(objects)
    frames = {
        **{f"ee/{k}": v for k, v in ee_map.items()},
        **{f"obj/{k}": v for k, v in obj_map.items()},
    }
    chains = {arm: arm_chain(model, site) for arm, site in ee_map.items()}
    arm_sides = {arm: robot_side(arm, i) for i, arm in enumerate(ee_map)}
    bases = {}
    for arm, (robot, _) in arm_sides.items():
        b = f"robot{robot}_base"
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) >= 0:
            bases[arm] = b
            frames[f"base/{arm}"] = b
    poses = frame_poses(model, qpos_full, frames)

    time, rate, time_note = _time(states[:, 0], fps, meta["control_freq"])
    if len(time) > 1 and np.any(np.diff(time) <= 0):
        row = int(np.argmax(np.diff(time) <= 0)) + 1
        raise SanityError(
            str(path),
            name,
            row,
            "'time'",
            "monotonic",
            f"{float(states[row, 0])!r} [s] after {float(states[row - 1, 0])!r} in "
            f"'data/{name}/states[:, 0]'; expected strictly increasing time (or a constant "
            "column when time was not recorded)",
        )
    joints = _qpos_joints(model, joint_prefixes, chains)
    jnames = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joints]
    qadr = [int(model.jnt_qposadr[j]) for j in joints]
    vadr = [int(model.jnt_dofadr[j]) for j in joints]
    jname = {j: mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(model.njnt)}
    arm_joints = {arm: [jname[j] for j in a + g] for arm, (a, g) in chains.items()}

    derived: dict[str, str] = {
        "ee": "forward kinematics of 'states' on model_file (grip sites)",
        "objects": "forward kinematics of 'states' on model_file (free-joint bodies)",
    }
    gripper = {}
    for arm, (_, fingers) in chains.items():
        g = _measured_opening(model, qpos_full, fingers)
        if g is not None:
            gripper[arm] = g
    if gripper:
        derived["gripper"] = (
            "measured: finger joints normalized over their joint ranges (0 = the end nearer 0), "
            "averaged per arm"
        )
    ee = {k: poses[f"ee/{k}"] for k in ee_map}
    if actions is not None:
        action, action_names, gripper_cmd, target, layout = split_actions(
            path, name, actions, ee, chains, arm_sides, meta, poses, bases
        )
        action_space = "robosuite controller commands, per arm (see action_layout)"
    else:
        action, action_names, gripper_cmd, layout = legacy_commands(legacy, chains, jname)
        target = {}
        action_space = (
            "0.3-era commands: " + ", ".join(sorted(legacy)) if legacy else "none (states only)"
        )
    if gripper_cmd:
        derived["gripper_cmd"] = "(1 - gripper action) / 2 clipped to [0, 1] (-1 open, +1 close)"
    if target:
        derived["target"] = "absolute EE goals from OSC delta actions (sim.io.deltas)"
    instruction = ""
    if (ep_meta := grp.attrs.get("ep_meta")) is not None:
        try:
            instruction = str(json.loads(attr_str(ep_meta)).get("lang", ""))
        except (json.JSONDecodeError, AttributeError):
            instruction = ""
    controllers = {
        arm: str(arm_controller(meta["controllers"], *arm_sides[arm]).get("type", ""))
        for arm in ee_map
    }
    prov: dict[str, Any] = {
        "format": "robosuite",
        "file": str(path),
        "demo": name,
        "repository_version": meta["version"],
        "controller": next(iter(controllers.values()), "")
        if len(controllers) == 1
        else controllers,
        "action_space": action_space,
        "action_layout": layout,
        "model_file": origin,
        "model_changes": report,
        "ee_sites": ee_map,
        "object_bodies": obj_map,
        "derived": derived,
        "joint_limits": joint_limits(model, joints),
    }
    if time_note:
        prov["time"] = time_note
    robots = meta["robots"]
    emeta = EpisodeMeta(
        task=meta["env"],
        robot="+".join(robots) if robots else "unknown",
        fps=rate,
        source=f"{path}#{name}",
        instruction=instruction,
        provenance=prov,
    )
    return Episode(
        meta=emeta,
        time=time,
        joint_names=jnames,
        qpos=qpos_full[:, qadr],
        qvel=qvel_full[:, vadr],
        action_names=action_names,
        action=action,
        ee=ee,
        gripper=gripper,
        objects={k: poses[f"obj/{k}"] for k in obj_map},
        target=target,
        gripper_cmd=gripper_cmd,
        arm_joints=arm_joints,
    ).validate()


def _time(col: np.ndarray, fps: float | None, control_freq: float | None) -> tuple:
    """(time (T,) [s], rate [Hz], provenance note or "")."""
    t = np.asarray(col, dtype=np.float64) - float(col[0])
    steps = np.diff(t)
    constant = len(t) > 1 and np.all(steps == 0)
    rate = fps or control_freq
    if not rate and len(steps) and np.all(steps > 0):
        rate = 1.0 / float(np.median(steps))
    note = ""
    if not rate:
        rate = 20.0
        note = "rate: no control_freq and no usable time; assumed 20 Hz"
    if constant:
        t = np.arange(len(t)) / float(rate)
        note = (note + "; " if note else "") + (
            f"time: not recorded (constant 'states[:, 0]'); nominal grid at {float(rate):g} Hz"
        )
        log.info("%s", note)
    return t, float(rate), note


def _qpos_joints(
    model: mujoco.MjModel, prefixes: Sequence[str], chains: dict[str, tuple[list, list]]
) -> list[int]:
    pat = re.compile(rf"^(?:{'|'.join(map(re.escape, prefixes))})\d+_") if prefixes else None
    wanted = {j for a, g in chains.values() for j in a + g}
    out = []
    for j in range(model.njnt):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or ""
        if int(model.jnt_type[j]) not in _HINGE_SLIDE:
            continue
        if j in wanted or (pat is not None and pat.match(name)):
            out.append(j)
    return out


def _measured_opening(
    model: mujoco.MjModel, qpos: np.ndarray, fingers: list[int]
) -> np.ndarray | None:
    cols = []
    for j in fingers:
        if not bool(model.jnt_limited[j]):
            continue
        lo, hi = (float(x) for x in model.jnt_range[j])
        if hi <= lo:
            continue
        q = qpos[:, int(model.jnt_qposadr[j])]
        # the closed end is the one nearer 0 (Panda: [0, 0.04] and [-0.04, 0])
        cols.append((q - lo) / (hi - lo) if abs(lo) <= abs(hi) else (hi - q) / (hi - lo))
    if not cols:
        return None
    return np.clip(np.mean(cols, axis=0), 0.0, 1.0)
