"""robosuite env metadata and action layouts: which action columns belong to which arm.

robosuite records per step one action vector: for every arm, in robot order (right before left
within a bimanual robot), the arm controller's action followed by the gripper's (one column).
Arm-action widths by controller type: OSC_POSE 6, OSC_POSITION 3, IK_POSE 6, JOINT_* one per
arm joint (:data:`sim.io.deltas.CONTROL_DIMS`). Controller configs come from ``@env_info``
(robosuite) or ``@env_args["env_kwargs"]`` (robomimic): one dict for every robot, a list per
robot, or robosuite 1.5's composite ``{"type": "BASIC", "body_parts": {"right": {...}}}``.
robosuite grippers: -1 open, +1 close; the commanded opening is ``(1 - a) / 2`` clipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import FormatError
from sim.io.deltas import CONTROL_DIMS, OSC_TYPES, osc_scaling, osc_targets
from sim.io.hdf5 import attr_str

_ARM_NAMES = {
    "OSC_POSE": ["dx", "dy", "dz", "dax", "day", "daz"],
    "OSC_POSITION": ["dx", "dy", "dz"],
    "IK_POSE": ["dx", "dy", "dz", "dax", "day", "daz"],
}
_ARM_INDEX = re.compile(r"^robot(\d+)(?:_(left|right))?$")
#: 0.3-era teleop device deltas recorded beside joint velocities.
DEVICE_DATASETS = ("right_dpos", "right_dquat", "left_dpos", "left_dquat")


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


def arm_controller(controllers: list[dict], robot: int, side: str) -> dict:
    """One arm's controller config; robosuite 1.5 composite configs hold ``body_parts``."""
    if not controllers:
        return {}
    cfg = controllers[min(robot, len(controllers) - 1)]
    parts = cfg.get("body_parts")
    if isinstance(parts, dict):
        part = parts.get(side) or parts.get("right") or next(iter(parts.values()), {})
        return part if isinstance(part, dict) else {}
    return cfg


def robot_side(arm: str, order: int) -> tuple[int, str]:
    if m := _ARM_INDEX.match(arm):
        return int(m.group(1)), m.group(2) or "right"
    if arm in ("left", "right"):
        return 0, arm
    return (0 if arm == "main" else order), "right"


def split_actions(
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
        cfg = arm_controller(meta["controllers"], *arm_sides[arm])
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
            scaling = osc_scaling(arm_controller(meta["controllers"], *arm_sides[arm]), where)
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


def legacy_commands(
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
    for key in DEVICE_DATASETS:
        if key in legacy:
            start = sum(c.shape[1] for c in cols)
            cols.append(legacy[key])
            names += [f"{key}{i}" for i in range(legacy[key].shape[1])]
            layout[key] = [start, start + legacy[key].shape[1]]
    return np.concatenate(cols, axis=1), names, gripper_cmd, layout
