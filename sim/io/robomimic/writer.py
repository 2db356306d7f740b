"""robomimic / MimicGen HDF5 writer (layout in :mod:`sim.io.robomimic`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from sim.episode import Episode
from sim.errors import SchemaError
from sim.io.atomic import atomic_path, check_output_free, to_jsonable
from sim.io.hdf5 import dataset
from sim.transforms import pose_to_mat, wxyz_to_xyzw

ENV_ARGS_KEYS = ("env_name", "env_version", "type", "env_kwargs")
ROBOSUITE_TYPE = 1  # robomimic EnvType.ROBOSUITE_TYPE
FORMAT_VERSION = 1

def _arm_index(ep: Episode) -> dict[str, int]:
    arms = list(ep.ee) + [a for a in ep.gripper if a not in ep.ee]
    return {a: i for i, a in enumerate(arms)}


def _check_env_args(env_args: dict) -> dict:
    if "env_name" not in env_args:
        raise SchemaError(
            f"env_args lacks key 'env_name'; expected a dict with {', '.join(ENV_ARGS_KEYS)}"
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
        dataset(
            mask, "train", np.array([n for j, n in enumerate(names) if j not in valid], dtype="S")
        )
        dataset(mask, "valid", np.array([names[j] for j in valid], dtype="S"))
    return path


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
    dataset(g, "states", data=np.concatenate(parts, axis=1) if parts else np.zeros((T, 0)))
    dataset(g, "actions", data=ep.action if ep.action is not None else np.zeros((T, 0)))
    rewards = np.zeros(T)
    if ep.meta.success and T:
        rewards[-1] = 1.0
    dones = np.zeros(T, dtype=np.int64)
    if T:
        dones[-1] = 1
    dataset(g, "rewards", data=rewards)
    dataset(g, "dones", data=dones)

    obs = g.create_group("obs")
    dataset(obs, "timestamp", data=np.asarray(ep.time))
    if ep.qpos is not None:
        dataset(obs, "robot0_joint_pos", data=ep.qpos)
    if ep.qvel is not None:
        dataset(obs, "robot0_joint_vel", data=ep.qvel)
    for arm, k in arms.items():
        if arm in ep.ee:
            pose = np.asarray(ep.ee[arm])
            dataset(obs, f"robot{k}_eef_pos", data=pose[:, :3])
            dataset(obs, f"robot{k}_eef_quat", data=wxyz_to_xyzw(pose[:, 3:]))
        if arm in ep.gripper:
            dataset(obs, f"robot{k}_gripper_opening", data=np.asarray(ep.gripper[arm])[:, None])
    for name, pose in ep.objects.items():
        pose = np.asarray(pose)
        dataset(obs, f"{name}_pos", data=pose[:, :3])
        dataset(obs, f"{name}_quat", data=wxyz_to_xyzw(pose[:, 3:]))
    if ep.objects:
        dataset(
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
        dataset(obs, f"{cam}_image", data=ep.image(cam), **kw)

    dg = g.create_group("datagen_info")
    dg.attrs["env_interface_name"] = iface_name or f"MG_{ep.meta.task}"
    dg.attrs["env_interface_type"] = iface_type
    if ep.ee:
        eef = pose_to_mat(np.asarray(next(iter(ep.ee.values()))))
        dataset(dg, "eef_pose", data=eef)
        dataset(dg, "target_pose", data=np.concatenate([eef[1:], eef[-1:]]) if T else eef)
    op = dg.create_group("object_poses")
    for name, pose in ep.objects.items():
        dataset(op, name, data=pose_to_mat(np.asarray(pose)))
    sig = dg.create_group("subtask_term_signals")
    for name, s in ep.subtasks.items():
        dataset(sig, name, data=np.asarray(s).astype(np.uint8))
    grip_cols = [j for j, n in enumerate(ep.action_names) if "gripper" in n.lower()]
    if ep.action is not None and grip_cols:
        opening = np.asarray(ep.action)[:, grip_cols]
    elif ep.gripper:
        opening = np.stack([np.asarray(v) for v in ep.gripper.values()], axis=1)
    else:
        opening = None
    if opening is not None:
        dataset(dg, "gripper_action", data=1.0 - 2.0 * opening)
