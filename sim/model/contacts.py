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


def _ids(x) -> set[int]:
    """A body id or an iterable of ids as a set of Python ints."""
    if isinstance(x, (int, np.integer)):
        return {int(x)}
    return {int(i) for i in np.asarray(x).ravel().tolist()}


def _body_contacts(model: mujoco.MjModel, data: mujoco.MjData) -> list[tuple[int, int, int, int]]:
    """(geom1, geom2, body1, body2) per active geom-geom contact, as Python ints.

    Plain Python on purpose: a step has a few dozen contacts at most, where each numpy call
    costs more than the loop (the predicates below run every control step).
    """
    n = data.ncon
    if n == 0:
        return []
    bid = model.geom_bodyid.tolist()
    return [
        (g1, g2, bid[g1], bid[g2])
        for g1, g2 in data.contact.geom[:n].tolist()
        if g1 >= 0 and g2 >= 0
    ]


def touching(model: mujoco.MjModel, data: mujoco.MjData, a, b) -> bool:
    """True if any body in ``a`` touches any body in ``b`` (ids or iterables of ids)."""
    sa, sb = _ids(a), _ids(b)
    return any(
        (b1 in sa and b2 in sb) or (b2 in sa and b1 in sb)
        for _, _, b1, b2 in _body_contacts(model, data)
    )


def num_touching_geoms(model: mujoco.MjModel, data: mujoco.MjData, body: int, others) -> int:
    """How many distinct geoms of the bodies ``others`` touch ``body`` (e.g. finger pads)."""
    body, so = int(body), _ids(others)
    hits = set()
    for g1, g2, b1, b2 in _body_contacts(model, data):
        if b1 == body and b2 in so:
            hits.add(g2)
        elif b2 == body and b1 in so:
            hits.add(g1)
    return len(hits)


def held_by_hands(
    model: mujoco.MjModel, data: mujoco.MjData, body: int, hands, pads: int = 2
) -> list[bool]:
    """Per hand (each an id or ids of its bodies): do at least ``pads`` distinct geoms of it
    (finger pads) touch ``body``? The grasp signal of the pick tasks, one pass over the
    step's contacts for all hands."""
    body = int(body)
    sets = [_ids(h) for h in hands]
    hits: list[set[int]] = [set() for _ in sets]
    for g1, g2, b1, b2 in _body_contacts(model, data):
        if b1 == body:
            other, geom = b2, g2
        elif b2 == body:
            other, geom = b1, g1
        else:
            continue
        for s, h in zip(sets, hits, strict=True):
            if other in s:
                h.add(geom)
    return [len(h) >= pads for h in hits]


def robot_touching(model: mujoco.MjModel, data: mujoco.MjData, body: int, robot_root: int) -> bool:
    """True if ``body`` touches any body of the robot (bodies whose root is ``robot_root``)."""
    body, root = int(body), int(robot_root)
    rid = model.body_rootid
    return any(
        (b1 == body and rid[b2] == root) or (b2 == body and rid[b1] == root)
        for _, _, b1, b2 in _body_contacts(model, data)
    )
