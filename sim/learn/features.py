"""Derived (task-relevant) observation features, computed the same way from dataset columns and
from a live scene.

``derived.relative``: for every arm and every object the object's position minus the arm's EE
position (world frame, [m]), then for every object pair (i < j) position j minus position i.
Both the data loader (:mod:`sim.learn.data`) and the live :class:`sim.learn.observe.Observer`
call :func:`derive` on columns in the dataset layout, so training and evaluation inputs cannot
diverge.
"""

from __future__ import annotations

import numpy as np

from sim.errors import SchemaError

EE = "observation.ee_pose."
ENV = "observation.environment_state"
RELATIVE = "derived.relative"
DERIVED = (RELATIVE,)
AXES = ("x", "y", "z")


def is_derived(key: str) -> bool:
    return key.startswith("derived.")


def check_derived(key: str) -> None:
    if key not in DERIVED:
        raise SchemaError(f"derived feature {key!r} unknown; known: {list(DERIVED)}")


def sources(key: str, features: dict | list) -> list[str]:
    """The dataset feature keys ``key`` is computed from (EE poses of every arm, object poses)."""
    check_derived(key)
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
        key: a derived feature key (``derived.relative``).
        cols: feature key -> (N, W) values: ``observation.ee_pose.<arm>`` (pos [m] + quat) for
            every arm and ``observation.environment_state`` (7 columns per object).
        names: feature key -> column names (the environment_state ones name the objects).

    Returns:
        (N, F) float32 values and their F column names.
    """
    check_derived(key)
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
