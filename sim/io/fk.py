"""Kinematics-only MuJoCo models from foreign MJCF, and forward kinematics over recorded states.

Recorded files (robosuite ``demo.hdf5``, robomimic ``@model_file``) embed the MJCF the demo was
simulated with; its mesh/texture files usually do not exist on this machine and it may have been
written for an older MuJoCo. :func:`load_kinematic_model` makes a model that keeps every body,
joint, site and inertial (so body/site poses for a given ``qpos`` are those of the original
model) and drops what kinematics does not need:

- ``<mesh>``, ``<hfield>``, ``<skin>``, ``<texture>`` assets and ``<include>`` elements;
- mesh/hfield geoms become spheres of radius 0.01 m (geoms do not move bodies or sites);
- materials lose their ``texture`` attribute / ``<layer>`` children;
- vectors written as Python lists or tuples (``pos="[0, 0, 0.005]"``, robosuite 1.0-era files)
  become MJCF's space-separated form (``pos="0 0 0.005"``), reported per tag@attribute;
- then it compiles, and on a compile error naming an unrecognized attribute, an unrecognized
  element or an invalid keyword, removes that item and retries (at most ``max_retries`` times),
  logging each removal.

Poses come out as (T, 7): position [m] + quaternion w, x, y, z, in the model's world frame.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from sim.errors import FormatError, UnknownNameError
from sim.transforms import mat_to_quat

log = logging.getLogger(__name__)

#: Radius [m] of the sphere that replaces each mesh/hfield geom.
PLACEHOLDER_RADIUS = 0.01

_DROP_ASSETS = ("mesh", "hfield", "skin", "texture", "model")
_FILE_GEOM_TYPES = ("mesh", "hfield", "sdf")


def _parse(xml: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as e:
        raise FormatError(f"MJCF is not well-formed XML: {e}") from e


def _label(el: ET.Element) -> str:
    parts = [el.tag] + [
        f"{k}={el.get(k)!r}"
        for k in ("name", "class", "mesh", "hfield", "file")
        if el.get(k) is not None
    ]
    return "<" + " ".join(parts) + ">"


def sanitize_mjcf(xml: str) -> tuple[str, list[str]]:
    """Strip file-backed assets from MJCF text, keeping kinematics intact.

    Returns:
        (new XML text, human-readable list of what was removed or replaced).
    """
    root = _parse(xml)
    changes: list[str] = []
    parents = {child: parent for parent in root.iter() for child in parent}

    for el in list(root.iter()):
        if el.tag == "include" or el.tag == "skin" or (el.tag == "flexcomp" and el.get("file")):
            parents[el].remove(el)
            changes.append(f"removed {_label(el)}")
    for asset in root.iter("asset"):
        for el in list(asset):
            if el.tag in _DROP_ASSETS:
                asset.remove(el)
                if el.tag != "texture" or el.get("file"):
                    changes.append(f"removed asset {_label(el)}")
        for mat in asset.iter("material"):
            if mat.get("texture") is not None:
                mat.attrib.pop("texture")
            for layer in list(mat.iter("layer")):
                mat.remove(layer)
    for el in list(root.iter()):
        if el.tag == "attach":
            parents[el].remove(el)
            changes.append(f"removed {_label(el)} (needs an external model)")

    in_default = set()
    for d in root.iter("default"):
        in_default.update(d.iter())
    for geom in root.iter("geom"):
        gtype = geom.get("type")
        refs = [a for a in ("mesh", "hfield") if geom.get(a) is not None]
        if gtype not in _FILE_GEOM_TYPES and not refs:
            continue
        label = _label(geom)
        for a in ("mesh", "hfield", "fitscale"):
            geom.attrib.pop(a, None)
        if geom in in_default:
            if gtype in _FILE_GEOM_TYPES:
                geom.set("type", "sphere")
                geom.attrib.setdefault("size", str(PLACEHOLDER_RADIUS))
            continue
        geom.set("type", "sphere")
        geom.set("size", str(PLACEHOLDER_RADIUS))
        changes.append(f"{label} -> sphere r={PLACEHOLDER_RADIUS}")
    changes.extend(_repair_list_syntax(root))
    return ET.tostring(root, encoding="unicode"), changes


_LIST_VALUE = re.compile(r"^\s*[\[(]\s*([^\[\]()]*?)\s*[\])]\s*$")


def _list_parts(value: str) -> list[str] | None:
    m = _LIST_VALUE.match(value)
    if not m:
        return None
    parts = [p for p in re.split(r"[,\s]+", m.group(1)) if p]
    try:
        [float(p) for p in parts]
    except ValueError:
        return None
    return parts


def _repair_list_syntax(root: ET.Element) -> list[str]:
    """Rewrite ``attr="[a, b, c]"`` / ``"(a, b, c)"`` as ``"a b c"``; describe each kind once."""
    hits: dict[tuple[str, str], list[str]] = {}
    for el in root.iter():
        for k, v in el.attrib.items():
            parts = _list_parts(v)
            if parts is not None:
                el.set(k, " ".join(parts))
                hits.setdefault((el.tag, k), []).append(v)
    out = []
    for (tag, attr), vals in hits.items():
        fixed = " ".join(_list_parts(vals[0]) or [])
        out.append(f"attribute {tag}@{attr} list syntax {vals[0]!r} -> {fixed!r} ({len(vals)}x)")
    return out


_RE_ATTR = re.compile(r"unrecognized attribute: '([^']+)'\s*Element '([^']+)'")
_RE_ELEM = re.compile(r"unrecognized element\s*Element '([^']+)'")
_RE_KEYWORD = re.compile(r"invalid keyword: '([^']*)'\s*Element '([^']+)'")
_RE_FILE = re.compile(r"Error opening file '([^']+)'")


def _fix_compile_error(root: ET.Element, msg: str) -> str | None:
    """Apply one removal that addresses MuJoCo's compile error ``msg``; describe it or None."""
    parents = {child: parent for parent in root.iter() for child in parent}
    if m := _RE_ATTR.search(msg):
        attr, tag = m.groups()
        hits = [el for el in root.iter(tag) if attr in el.attrib]
        for el in hits:
            el.attrib.pop(attr)
        return f"attribute {tag}@{attr} ({len(hits)}x, unrecognized)" if hits else None
    if m := _RE_ELEM.search(msg):
        tag = m.group(1)
        hits = [el for el in root.iter(tag) if el in parents]
        for el in hits:
            parents[el].remove(el)
        return f"element <{tag}> ({len(hits)}x, unrecognized)" if hits else None
    if m := _RE_KEYWORD.search(msg):
        value, tag = m.groups()
        removed = []
        for el in root.iter(tag):
            for k, v in list(el.attrib.items()):
                if v == value:
                    el.attrib.pop(k)
                    removed.append(k)
        if not removed:
            return None
        return f"attribute {tag}@{'/'.join(sorted(set(removed)))}={value!r} (invalid keyword)"
    if m := _RE_FILE.search(msg):
        fname = m.group(1)
        hits = [el for el in root.iter() if el in parents and fname in el.attrib.values()]
        for el in hits:
            parents[el].remove(el)
        return f"element(s) referencing missing file {fname!r} ({len(hits)}x)" if hits else None
    return None


def load_kinematic_model(
    xml: str, max_retries: int = 32, report: list[str] | None = None
) -> mujoco.MjModel:
    """Compile MJCF text into a model usable for forward kinematics, without its asset files.

    Args:
        xml: MJCF document (e.g. a robosuite ``model_file`` attribute).
        max_retries: how many compile-error-driven removals to try before giving up.
        report: if given, every change made to the XML is appended to it (for provenance).

    Raises:
        FormatError: not XML, or it still fails to compile; the message quotes MuJoCo's error and
            lists what was removed.
    """
    text, changes = sanitize_mjcf(xml)
    if changes:
        log.info("kinematic model: %d asset change(s): %s", len(changes), "; ".join(changes))
    root = _parse(text)
    removed: list[str] = []
    while True:
        try:
            model = mujoco.MjModel.from_xml_string(text)
        except ValueError as e:
            msg = str(e).strip()
        else:
            if report is not None:
                report.extend(changes + [f"removed {r}" for r in removed])
            return model
        if len(removed) >= max_retries:
            msg = f"still failing after {max_retries} removals; last error: {msg}"
            break
        fix = _fix_compile_error(root, msg)
        if fix is None:
            break
        removed.append(fix)
        log.warning(
            "kinematic model: removed %s after MuJoCo %s said: %s",
            fix,
            mujoco.__version__,
            msg.splitlines()[0],
        )
        text = ET.tostring(root, encoding="unicode")
    raise FormatError(
        f"MJCF does not compile for kinematics with MuJoCo {mujoco.__version__}: {msg} "
        f"(removed so far: {removed or 'nothing'}); expected an MJCF model whose bodies, joints "
        "and sites compile once meshes/textures and unrecognized attributes are dropped"
    )


def _names(model: mujoco.MjModel, objtype: mujoco.mjtObj, n: int) -> list[str]:
    return [mujoco.mj_id2name(model, objtype, i) or "" for i in range(n)]


_GRIP_SITE = re.compile(r"^gripper(\d+)_(?:(left|right)_)?grip_site$")
#: robosuite 0.3 (RoboTurk era) grip sites: Sawyer/Panda ``grip_site``; Baxter ``grip_site``
#: (right hand) and ``l_g_grip_site`` (left hand); some files spell the right ``r_g_grip_site``.
_LEGACY_SITES = {"grip_site": "right", "r_g_grip_site": "right", "l_g_grip_site": "left"}


def default_ee_sites(model: mujoco.MjModel) -> dict[str, str]:
    """robosuite EE sites: ``gripper<i>_grip_site`` (1.0-1.4), ``gripper<i>_<side>_grip_site``
    (1.5), or the 0.3-era ``grip_site`` / ``l_g_grip_site``.

    Arm names: ``"main"`` when there is one such site, else ``"robot<i>"`` /
    ``"robot<i>_<side>"`` (1.x) or ``"right"`` / ``"left"`` (0.3), in robot order, right first.
    """
    found = {}
    names = _names(model, mujoco.mjtObj.mjOBJ_SITE, model.nsite)
    for name in names:
        if m := _GRIP_SITE.match(name):
            idx, side = m.groups()
            found[(int(idx), 0 if side != "left" else 1)] = (
                f"robot{idx}" + (f"_{side}" if side else ""),
                name,
            )
    if not found:
        for name in names:
            if name in _LEGACY_SITES:
                side = _LEGACY_SITES[name]
                found.setdefault((0, 0 if side == "right" else 1), (side, name))
    if len(found) == 1:
        return {"main": next(iter(found.values()))[1]}
    return dict(found[k] for k in sorted(found))


def frame_body(model: mujoco.MjModel, name: str) -> int:
    """Body id of a site's body, or of the body ``name``."""
    kind, i = _resolve(model, name)
    return int(model.site_bodyid[i]) if kind == "site" else i


def _subtree(model: mujoco.MjModel, root: int) -> set[int]:
    out = {root}
    for b in range(root + 1, model.nbody):
        if int(model.body_parentid[b]) in out:
            out.add(b)
    return out


def arm_chain(model: mujoco.MjModel, frame: str) -> tuple[list[int], list[int]]:
    """Hinge/slide joints of the arm that carries ``frame`` (site or body name).

    Returns:
        (arm joints: on the path from the world to the frame, root first; finger joints: in the
        subtree of the body of the last arm joint (the wrist) but not on that path), model order.
    """
    scalar = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    body = frame_body(model, frame)
    path = []
    while body > 0:
        path.append(body)
        body = int(model.body_parentid[body])
    on_path = set(path)
    arm = [
        j
        for j in range(model.njnt)
        if int(model.jnt_bodyid[j]) in on_path and int(model.jnt_type[j]) in scalar
    ]
    if not arm:
        return [], []
    wrist = _subtree(model, int(model.jnt_bodyid[arm[-1]]))
    fingers = [
        j
        for j in range(model.njnt)
        if int(model.jnt_bodyid[j]) in wrist - on_path and int(model.jnt_type[j]) in scalar
    ]
    return arm, fingers


def joint_limits(model: mujoco.MjModel, joints: list[int]) -> dict[str, list[float]]:
    """Joint name -> [lo, hi] for the limited ones among ``joints`` [rad or m]."""
    out = {}
    for j in joints:
        if bool(model.jnt_limited[j]):
            name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j)
            out[name] = [float(model.jnt_range[j, 0]), float(model.jnt_range[j, 1])]
    return out


def quat_columns(model: mujoco.MjModel) -> dict[str, int]:
    """Joint name -> qpos address of its quaternion (free joints: adr + 3, ball joints: adr)."""
    out = {}
    for j in range(model.njnt):
        t = int(model.jnt_type[j])
        adr = int(model.jnt_qposadr[j])
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"
        if t == int(mujoco.mjtJoint.mjJNT_FREE):
            out[name] = adr + 3
        elif t == int(mujoco.mjtJoint.mjJNT_BALL):
            out[name] = adr
    return out


def default_objects(model: mujoco.MjModel) -> dict[str, str]:
    """Bodies that own a free joint, named without robosuite's ``_main`` suffix."""
    out = {}
    for j in range(model.njnt):
        if int(model.jnt_type[j]) != int(mujoco.mjtJoint.mjJNT_FREE):
            continue
        body = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(model.jnt_bodyid[j]))
        if body:
            out[body.removesuffix("_main")] = body
    return out


def _resolve(model: mujoco.MjModel, name: str) -> tuple[str, int]:
    sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)
    if sid >= 0:
        return "site", sid
    bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    if bid >= 0:
        return "body", bid
    known = _names(model, mujoco.mjtObj.mjOBJ_SITE, model.nsite) + _names(
        model, mujoco.mjtObj.mjOBJ_BODY, model.nbody
    )
    raise UnknownNameError("site or body", name, [k for k in known if k])


def frame_poses(
    model: mujoco.MjModel, qpos: np.ndarray, frames: dict[str, str]
) -> dict[str, np.ndarray]:
    """World poses of sites/bodies along a joint trajectory, by ``mj_kinematics``.

    Args:
        model: compiled model (e.g. from :func:`load_kinematic_model`).
        qpos: (T, nq) generalized positions.
        frames: output name -> site name or body name (sites are looked up first).

    Returns:
        output name -> (T, 7) pose: position [m] + quaternion w,x,y,z, world frame.

    Raises:
        UnknownNameError: a frame names neither a site nor a body of the model.
        FormatError: ``qpos`` width differs from ``model.nq``.
    """
    qpos = np.asarray(qpos, dtype=np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != model.nq:
        raise FormatError(f"qpos has shape {qpos.shape}; expected (T, nq={model.nq})")
    targets = {out: _resolve(model, name) for out, name in frames.items()}
    data = mujoco.MjData(model)
    T = len(qpos)
    out = {k: np.zeros((T, 7)) for k in targets}
    site_mats = {k: np.zeros((T, 3, 3)) for k, (kind, _) in targets.items() if kind == "site"}
    for t in range(T):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        for k, (kind, i) in targets.items():
            if kind == "site":
                out[k][t, :3] = data.site_xpos[i]
                site_mats[k][t] = data.site_xmat[i].reshape(3, 3)
            else:
                out[k][t, :3] = data.xpos[i]
                out[k][t, 3:] = data.xquat[i]
    for k, mats in site_mats.items():
        out[k][:, 3:] = mat_to_quat(mats)
    return out
