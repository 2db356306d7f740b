"""robomimic / MimicGen HDF5 writer and reader (FORMATS.md §2.1-2.2).

Written layout (per demo ``data/demo_<i>``, ``i`` = 0..n-1 in input order)::

    data/@total, @env_args (JSON: env_name, env_version, type, env_kwargs)
    data/demo_<i>/@num_samples         T
    data/demo_<i>/@model_file          MJCF XML (when given)
    data/demo_<i>/@demoforge           JSON: EpisodeMeta, joint/action names, arm -> robot index,
                                       objects, cameras, subtasks, which optional fields exist
    states   (T, n+n | n | 0)          robot qpos ++ qvel (robot-only, not a full MuJoCo state)
    actions  (T, m)                    Episode.action as is (names in @demoforge)
    rewards  (T,)  1.0 at the last step when meta.success, else 0
    dones    (T,)  int, 1 at the last step (robomimic done_mode 1)
    obs/timestamp              (T,)    Episode.time [s]
    obs/robot0_joint_pos|vel   (T, n)  qpos / qvel
    obs/robot<k>_eef_pos       (T, 3)  EE position of arm k [m], world frame
    obs/robot<k>_eef_quat      (T, 4)  EE orientation, **x, y, z, w** (robomimic order)
    obs/robot<k>_gripper_opening (T, 1) opening in [0, 1]
    obs/<obj>_pos, obs/<obj>_quat      object pose (quat x, y, z, w); obs/object = all of them
    obs/<cam>_image            (T, H, W, 3) uint8
    datagen_info/  (attrs env_interface_name, env_interface_type)
        eef_pose (T,4,4)  first arm;  target_pose (T,4,4) = next step's eef_pose (last repeated)
        object_poses/<obj> (T,4,4);  subtask_term_signals/<sig> (T,) 0/1
        gripper_action (T, g) robosuite convention (-1 open, +1 close) = 1 - 2 * opening
    mask/train, mask/valid    demo names as bytes ('S')

Reading a file we wrote restores every Episode field exactly (quaternions back to w, x, y, z;
``meta.provenance`` goes through JSON, so tuples come back as lists and numpy values as numbers).
Foreign robomimic/MimicGen files: demos sorted by integer index; EE from
``datagen_info/eef_pose`` when present (else ``obs/robot<k>_eef_pos|quat``); objects from
``datagen_info/object_poses``; subtasks from ``subtask_term_signals``; gripper opening from
``datagen_info/gripper_action`` (else ``actions[:, -1]``) as ``(1 - a) / 2``; images from
``obs/*_image``; joints from ``obs/robot<k>_joint_pos|vel``; fps from ``env_kwargs.control_freq``
(default 20). Arms are ``"main"`` for a single robot prefix, else the prefix (``robot0`` ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError, SchemaError
from sim.io.atomic import atomic_path, check_output_free, to_jsonable
from sim.io.formats import check_finite, check_unit_quat
from sim.transforms import mat_to_pose, pose_to_mat, quat_angle, wxyz_to_xyzw, xyzw_to_wxyz

log = logging.getLogger(__name__)

_DEMO = re.compile(r"^demo_(\d+)$")
_ARM_KEY = re.compile(r"^(robot\d+(?:_(?:left|right))?)_eef_pos$")
_ENV_ARGS_KEYS = ("env_name", "env_version", "type", "env_kwargs")
ROBOSUITE_TYPE = 1  # robomimic EnvType.ROBOSUITE_TYPE
FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# HDF5 helpers (also used by sim.io.robosuite)


def attr_str(value: Any) -> str:
    """An HDF5 string attribute as str (h5py may return bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def open_hdf5(path: Path) -> h5py.File:
    """Open read-only; h5py's OSError becomes a FormatError naming the file."""
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise FormatError(
            f"{path}: cannot open as HDF5 ({e}); expected a complete HDF5 file "
            "(truncated or not HDF5?)"
        ) from e


@contextlib.contextmanager
def hdf5_errors(path: Path) -> Iterator[None]:
    """Turn h5py's low-level errors on a damaged file into a FormatError naming the file."""
    try:
        yield
    except (OSError, KeyError, RuntimeError) as e:
        raise FormatError(
            f"{path}: HDF5 read failed ({e}); expected an intact file (corrupt or truncated?)"
        ) from e


def demo_names(path: Path, data: h5py.Group, pattern: re.Pattern = _DEMO) -> list[str]:
    """``demo_<int>`` groups of ``data`` sorted by the integer (robomimic's order)."""
    names = [k for k in data if pattern.match(k) and isinstance(data[k], h5py.Group)]
    others = [k for k in data if k not in names]
    if others:
        log.warning("%s: ignoring non-demo entries in 'data': %s", path, others)
    if not names:
        raise FormatError(f"{path}: group 'data' has no demo_<int> groups; expected at least one")
    return sorted(names, key=lambda k: int(pattern.match(k).group(1)))


def read_dataset(
    path: Path,
    group: h5py.Group,
    key: str,
    ndim: int | tuple[int, ...] | None = None,
    rows: int | None = None,
    rows_from: str = "",
) -> np.ndarray:
    """Read ``group[key]`` fully, checking presence, rank, row count and finiteness.

    Raises:
        FormatError: missing, unreadable (truncated file), wrong rank or row count.
        SchemaError: NaN/inf values (message names the row).
    """
    full = f"{group.name.lstrip('/')}/{key}"
    if key not in group:
        raise FormatError(f"{path}: missing dataset '{full}'; expected it in every demo")
    try:
        arr = np.asarray(group[key][()])
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise FormatError(f"{path}: cannot read '{full}' ({e}); file truncated?") from e
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if ndims is not None and arr.ndim not in ndims:
        raise FormatError(
            f"{path}: '{full}' has shape {arr.shape}; expected {' or '.join(map(str, ndims))}-D"
        )
    if rows is not None and (arr.ndim == 0 or arr.shape[0] != rows):
        raise FormatError(
            f"{path}: '{full}' has {arr.shape[0] if arr.ndim else 0} rows; expected {rows} "
            f"({rows_from or 'the demo length'})"
        )
    check_finite(f"{path}: '{full}'", arr)
    return arr


# --------------------------------------------------------------------------------------------
# writer


def _arm_index(ep: Episode) -> dict[str, int]:
    arms = list(ep.ee) + [a for a in ep.gripper if a not in ep.ee]
    return {a: i for i, a in enumerate(arms)}


def _check_env_args(env_args: dict) -> dict:
    if "env_name" not in env_args:
        raise SchemaError(
            f"env_args lacks key 'env_name'; expected a dict with {', '.join(_ENV_ARGS_KEYS)}"
        )
    out = {
        "env_name": str(env_args["env_name"]),
        "env_version": env_args.get("env_version", ""),
        "type": int(env_args.get("type", ROBOSUITE_TYPE)),
        "env_kwargs": dict(env_args.get("env_kwargs", {})),
    }
    out.update({k: v for k, v in env_args.items() if k not in out})
    return out


def write_robomimic(
    episodes: Sequence[Episode],
    path: str | Path,
    env_args: dict,
    *,
    model_xml: str | Sequence[str | None] | None = None,
    valid_fraction: float = 0.1,
    rng: np.random.Generator | None = None,
    env_interface_name: str | None = None,
    env_interface_type: str = "robosuite",
    compress_images: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write episodes as one robomimic/MimicGen HDF5 file, atomically (temp file + rename).

    Args:
        episodes: episodes to write (each is validated first).
        path: output ``.hdf5`` file.
        env_args: robomimic env metadata; ``env_name`` required, ``env_version`` (""),
            ``type`` (1 = robosuite) and ``env_kwargs`` ({}) defaulted.
        model_xml: MJCF XML stored as ``@model_file``: one string for all demos or one per demo.
        valid_fraction: share of demos listed in ``mask/valid`` (the rest in ``mask/train``).
        rng: picks the validation demos; None takes the last ones.
        env_interface_name: MimicGen ``datagen_info@env_interface_name``; default ``MG_<task>``.
        env_interface_type: MimicGen ``datagen_info@env_interface_type``.
        compress_images: gzip the image datasets.
        overwrite: replace an existing file.

    Returns:
        ``path``.

    Raises:
        SchemaError: an episode fails validation or env_args lacks env_name.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    env_args = _check_env_args(env_args)
    episodes = list(episodes)
    for ep in episodes:
        ep.validate()
    xmls = list(model_xml) if isinstance(model_xml, (list, tuple)) else [model_xml] * len(episodes)
    if len(xmls) != len(episodes):
        raise SchemaError(
            f"model_xml has {len(xmls)} entries; expected {len(episodes)} (one per "
            "episode) or a single string"
        )
    check_output_free(path, overwrite)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        total = 0
        for i, (ep, xml) in enumerate(zip(episodes, xmls)):
            total += len(ep)
            _write_demo(
                data.create_group(f"demo_{i}"),
                ep,
                xml,
                env_interface_name,
                env_interface_type,
                compress_images,
            )
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(to_jsonable(env_args))
        names = [f"demo_{i}" for i in range(len(episodes))]
        n_valid = min(int(round(len(names) * valid_fraction)), max(len(names) - 1, 0))
        order = list(rng.permutation(len(names))) if rng is not None else list(range(len(names)))
        valid = sorted(order[len(names) - n_valid :])
        mask = f.create_group("mask")
        _dataset(
            mask, "train", np.array([n for j, n in enumerate(names) if j not in valid], dtype="S")
        )
        _dataset(mask, "valid", np.array([names[j] for j in valid], dtype="S"))
    return path


def _dataset(group: h5py.Group, name: str, data: Any, **kw: Any) -> h5py.Dataset:
    """Create a dataset with a Fletcher-32 checksum (so corruption is caught on read)."""
    arr = np.asarray(data)
    if arr.size:
        kw.setdefault("fletcher32", True)
    return group.create_dataset(name, data=arr, **kw)


def _write_demo(
    g: h5py.Group,
    ep: Episode,
    xml: str | None,
    iface_name: str | None,
    iface_type: str,
    compress_images: bool,
) -> None:
    T = len(ep)
    arms = _arm_index(ep)
    cams = list(ep.images)
    g.attrs["num_samples"] = T
    if xml is not None:
        g.attrs["model_file"] = xml
    g.attrs["demoforge"] = json.dumps(
        to_jsonable(
            {
                "version": FORMAT_VERSION,
                "meta": dataclasses.asdict(ep.meta),
                "joint_names": list(ep.joint_names),
                "action_names": list(ep.action_names),
                "arms": arms,
                "ee": list(ep.ee),
                "gripper": list(ep.gripper),
                "objects": list(ep.objects),
                "cameras": cams,
                "subtasks": list(ep.subtasks),
                "has": {k: getattr(ep, k) is not None for k in ("qpos", "qvel", "action")},
            }
        )
    )
    parts = [a for a in (ep.qpos, ep.qvel) if a is not None]
    _dataset(g, "states", data=np.concatenate(parts, axis=1) if parts else np.zeros((T, 0)))
    _dataset(g, "actions", data=ep.action if ep.action is not None else np.zeros((T, 0)))
    rewards = np.zeros(T)
    if ep.meta.success and T:
        rewards[-1] = 1.0
    dones = np.zeros(T, dtype=np.int64)
    if T:
        dones[-1] = 1
    _dataset(g, "rewards", data=rewards)
    _dataset(g, "dones", data=dones)

    obs = g.create_group("obs")
    _dataset(obs, "timestamp", data=np.asarray(ep.time))
    if ep.qpos is not None:
        _dataset(obs, "robot0_joint_pos", data=ep.qpos)
    if ep.qvel is not None:
        _dataset(obs, "robot0_joint_vel", data=ep.qvel)
    for arm, k in arms.items():
        if arm in ep.ee:
            pose = np.asarray(ep.ee[arm])
            _dataset(obs, f"robot{k}_eef_pos", data=pose[:, :3])
            _dataset(obs, f"robot{k}_eef_quat", data=wxyz_to_xyzw(pose[:, 3:]))
        if arm in ep.gripper:
            _dataset(obs, f"robot{k}_gripper_opening", data=np.asarray(ep.gripper[arm])[:, None])
    for name, pose in ep.objects.items():
        pose = np.asarray(pose)
        _dataset(obs, f"{name}_pos", data=pose[:, :3])
        _dataset(obs, f"{name}_quat", data=wxyz_to_xyzw(pose[:, 3:]))
    if ep.objects:
        _dataset(
            obs,
            "object",
            data=np.concatenate(
                [
                    np.concatenate([p[:, :3], wxyz_to_xyzw(p[:, 3:])], axis=1)
                    for p in map(np.asarray, ep.objects.values())
                ],
                axis=1,
            ),
        )
    for cam in cams:
        kw = {"compression": "gzip", "compression_opts": 4} if compress_images else {}
        _dataset(obs, f"{cam}_image", data=ep.image(cam), **kw)

    dg = g.create_group("datagen_info")
    dg.attrs["env_interface_name"] = iface_name or f"MG_{ep.meta.task}"
    dg.attrs["env_interface_type"] = iface_type
    if ep.ee:
        eef = pose_to_mat(np.asarray(next(iter(ep.ee.values()))))
        _dataset(dg, "eef_pose", data=eef)
        _dataset(dg, "target_pose", data=np.concatenate([eef[1:], eef[-1:]]) if T else eef)
    op = dg.create_group("object_poses")
    for name, pose in ep.objects.items():
        _dataset(op, name, data=pose_to_mat(np.asarray(pose)))
    sig = dg.create_group("subtask_term_signals")
    for name, s in ep.subtasks.items():
        _dataset(sig, name, data=np.asarray(s).astype(np.uint8))
    grip_cols = [j for j, n in enumerate(ep.action_names) if "gripper" in n.lower()]
    if ep.action is not None and grip_cols:
        opening = np.asarray(ep.action)[:, grip_cols]
    elif ep.gripper:
        opening = np.stack([np.asarray(v) for v in ep.gripper.values()], axis=1)
    else:
        opening = None
    if opening is not None:
        _dataset(dg, "gripper_action", data=1.0 - 2.0 * opening)


# --------------------------------------------------------------------------------------------
# reader


def read_robomimic(
    path: str | Path,
    demos: Sequence[int] | None = None,
    lazy_images: bool = True,
    fps: float | None = None,
) -> list[Episode]:
    """Read a robomimic/MimicGen HDF5 file into Episodes (one per ``demo_<i>``, sorted by i).

    Args:
        path: the ``.hdf5`` file.
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
    with open_hdf5(path) as f, hdf5_errors(path):
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise FormatError(
                f"{path}: missing group 'data'; expected robomimic layout (data/demo_<i>/...)"
            )
        data = f["data"]
        if "env_args" not in data.attrs:
            raise FormatError(
                f"{path}: missing attribute 'data/@env_args'; expected JSON with "
                f"{', '.join(_ENV_ARGS_KEYS)}"
            )
        try:
            env_args = json.loads(attr_str(data.attrs["env_args"]))
        except json.JSONDecodeError as e:
            raise FormatError(f"{path}: 'data/@env_args' is not JSON ({e})") from e
        names = demo_names(path, data)
        if demos is not None:
            wanted = {int(d) for d in demos}
            names = [n for n in names if int(_DEMO.match(n).group(1)) in wanted]
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
                ep = _read_ours(path, g, name, actions, lazy_images)
            else:
                ep = _read_foreign(path, g, name, actions, env_args, lazy_images, fps)
            out.append(ep.validate())
    return out


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
    return Episode(
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
        mats = read_dataset(path, dg, "eef_pose", ndim=3, rows=T, rows_from=src)
        pose = mat_to_pose(mats)
        arm = arm_of.get("robot0", "main")
        if arm in ee:
            _check_convention(path, f"data/{name}/obs/robot0_eef_quat", ee[arm], pose)
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
