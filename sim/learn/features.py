"""Derived (task-relevant) observation features, computed the same way from dataset columns and
from a live scene.

- ``derived.poses``: for every arm's EE, then every object: position (world, [m]) and the first
  two columns of the rotation matrix (the continuous "6D" rotation: unlike a quaternion it has
  no sign flip, so a policy input stays in distribution when w crosses 0).
- ``derived.relative``: for every arm and every object the object's position minus the arm's EE
  position (world frame, [m]), then for every object pair (i < j) position j minus position i.
- ``derived.gripper``: the gripper openings ([0, 1]) of ``observation.state`` without the joint
  positions (joint postures depend on how IK resolved redundancy, which differs between the
  generator, which restarts IK per segment, and a closed-loop rollout).
- ``derived.time``: time since the episode's first frame [s] (the ``timestamp`` column; live:
  control steps since reset x control period). It tells the policy where it is in the task
  while the scene still looks the same (the first, nearly static frames).

Both the data loader (:mod:`sim.learn.data`) and the live :class:`sim.learn.observe.Observer`
call :func:`derive` on columns in the dataset layout, so training and evaluation inputs cannot
diverge.
"""

from __future__ import annotations

import numpy as np

from sim.errors import SchemaError
from sim.transforms import quat_to_mat

EE = "observation.ee_pose."
ENV = "observation.environment_state"
RELATIVE = "derived.relative"
POSES = "derived.poses"
GRIPPER = "derived.gripper"
TIME = "derived.time"
STATE = "observation.state"
TIMESTAMP = "timestamp"
DERIVED = (POSES, RELATIVE, GRIPPER, TIME)
AXES = ("x", "y", "z")
ROT6 = ("r00", "r10", "r20", "r01", "r11", "r21")


def is_derived(key: str) -> bool:
    return key.startswith("derived.")


def check_derived(key: str) -> None:
    if key not in DERIVED:
        raise SchemaError(f"derived feature {key!r} unknown; known: {list(DERIVED)}")


def sources(key: str, features: dict | list) -> list[str]:
    """The dataset feature keys ``key`` is computed from (EE poses of every arm, object poses)."""
    check_derived(key)
    if key == GRIPPER:
        return [STATE]
    if key == TIME:
        return [TIMESTAMP]
    return sorted(k for k in features if k.startswith(EE)) + [ENV]


def _objects(names: list[str]) -> list[str]:
    """Object names of environment_state columns ``<obj>.x ... <obj>.qz`` (7 per object)."""
    if len(names) % 7:
        raise SchemaError(f"{ENV}: {len(names)} columns, expected 7 per object (pos + quat)")
    return [names[i].rsplit(".", 1)[0] for i in range(0, len(names), 7)]


def derive(
    key: str, cols: dict[str, np.ndarray], names: dict[str, list[str]]
) -> tuple[np.ndarray, list[str]]:
    """Compute derived feature ``key`` from dataset-layout columns.

    Args:
        key: a derived feature key (``derived.poses``, ``derived.relative``,
            ``derived.gripper``).
        cols: feature key -> (N, W) values: ``observation.ee_pose.<arm>`` (pos [m] + quat) for
            every arm and ``observation.environment_state`` (7 columns per object); for
            ``derived.gripper`` ``observation.state``.
        names: feature key -> column names (the environment_state ones name the objects).

    Returns:
        (N, F) float32 values and their F column names.
    """
    check_derived(key)
    if key == TIME:
        if TIMESTAMP not in cols:
            raise SchemaError(f"feature {key!r} needs {TIMESTAMP!r} (time since reset [s])")
        return np.asarray(cols[TIMESTAMP], np.float32).reshape(-1, 1), ["time_s"]
    if key == GRIPPER:
        if STATE not in cols:
            raise SchemaError(f"feature {key!r} needs {STATE!r} (gripper openings)")
        idx = [i for i, n in enumerate(names[STATE]) if n.endswith("_gripper")]
        vals = np.asarray(cols[STATE], np.float32)[:, idx]
        return vals, [names[STATE][i] for i in idx]
    missing = [k for k in sources(key, cols) if k not in cols]
    if missing or not any(k.startswith(EE) for k in cols):
        raise SchemaError(
            f"feature {key!r} needs {missing or [EE + '<arm>']} (EE poses and object poses)"
        )
    arms = sorted(k[len(EE) :] for k in cols if k.startswith(EE))
    objs = _objects(list(names[ENV]))
    env = np.asarray(cols[ENV], np.float64)
    pos = {o: env[:, 7 * i : 7 * i + 3] for i, o in enumerate(objs)}
    out, out_names = [], []
    if key == POSES:
        poses = [(a, np.asarray(cols[EE + a], np.float64)) for a in arms]
        poses += [(o, env[:, 7 * i : 7 * i + 7]) for i, o in enumerate(objs)]
        for name, pose in poses:
            rot = quat_to_mat(pose[:, 3:7])  # (N, 3, 3)
            out += [pose[:, :3], rot[:, :, 0], rot[:, :, 1]]
            out_names += [f"{name}.{c}" for c in (*AXES, *ROT6)]
        return np.concatenate(out, axis=1).astype(np.float32), out_names
    for arm in arms:
        ee = np.asarray(cols[EE + arm], np.float64)[:, :3]
        for o in objs:
            out.append(pos[o] - ee)
            out_names += [f"{o}-{arm}.{a}" for a in AXES]
    for i, a in enumerate(objs):
        for b in objs[i + 1 :]:
            out.append(pos[b] - pos[a])
            out_names += [f"{b}-{a}.{x}" for x in AXES]
    n = env.shape[0]
    vals = np.concatenate(out, axis=1) if out else np.zeros((n, 0))
    return vals.astype(np.float32), out_names


def derived_names(key: str, names: dict[str, list[str]]) -> list[str]:
    """Column names of derived feature ``key`` given its sources' column names (no values)."""
    cols = {}
    for k, n in names.items():
        row = np.zeros((1, len(n)))
        if k.startswith(EE) or k == ENV:
            row[:, 3::7] = 1.0  # identity quaternions (EE poses and objects: 7 columns each)
        cols[k] = row
    return derive(key, cols, names)[1]
