"""Kinematics-only MuJoCo models from foreign MJCF, and forward kinematics over recorded states.

Recorded files (robosuite ``demo.hdf5``, robomimic ``@model_file``) embed the MJCF the demo was
simulated with; its mesh/texture files usually do not exist on this machine and it may have been
written for an older MuJoCo. :func:`load_kinematic_model` makes a model that keeps every body,
joint, site and inertial (so body/site poses for a given ``qpos`` are those of the original
model) and drops what kinematics does not need:

- ``<mesh>``, ``<hfield>``, ``<skin>``, ``<texture>`` assets and ``<include>`` elements;
- mesh/hfield geoms become spheres of radius 0.01 m (geoms do not move bodies or sites);
- materials lose their ``texture`` attribute / ``<layer>`` children;
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
    return ET.tostring(root, encoding="unicode"), changes


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


def default_ee_sites(model: mujoco.MjModel) -> dict[str, str]:
    """robosuite EE sites: ``gripper<i>_grip_site`` (<=1.4), ``gripper<i>_<side>_grip_site`` (1.5).

    Arm names: ``"main"`` when there is one such site, else ``"robot<i>"`` or
    ``"robot<i>_<side>"``.
    """
    found = {}
    for name in _names(model, mujoco.mjtObj.mjOBJ_SITE, model.nsite):
        if m := _GRIP_SITE.match(name):
            idx, side = m.groups()
            found[f"robot{idx}" + (f"_{side}" if side else "")] = name
    if len(found) == 1:
        return {"main": next(iter(found.values()))}
    return dict(sorted(found.items()))


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
