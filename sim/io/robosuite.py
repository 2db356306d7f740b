"""Reader for raw robosuite ``demo.hdf5`` (``collect_human_demonstrations`` output).

Layout (robosuite ``gather_demonstrations_as_hdf5``; attributes on ``data``, or on the root)::

    data/@env                 environment name, e.g. "Lift"
    data/@env_info            JSON: robots, controller_configs, control_freq, ...
    data/@repository_version  robosuite version string
    data/demo_<i>/@model_file MJCF XML the episode was simulated with
    data/demo_<i>/@ep_meta    JSON (robosuite >= 1.5, optional; "lang" = instruction)
    data/demo_<i>/states      (N, 1 + nq + nv) flattened MuJoCo state: time [s], qpos, qvel
    data/demo_<i>/actions     (N, A) controller commands (e.g. OSC_POSE deltas + gripper)

There are no EE or object observations: they are recovered by forward kinematics on the embedded
XML (:mod:`sim.io.fk`), which works without the mesh/texture files and tolerates attributes that
this MuJoCo no longer accepts.

Episode mapping:

- ``time`` = ``states[:, 0]`` re-based to 0; ``fps`` = ``env_info["control_freq"]`` or the median
  state period;
- ``qpos``/``qvel``: joints whose names start with ``robot<i>_`` or ``gripper<i>_`` (robosuite's
  arm and finger joints), named as in the XML;
- ``ee[arm]``: pose of the EE site (default: ``gripper0_grip_site`` / ``gripper0_right_grip_site``,
  arm ``"main"`` when there is a single one, see :func:`sim.io.fk.default_ee_sites`);
- ``objects[name]``: pose of each free-joint body (name without robosuite's ``_main`` suffix);
- ``gripper["main"]`` (single arm only) = ``(1 - actions[:, -1]) / 2`` clipped to [0, 1]
  (robosuite gripper command: -1 open, +1 close), i.e. the *commanded* opening;
- ``action`` = ``actions`` as recorded (controller space, not joint targets; see provenance).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError
from sim.io.fk import default_ee_sites, default_objects, frame_poses, load_kinematic_model
from sim.io.hdf5 import attr_str, demo_names, hdf5_errors, open_hdf5, read_dataset

_DEMO = re.compile(r"^demo_?(\d+)$")  # robosuite: demo_1, demo_2, ... (older: demo1)
_HINGE_SLIDE = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
_OSC_POSE_NAMES = ["dx", "dy", "dz", "dax", "day", "daz", "gripper"]


def _robot_joints(model: mujoco.MjModel, prefixes: Sequence[str]) -> list[int]:
    pat = re.compile(rf"^(?:{'|'.join(map(re.escape, prefixes))})\d+_")
    out = []
    for j in range(model.njnt):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or ""
        if int(model.jnt_type[j]) in _HINGE_SLIDE and pat.match(name):
            out.append(j)
    return out


def read_robosuite(
    path: str | Path,
    ee_sites: dict[str, str] | None = None,
    objects: dict[str, str] | None = None,
    fps: float | None = None,
    demos: Sequence[int] | None = None,
    joint_prefixes: Sequence[str] = ("robot", "gripper"),
) -> list[Episode]:
    """Read a robosuite ``demo.hdf5`` and recover EE/object trajectories by forward kinematics.

    Args:
        path: the HDF5 file.
        ee_sites: arm -> site (or body) name of the end effector; default robosuite grip sites.
        objects: object name -> body name; default every free-joint body.
        fps: sampling rate [Hz]; default ``env_info["control_freq"]`` or the state period.
        demos: demo indices (the ``<i>`` of ``demo_<i>``) to read; default all, sorted.
        joint_prefixes: joint-name prefixes (followed by a robot index) that make up ``qpos``.

    Raises:
        FormatError: unreadable file, missing/mismatched datasets, XML that does not compile.
    """
    path = Path(path)
    with open_hdf5(path) as f, hdf5_errors(path):
        if "data" not in f:
            raise FormatError(f"{path}: missing group 'data'; expected robosuite demo.hdf5 layout")
        data = f["data"]
        attrs = {**dict(f.attrs), **dict(data.attrs)}
        env_name = attr_str(attrs.get("env", "unknown"))
        try:
            env_info = json.loads(attr_str(attrs.get("env_info", "{}")) or "{}")
        except json.JSONDecodeError as e:
            raise FormatError(f"{path}: attribute 'data/@env_info' is not JSON ({e})") from e
        robots = env_info.get("robots", "unknown")
        robot = "+".join(robots) if isinstance(robots, list) else str(robots)
        controller = env_info.get("controller_configs", {})
        ctrl_type = controller.get("type", "") if isinstance(controller, dict) else ""
        names = demo_names(path, data, _DEMO)
        if demos is not None:
            wanted = {int(d) for d in demos}
            names = [n for n in names if int(_DEMO.match(n).group(1)) in wanted]
        models: dict[str, tuple[mujoco.MjModel, list[str]]] = {}
        episodes = []
        for name in names:
            grp = data[name]
            if "model_file" not in grp.attrs:
                raise FormatError(
                    f"{path}: missing attribute 'data/{name}/@model_file'; expected the MJCF "
                    "XML needed for forward kinematics"
                )
            xml = attr_str(grp.attrs["model_file"])
            if xml not in models:
                report: list[str] = []
                try:
                    m = load_kinematic_model(xml, report=report)
                except FormatError as e:
                    raise FormatError(f"{path}: data/{name}/@model_file: {e}") from e
                models[xml] = (m, report)
            model, report = models[xml]
            states = read_dataset(path, grp, "states", ndim=2)
            actions = read_dataset(
                path,
                grp,
                "actions",
                ndim=2,
                rows=len(states),
                rows_from=f"= rows of 'data/{name}/states'",
            )
            nq, nv, na = model.nq, model.nv, model.na
            if states.shape[1] not in (1 + nq + nv, 1 + nq + nv + na):
                raise FormatError(
                    f"{path}: 'data/{name}/states' has width {states.shape[1]}; expected "
                    f"1 + nq + nv = {1 + nq + nv} (time, qpos, qvel) for its model_file"
                )
            qpos_full = states[:, 1 : 1 + nq]
            qvel_full = states[:, 1 + nq : 1 + nq + nv]
            episodes.append(
                _episode(
                    path,
                    name,
                    model,
                    report,
                    states[:, 0],
                    qpos_full,
                    qvel_full,
                    actions,
                    ee_sites,
                    objects,
                    fps,
                    env_name,
                    env_info,
                    robot,
                    ctrl_type,
                    grp.attrs.get("ep_meta"),
                    attrs,
                    joint_prefixes,
                )
            )
    return episodes


def _episode(
    path: Path,
    name: str,
    model: mujoco.MjModel,
    report: list[str],
    sim_time: np.ndarray,
    qpos_full: np.ndarray,
    qvel_full: np.ndarray,
    actions: np.ndarray,
    ee_sites: dict[str, str] | None,
    objects: dict[str, str] | None,
    fps: float | None,
    env_name: str,
    env_info: dict,
    robot: str,
    ctrl_type: str,
    ep_meta: Any,
    attrs: dict,
    joint_prefixes: Sequence[str],
) -> Episode:
    ee_map = default_ee_sites(model) if ee_sites is None else dict(ee_sites)
    obj_map = default_objects(model) if objects is None else dict(objects)
    frames = {
        **{f"ee/{k}": v for k, v in ee_map.items()},
        **{f"obj/{k}": v for k, v in obj_map.items()},
    }
    poses = frame_poses(model, qpos_full, frames)
    t = np.asarray(sim_time, dtype=np.float64) - float(sim_time[0])
    steps = np.diff(t)
    rate = fps or env_info.get("control_freq")
    if not rate and len(steps) and np.all(steps > 0):
        rate = 1.0 / float(np.median(steps))
    rate = float(rate or 20.0)
    if len(steps) and not np.all(steps > 0):
        t = np.arange(len(t)) / rate  # time not recorded (all zeros): use the nominal grid
    joints = _robot_joints(model, joint_prefixes)
    jnames = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joints]
    qadr = [int(model.jnt_qposadr[j]) for j in joints]
    vadr = [int(model.jnt_dofadr[j]) for j in joints]
    gripper = {}
    prov: dict[str, Any] = {
        "format": "robosuite",
        "file": str(path),
        "demo": name,
        "repository_version": attr_str(attrs.get("repository_version", "")),
        "controller": ctrl_type,
        "action_space": f"robosuite controller {ctrl_type or '(unknown)'} commands",
        "model_changes": report,
        "ee_sites": ee_map,
        "object_bodies": obj_map,
    }
    if len(ee_map) == 1 and actions.shape[1] >= 1:
        arm = next(iter(ee_map))
        gripper[arm] = np.clip((1.0 - actions[:, -1].astype(np.float64)) / 2.0, 0.0, 1.0)
        prov["gripper"] = "commanded: (1 - actions[:, -1]) / 2 (robosuite: -1 open, +1 close)"
    else:
        prov["gripper"] = "missing (needs exactly one arm to locate the gripper action)"
    instruction = ""
    if ep_meta is not None:
        try:
            instruction = str(json.loads(attr_str(ep_meta)).get("lang", ""))
        except (json.JSONDecodeError, AttributeError):
            instruction = ""
    action_names = (
        _OSC_POSE_NAMES
        if ctrl_type == "OSC_POSE" and actions.shape[1] == 7
        else [f"a{i}" for i in range(actions.shape[1])]
    )
    meta = EpisodeMeta(
        task=env_name,
        robot=robot,
        fps=rate,
        source=f"{path}#{name}",
        instruction=instruction,
        provenance=prov,
    )
    ep = Episode(
        meta=meta,
        time=t,
        joint_names=jnames,
        qpos=qpos_full[:, qadr].astype(np.float64),
        qvel=qvel_full[:, vadr].astype(np.float64),
        action_names=action_names,
        action=actions.astype(np.float64),
        ee={k: poses[f"ee/{k}"] for k in ee_map},
        gripper=gripper,
        objects={k: poses[f"obj/{k}"] for k in obj_map},
    )
    return ep.validate()
