"""Contact queries used by success predicates and subtask signals (physics, not bookkeeping)."""

from __future__ import annotations

import mujoco
import numpy as np


def subtree_bodies(model: mujoco.MjModel, root: int) -> np.ndarray:
    """Ids of ``root`` and all its descendant bodies."""
    ids = [root]
    for b in range(root + 1, model.nbody):
        if model.body_parentid[b] in ids:
            ids.append(b)
    return np.array(ids)


def contact_bodies(data: mujoco.MjData, model: mujoco.MjModel) -> np.ndarray:
    """(ncon, 2) body ids of the active geom-geom contacts (flex contacts, geom -1, skipped)."""
    n = data.ncon
    if n == 0:
        return np.zeros((0, 2), dtype=int)
    geoms = np.stack([data.contact.geom1[:n], data.contact.geom2[:n]], axis=1)
    geoms = geoms[np.all(geoms >= 0, axis=1)]
    return model.geom_bodyid[geoms]


def _body_mask(model: mujoco.MjModel, ids) -> np.ndarray:
    """(nbody,) bool, True at ``ids`` (a cheap membership test; np.isin sorts every call)."""
    mask = np.zeros(model.nbody, dtype=bool)
    mask[np.atleast_1d(ids)] = True
    return mask


def touching(model: mujoco.MjModel, data: mujoco.MjData, a, b) -> bool:
    """True if any body in ``a`` touches any body in ``b`` (ids or iterables of ids)."""
    pairs = contact_bodies(data, model)
    if len(pairs) == 0:
        return False
    ia, ib = _body_mask(model, a)[pairs], _body_mask(model, b)[pairs]
    return bool(np.any((ia[:, 0] & ib[:, 1]) | (ia[:, 1] & ib[:, 0])))


def num_touching_geoms(model: mujoco.MjModel, data: mujoco.MjData, body: int, others) -> int:
    """How many distinct geoms of the bodies ``others`` touch ``body`` (e.g. finger pads)."""
    n = data.ncon
    if n == 0:
        return 0
    g1, g2 = data.contact.geom1[:n], data.contact.geom2[:n]
    keep = (g1 >= 0) & (g2 >= 0)  # flex contacts have geom -1
    g1, g2 = g1[keep], g2[keep]
    b1, b2 = model.geom_bodyid[g1], model.geom_bodyid[g2]
    mask = _body_mask(model, others)
    hits = set(g2[(b1 == body) & mask[b2]].tolist()) | set(g1[(b2 == body) & mask[b1]].tolist())
    return len(hits)


def robot_touching(model: mujoco.MjModel, data: mujoco.MjData, body: int, robot_root: int) -> bool:
    """True if ``body`` touches any body of the robot (bodies whose root is ``robot_root``)."""
    pairs = contact_bodies(data, model)
    if len(pairs) == 0:
        return False
    roots = model.body_rootid[pairs]
    return bool(
        np.any((pairs[:, 0] == body) & (roots[:, 1] == robot_root))
        | np.any((pairs[:, 1] == body) & (roots[:, 0] == robot_root))
    )
