"""robomimic / MimicGen HDF5 reader (layout and foreign-file rules in :mod:`sim.io.robomimic`)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError, SchemaError
from sim.io.atomic import json_digest
from sim.io.formats import check_unit_quat
from sim.io.hdf5 import DEMO, attr_str, demo_names, hdf5_errors, open_hdf5, read_dataset
from sim.io.robomimic.writer import ENV_ARGS_KEYS, HDF5_NAME, META_NAME
from sim.transforms import mat_to_pose, quat_angle, wxyz_to_xyzw, xyzw_to_wxyz

log = logging.getLogger(__name__)

_ARM_KEY = re.compile(r"^(robot\d+(?:_(?:left|right))?)_eef_pos$")


def read_robomimic(
    path: str | Path,
    demos: Sequence[int] | None = None,
    lazy_images: bool = True,
    fps: float | None = None,
) -> list[Episode]:
    """Read a robomimic/MimicGen HDF5 file into Episodes (one per ``demo_<i>``, sorted by i).

    Args:
        path: the ``.hdf5`` file, or a dataset directory holding ``demo.hdf5``.
        demos: demo indices to read; default all.
        lazy_images: return image arrays as loaders that read the file on first use.
        fps: sampling rate for foreign files [Hz]; default ``env_kwargs["control_freq"]`` or 20.

    Raises:
        FormatError: unreadable/truncated file, missing ``data``/``env_args``/``actions``,
            datasets whose row counts disagree with ``actions``/``@num_samples``.
        SchemaError: NaN/inf rows, non-unit quaternions, or EE quaternions that match
            ``datagen_info/eef_pose`` only when read as w, x, y, z (wrong convention).
    """
    path = Path(path)
    if path.is_dir():
        if not (path / HDF5_NAME).is_file():
            raise FormatError(
                f"{path}: directory without {HDF5_NAME}; expected a robomimic dataset directory "
                f"(<dir>/{HDF5_NAME} + meta/) or an .hdf5 file"
            )
        _verify_meta(path / META_NAME)
        path = path / HDF5_NAME
    with open_hdf5(path) as f, hdf5_errors(path):
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise FormatError(
                f"{path}: missing group 'data'; expected robomimic layout (data/demo_<i>/...)"
            )
        data = f["data"]
        if "env_args" not in data.attrs:
            raise FormatError(
                f"{path}: missing attribute 'data/@env_args'; expected JSON with "
                f"{', '.join(ENV_ARGS_KEYS)}"
            )
        try:
            env_args = json.loads(attr_str(data.attrs["env_args"]))
        except json.JSONDecodeError as e:
            raise FormatError(f"{path}: 'data/@env_args' is not JSON ({e})") from e
        names = demo_names(path, data)
        if "demoforge" in data.attrs and isinstance(f.get("mask"), h5py.Group):
            _verify_datasets(path, f["mask"])  # ours: the split lists are checked too
        if demos is not None:
            wanted = {int(d) for d in demos}
            names = [n for n in names if int(DEMO.match(n).group(1)) in wanted]
        out = []
        for name in names:
            g = data[name]
            actions = read_dataset(path, g, "actions", ndim=2)
            T = len(actions)
            if "num_samples" in g.attrs and int(g.attrs["num_samples"]) != T:
                raise FormatError(
                    f"{path}: 'data/{name}/@num_samples' is {int(g.attrs['num_samples'])}; "
                    f"expected {T} (= rows of 'data/{name}/actions')"
                )
            if "demoforge" in g.attrs:
                _verify_datasets(path, g)
                ep = _read_ours(path, g, name, actions, lazy_images)
            else:
                ep = _read_foreign(path, g, name, actions, env_args, lazy_images, fps)
            out.append(ep.validate())
    return out


def _verify_meta(path: Path) -> None:
    """Check ``meta/demoforge.json`` (when present) against the digest it carries."""
    if not path.is_file():
        return
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON ({e}); the file is damaged") from e
    digest = meta.pop("sha256", None) if isinstance(meta, dict) else None
    if digest is None or json_digest(meta) != digest:
        raise FormatError(f"{path}: content does not match its digest ('sha256'); file damaged")


def _verify_datasets(path: Path, g: h5py.Group) -> None:
    """Read every non-image dataset of one of our demos, so a Fletcher-32 failure anywhere
    (also in fields the Episode does not use, e.g. datagen_info) is reported, not skipped."""
    bad: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and not name.endswith("_image"):
            try:
                obj[()]
            except (OSError, RuntimeError, ValueError) as e:
                bad.append(f"{obj.name} ({e})")

    g.visititems(visit)
    if bad:
        raise FormatError(
            f"{path}: cannot read {bad[0]}; the file is damaged (checksum or structure)"
        )


def _lazy_loader(path: Path, key: str):
    def load() -> np.ndarray:
        with open_hdf5(path) as f, hdf5_errors(path):
            return np.asarray(f[key][()])

    return load


def _images(path: Path, g: h5py.Group, keys: dict[str, str], T: int, lazy: bool) -> dict:
    out = {}
    for cam, key in keys.items():
        ds = g[key]
        full = f"{g.name.lstrip('/')}/{key}"
        if ds.ndim != 4 or ds.shape[0] != T or ds.shape[-1] != 3 or ds.dtype != np.uint8:
            raise FormatError(
                f"{path}: '{full}' has shape {ds.shape} {ds.dtype}; expected (T={T}, H, W, 3) uint8"
            )
        out[cam] = _lazy_loader(path, full) if lazy else read_dataset(path, g, key)
    return out


def _pose(path: Path, g: h5py.Group, pos_key: str, quat_key: str, T: int) -> np.ndarray:
    pos = read_dataset(path, g, pos_key, ndim=2, rows=T)
    quat = read_dataset(path, g, quat_key, ndim=2, rows=T)
    if pos.shape[1] != 3 or quat.shape[1] != 4:
        raise FormatError(
            f"{path}: '{g.name.lstrip('/')}/{pos_key}'/{quat_key} have widths "
            f"{pos.shape[1]}/{quat.shape[1]}; expected 3 and 4 (x,y,z,w)"
        )
    check_unit_quat(f"{path}: '{g.name.lstrip('/')}/{quat_key}'", quat, "x,y,z,w")
    return np.concatenate([pos, xyzw_to_wxyz(quat)], axis=1)


def _read_ours(path: Path, g: h5py.Group, name: str, actions: np.ndarray, lazy: bool) -> Episode:
    try:
        info = json.loads(attr_str(g.attrs["demoforge"]))
        if "demoforge_sha256" in g.attrs:
            digest = attr_str(g.attrs["demoforge_sha256"])
            if json_digest(info) != digest:
                raise FormatError(
                    f"{path}: 'data/{name}/@demoforge' does not match its checksum "
                    "'@demoforge_sha256'; the file is damaged"
                )
        elif int(info.get("version", 1)) >= 2:
            raise FormatError(f"{path}: 'data/{name}/@demoforge_sha256' missing; file damaged?")
        known = {f.name for f in dataclasses.fields(EpisodeMeta)}
        extra = sorted(set(info["meta"]) - known)
        if extra:
            log.warning("%s: data/%s: ignoring unknown EpisodeMeta fields %s", path, name, extra)
        meta = EpisodeMeta(**{k: v for k, v in info["meta"].items() if k in known})
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise FormatError(
            f"{path}: 'data/{name}/@demoforge' is not valid demoforge metadata ({e!r})"
        ) from e
    T = len(actions)
    obs = g["obs"]
    src = "the length of actions"
    time = read_dataset(path, obs, "timestamp", ndim=1, rows=T, rows_from=src)
    has = info["has"]
    qpos = read_dataset(path, obs, "robot0_joint_pos", 2, T, src) if has["qpos"] else None
    qvel = read_dataset(path, obs, "robot0_joint_vel", 2, T, src) if has["qvel"] else None
    ee, gripper = {}, {}
    for arm, k in info["arms"].items():
        if arm in info["ee"]:
            ee[arm] = _pose(path, obs, f"robot{k}_eef_pos", f"robot{k}_eef_quat", T)
        if arm in info["gripper"]:
            gripper[arm] = read_dataset(path, obs, f"robot{k}_gripper_opening", 2, T, src)[:, 0]
    objects = {o: _pose(path, obs, f"{o}_pos", f"{o}_quat", T) for o in info["objects"]}
    sig = g["datagen_info/subtask_term_signals"] if info["subtasks"] else None
    subtasks = {s: read_dataset(path, sig, s, 1, T, src).astype(bool) for s in info["subtasks"]}
    images = _images(path, obs, {c: f"{c}_image" for c in info["cameras"]}, T, lazy)
    ep = Episode(
        meta=meta,
        time=time,
        joint_names=list(info["joint_names"]),
        qpos=qpos,
        qvel=qvel,
        action_names=list(info["action_names"]),
        action=actions if has["action"] else None,
        ee=ee,
        gripper=gripper,
        objects=objects,
        subtasks=subtasks,
        images=images,
    )
    if int(info.get("version", 1)) >= 2:
        _read_schema_1_1(path, g, name, info, ep)
    return ep


def _read_schema_1_1(path: Path, g: h5py.Group, name: str, info: dict, ep: Episode) -> None:
    """Fill target, gripper_cmd, segment(_ref), state, arm_joints (format version 2)."""
    T = len(ep)
    src = "the length of actions"
    xml_digest = info.get("model_file_sha256")
    if xml_digest is not None:
        if "model_file" not in g.attrs:
            raise FormatError(f"{path}: 'data/{name}/@model_file' missing; expected the MJCF XML")
        if json_digest(attr_str(g.attrs["model_file"])) != xml_digest:
            raise FormatError(
                f"{path}: 'data/{name}/@model_file' does not match its checksum; file damaged"
            )
    if "demoforge" not in g or not isinstance(g["demoforge"], h5py.Group):
        raise FormatError(f"{path}: group 'data/{name}/demoforge' missing (format version 2)")
    df = g["demoforge"]
    ep.target = {a: read_dataset(path, df["target"], a, 2, T, src) for a in info.get("target", [])}
    for a, pose in ep.target.items():
        check_unit_quat(f"{path}: 'data/{name}/demoforge/target/{a}'", pose[:, 3:], "w,x,y,z")
    ep.gripper_cmd = {
        a: read_dataset(path, df["gripper_cmd"], a, 1, T, src) for a in info.get("gripper_cmd", [])
    }
    for group in ("segment", "segment_ref"):
        out = {}
        for a in info.get(group, []):
            ids = read_dataset(path, df[group], a, 1, T, src)
            where = f"{path}: 'data/{name}/demoforge/{group}/{a}'"
            try:
                table = json.loads(attr_str(df[group][a].attrs["labels"]))
            except (KeyError, json.JSONDecodeError) as e:
                raise FormatError(f"{where}: attribute 'labels' missing or not JSON ({e})") from e
            if len(ids) and (ids.min() < 0 or ids.max() >= len(table)):
                raise FormatError(
                    f"{where}: label ids range {int(ids.min())}..{int(ids.max())}; the label "
                    f"table has {len(table)} entries"
                )
            out[a] = np.asarray(table, dtype=str)[ids] if len(table) else np.array([], str)
        setattr(ep, group, out)
    ep.arm_joints = {a: list(j) for a, j in info.get("arm_joints", {}).items()}
    if info["has"].get("state"):
        ep.state = read_dataset(path, g, "states", 2, T, src)
        ep.state_spec = int(info["state_spec"])


def _read_foreign(
    path: Path,
    g: h5py.Group,
    name: str,
    actions: np.ndarray,
    env_args: dict,
    lazy: bool,
    fps: float | None,
) -> Episode:
    T = len(actions)
    src = "the length of actions"
    obs = g["obs"] if "obs" in g else {}
    dg = g["datagen_info"] if "datagen_info" in g else None
    prov: dict[str, Any] = {"format": "robomimic", "file": str(path), "demo": name}
    prefixes = sorted({m.group(1) for k in obs if (m := _ARM_KEY.match(k))})
    arm_of = {p: ("main" if len(prefixes) == 1 else p) for p in prefixes}

    ee: dict[str, np.ndarray] = {}
    for p in prefixes:
        if f"{p}_eef_quat" in obs:
            ee[arm_of[p]] = _pose(path, obs, f"{p}_eef_pos", f"{p}_eef_quat", T)
    if dg is not None and "eef_pose" in dg:
        mats = read_dataset(path, dg, "eef_pose", ndim=(3, 4), rows=T, rows_from=src)
        # (T, 4, 4) MimicGen; (T, A, 4, 4) one per arm (DexMimicGen's bimanual layout)
        stacks = [mats] if mats.ndim == 3 else [mats[:, j] for j in range(mats.shape[1])]
        for j, m in enumerate(stacks):
            pose = mat_to_pose(m)
            arm = arm_of.get(f"robot{j}", "main" if len(stacks) == 1 else f"robot{j}")
            if arm in ee:
                _check_convention(path, f"data/{name}/obs/robot{j}_eef_quat", ee[arm], pose)
            ee[arm] = pose
        prov["ee"] = "datagen_info/eef_pose"
    objects: dict[str, np.ndarray] = {}
    if dg is not None and "object_poses" in dg:
        for o in dg["object_poses"]:
            mats = read_dataset(path, dg["object_poses"], o, ndim=3, rows=T, rows_from=src)
            objects[o] = mat_to_pose(mats)
    else:
        prov["objects"] = "missing (obs/object is an unnamed vector)"
    subtasks = {}
    if dg is not None and "subtask_term_signals" in dg:
        sig = dg["subtask_term_signals"]
        subtasks = {s: read_dataset(path, sig, s, 1, T, src).astype(bool) for s in sig}
    gripper = {}
    if dg is not None and "gripper_action" in dg:
        ga = read_dataset(path, dg, "gripper_action", ndim=(1, 2), rows=T, rows_from=src)
        ga = ga.reshape(T, -1)
        arms = [arm_of[p] for p in prefixes] or ["main"]
        for j, arm in enumerate(arms[: ga.shape[1]]):
            gripper[arm] = np.clip((1.0 - ga[:, j]) / 2.0, 0.0, 1.0)
        prov["gripper"] = "commanded: (1 - datagen_info/gripper_action) / 2"
    elif len(prefixes) <= 1 and actions.shape[1] >= 1:
        gripper["main"] = np.clip((1.0 - actions[:, -1]) / 2.0, 0.0, 1.0)
        prov["gripper"] = "commanded: (1 - actions[:, -1]) / 2 (robosuite: -1 open, +1 close)"
    qpos_parts, qvel_parts, jnames = [], [], []
    for p in prefixes:
        if f"{p}_joint_pos" in obs:
            q = read_dataset(path, obs, f"{p}_joint_pos", 2, T, src)
            qpos_parts.append(q)
            jnames += [f"{p}_joint{j}" for j in range(q.shape[1])]
            if f"{p}_joint_vel" in obs:
                qvel_parts.append(read_dataset(path, obs, f"{p}_joint_vel", 2, T, src))
    qpos = np.concatenate(qpos_parts, axis=1) if qpos_parts else None
    qvel = (
        np.concatenate(qvel_parts, axis=1)
        if qvel_parts and len(qvel_parts) == len(qpos_parts)
        else None
    )
    cams = {k.removesuffix("_image"): k for k in obs if k.endswith("_image")}
    images = _images(path, obs, cams, T, lazy) if cams else {}
    for key in ("rewards", "dones", "states"):
        if isinstance(g.get(key), h5py.Dataset):
            read_dataset(path, g, key, rows=T, rows_from=src)  # length/NaN consistency
    success = None
    if "rewards" in g:
        success = bool(np.max(g["rewards"][()], initial=0.0) > 0)
    env_kwargs = env_args.get("env_kwargs", {}) or {}
    rate = float(fps or env_kwargs.get("control_freq") or 20.0)
    robots = env_kwargs.get("robots", "unknown")
    robot = "+".join(robots) if isinstance(robots, list) else str(robots)
    if "model_file" in g.attrs:
        prov["has_model_file"] = True
    meta = EpisodeMeta(
        task=str(env_args.get("env_name", "unknown")),
        robot=robot,
        fps=rate,
        source=f"{path}#{name}",
        success=success,
        provenance=prov,
    )
    return Episode(
        meta=meta,
        time=np.arange(T) / rate,
        joint_names=jnames,
        qpos=qpos,
        qvel=qvel,
        action_names=[f"a{j}" for j in range(actions.shape[1])],
        action=actions,
        ee=ee,
        gripper=gripper,
        objects=objects,
        subtasks=subtasks,
        images=images,
    )


def _check_convention(path: Path, key: str, obs_pose: np.ndarray, ref_pose: np.ndarray) -> None:
    """Raise if the obs quaternion only agrees with eef_pose when read as w, x, y, z."""
    as_is = quat_angle(obs_pose[:, 3:], ref_pose[:, 3:])
    swapped = quat_angle(wxyz_to_xyzw(obs_pose[:, 3:]), ref_pose[:, 3:])
    if np.median(as_is) > 0.1 and np.median(swapped) < 1e-3:
        raise SchemaError(
            f"{path}: '{key}' matches datagen_info/eef_pose only when read as w,x,y,z; "
            "expected x,y,z,w (robomimic convention): the writer used the wrong order"
        )
