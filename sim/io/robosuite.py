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
from sim.io.deltas import CONTROL_DIMS, OSC_TYPES, osc_scaling, osc_targets
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
from sim.io.sanity import SanityError

log = logging.getLogger(__name__)

_DEMO = re.compile(r"^demo_?(\d+)$")  # robosuite: demo_1, demo_2, ... (older: demo1)
_HINGE_SLIDE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
_ARM_NAMES = {
    "OSC_POSE": ["dx", "dy", "dz", "dax", "day", "daz"],
    "OSC_POSITION": ["dx", "dy", "dz"],
    "IK_POSE": ["dx", "dy", "dz", "dax", "day", "daz"],
}
_ARM_INDEX = re.compile(r"^robot(\d+)(?:_(left|right))?$")
_VELOCITY_DATASETS = ("joint_velocities", "gripper_actuations")
_DEVICE_DATASETS = ("right_dpos", "right_dquat", "left_dpos", "left_dquat")


# ----------------------------------------------------------------------------- env metadata


def _json_attr(path: Path, attrs: dict, key: str) -> dict:
    if key not in attrs:
        return {}
    try:
        value = json.loads(attr_str(attrs[key]) or "{}")
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: attribute 'data/@{key}' is not JSON ({e})") from e
    if not isinstance(value, dict):
        raise FormatError(
            f"{path}: attribute 'data/@{key}' is {type(value).__name__}; expected {{}}"
        )
    return value


def env_metadata(path: Path, attrs: dict) -> dict[str, Any]:
    """Env name, robots, per-robot controller configs and control rate from the file's metadata.

    Reads ``@env_info`` (robosuite) and ``@env_args`` (robomimic: ``env_kwargs``), ``@env``.

    Returns:
        {"env": str, "robots": [str], "controllers": [dict per robot], "control_freq": float |
        None, "version": str}
    """
    info = _json_attr(path, attrs, "env_info")
    args = _json_attr(path, attrs, "env_args")
    kwargs = args.get("env_kwargs", {}) if isinstance(args.get("env_kwargs"), dict) else {}
    merged = {**kwargs, **info}
    env = attr_str(attrs.get("env", merged.get("env_name", args.get("env_name", "unknown"))))
    robots = merged.get("robots", [])
    robots = [str(r) for r in robots] if isinstance(robots, list) else [str(robots)]
    ctrl = merged.get("controller_configs", {})
    if isinstance(ctrl, list):
        controllers = [c if isinstance(c, dict) else {} for c in ctrl]
    else:
        controllers = [ctrl if isinstance(ctrl, dict) else {}] * max(len(robots), 1)
    freq = merged.get("control_freq")
    return {
        "env": env,
        "robots": robots,
        "controllers": controllers,
        "control_freq": float(freq) if freq else None,
        "version": attr_str(attrs.get("repository_version", "")),
    }


def _arm_controller(controllers: list[dict], robot: int, side: str) -> dict:
    """One arm's controller config; robosuite 1.5 composite configs hold ``body_parts``."""
    if not controllers:
        return {}
    cfg = controllers[min(robot, len(controllers) - 1)]
    parts = cfg.get("body_parts")
    if isinstance(parts, dict):
        part = parts.get(side) or parts.get("right") or next(iter(parts.values()), {})
        return part if isinstance(part, dict) else {}
    return cfg


def _robot_side(arm: str, order: int) -> tuple[int, str]:
    if m := _ARM_INDEX.match(arm):
        return int(m.group(1)), m.group(2) or "right"
    if arm in ("left", "right"):
        return 0, arm
    return (0 if arm == "main" else order), "right"


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
    for key in (*_VELOCITY_DATASETS, *_DEVICE_DATASETS):
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
    arm_sides = {arm: _robot_side(arm, i) for i, arm in enumerate(ee_map)}
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
        action, action_names, gripper_cmd, target, layout = _split_actions(
            path, name, actions, ee, chains, arm_sides, meta, poses, bases
        )
        action_space = "robosuite controller commands, per arm (see action_layout)"
    else:
        action, action_names, gripper_cmd, layout = _legacy_commands(legacy, chains, jname)
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
        arm: str(_arm_controller(meta["controllers"], *arm_sides[arm]).get("type", ""))
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


def _split_actions(
    path: Path,
    name: str,
    actions: np.ndarray,
    ee: dict[str, np.ndarray],
    chains: dict[str, tuple[list, list]],
    arm_sides: dict[str, tuple[int, str]],
    meta: dict[str, Any],
    poses: dict[str, np.ndarray],
    bases: dict[str, str],
) -> tuple:
    """Per-arm action columns -> names, gripper commands, OSC targets and the layout."""
    A = actions.shape[1]
    arms = list(ee)
    chunks: dict[str, tuple[int, int, str]] = {}  # arm -> (arm dims, gripper dims, controller)
    for arm in arms:
        cfg = _arm_controller(meta["controllers"], *arm_sides[arm])
        ctype = str(cfg.get("type", ""))
        dim = CONTROL_DIMS.get(ctype, -1)
        if dim is None:
            dim = len(chains[arm][0])
        chunks[arm] = (dim, 1 if chains[arm][1] else 0, ctype)
    total = sum(d + g for d, g, _ in chunks.values())
    if any(d < 0 for d, _, _ in chunks.values()) or total != A:
        if arms and A % len(arms) == 0 and A // len(arms) >= 1:
            per = A // len(arms)
            chunks = {
                arm: (per - 1, 1, chunks[arm][2] if chunks[arm][0] == per - 1 else "")
                for arm in arms
            }
        else:
            chunks = {}
    actions = actions.astype(np.float64)
    names, gripper_cmd, target, layout = [], {}, {}, {}
    start = 0
    single = len(arms) == 1
    if not chunks:
        names = [f"a{i}" for i in range(A)]
        layout = {
            "columns": f"{A} columns; per-arm split unknown (controllers {meta['controllers']})"
        }
        return actions, names, gripper_cmd, target, layout
    for arm, (dim, gdim, ctype) in chunks.items():
        base = _ARM_NAMES.get(ctype, [f"a{i}" for i in range(start, start + dim)])
        arm_names = base if len(base) == dim else [f"a{i}" for i in range(start, start + dim)]
        arm_names = arm_names + ["gripper"] * gdim
        names += arm_names if single else [f"{arm}_{n}" for n in arm_names]
        layout[arm] = {"arm": [start, start + dim], "controller": ctype or "(unknown)"}
        if gdim:
            g = actions[:, start + dim]
            gripper_cmd[arm] = np.clip((1.0 - g) / 2.0, 0.0, 1.0)
            layout[arm]["gripper"] = start + dim
        if ctype in OSC_TYPES:
            where = f"{path}: controller of arm {arm!r}"
            scaling = osc_scaling(_arm_controller(meta["controllers"], *arm_sides[arm]), where)
            ref = poses.get(f"base/{arm}") if arm in bases else None
            target[arm] = osc_targets(scaling, actions[:, start : start + dim], ee[arm], ref)
            layout[arm]["scaling"] = {
                "input": [scaling.input_min.tolist(), scaling.input_max.tolist()],
                "output": [scaling.output_min.tolist(), scaling.output_max.tolist()],
                "delta": scaling.delta,
                "ref_frame": scaling.ref_frame,
            }
        start += dim + gdim
    return actions, names, gripper_cmd, target, layout


def _legacy_commands(
    legacy: dict[str, np.ndarray], chains: dict[str, tuple[list, list]], jname: dict[int, str]
) -> tuple:
    """0.3-era joint velocities + gripper actuations (+ device deltas) as the action."""
    if not legacy:
        return None, [], {}, {"columns": "none (states only)"}
    cols, names, gripper_cmd, layout = [], [], {}, {}
    arms = list(chains)
    arm_joint_names = [jname[j] for a, _ in chains.values() for j in a]
    if "joint_velocities" in legacy:
        jv = legacy["joint_velocities"]
        cols.append(jv)
        if jv.shape[1] == len(arm_joint_names):
            names += [f"{j}_vel" for j in arm_joint_names]
        else:
            names += [f"joint_vel{i}" for i in range(jv.shape[1])]
        layout["joint_velocities"] = [0, jv.shape[1]]
    if "gripper_actuations" in legacy:
        ga = legacy["gripper_actuations"]
        start = sum(c.shape[1] for c in cols)
        cols.append(ga)
        owners = arms if ga.shape[1] == len(arms) else [f"g{i}" for i in range(ga.shape[1])]
        names += ["gripper" if owner == "main" else f"{owner}_gripper" for owner in owners]
        for i, owner in enumerate(owners):
            if owner in chains:
                gripper_cmd[owner] = np.clip((1.0 - ga[:, i]) / 2.0, 0.0, 1.0)
        layout["gripper_actuations"] = [start, start + ga.shape[1]]
    for key in _DEVICE_DATASETS:
        if key in legacy:
            start = sum(c.shape[1] for c in cols)
            cols.append(legacy[key])
            names += [f"{key}{i}" for i in range(legacy[key].shape[1])]
            layout[key] = [start, start + legacy[key].shape[1]]
    return np.concatenate(cols, axis=1), names, gripper_cmd, layout
