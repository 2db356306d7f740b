"""A demoforge LeRobot dataset as flat training arrays for behaviour cloning.

Observation features are LeRobot feature keys (``observation.state``, ``observation.ee_pose.<arm>``,
``observation.environment_state``, ``observation.velocity``, optional ``observation.images.<cam>``);
plus derived features (``derived.relative``: object positions relative to each EE and to each
other, :mod:`sim.learn.features`); they are concatenated in the order given. Normalization
statistics come from the dataset's ``meta/stats.json`` (mean/std per feature), computed from the
frames where a feature has no stats entry (derived features).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import FormatError, SchemaError
from sim.io.lerobot import read_lerobot_info
from sim.io.lerobot.features import read_parquet
from sim.learn.features import derive, is_derived, sources

IMAGE_PREFIX = "observation.images."
#: default low-dimensional observation: EE and object poses (position + 6D rotation), object
#: positions relative to each EE and to each other, gripper openings, time since reset (no joint
#: positions: see sim.learn.features).
DEFAULT_OBS = ("derived.poses", "derived.relative", "derived.gripper", "derived.time")


@dataclass(frozen=True)
class FeatureStats:
    """Per-dimension mean and std of one feature (std floored so normalization is finite)."""

    mean: np.ndarray
    std: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureStats:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


@dataclass(frozen=True)
class BCData:
    """Frames of a dataset as arrays.

    Attributes:
        root: dataset directory.
        task: task name (demoforge metadata or the single task string).
        robot: robot name (``robot_type``).
        fps: frame rate [Hz].
        obs_keys: low-dimensional observation feature keys, in concatenation order.
        obs_names: per-key column names (from info.json), used to check a live env matches.
        obs: (N, D) float32 concatenated low-dim observations.
        action: (N, A) float32 actions; ``action_names`` their names.
        episode: (N,) int episode index of each frame; ``starts``/``lengths`` per episode.
        stats: feature key -> FeatureStats (obs keys and "action").
        seeds: seeds the dataset's scenes were reset with (``np.random.default_rng(seed)``
            into ``scene.reset``), so evaluation can hold them out.
        gen_config: the generation config stored by demoforge (task, robot, level,
            control_hz, task_params); empty for foreign datasets.
        images: camera -> (N, H, W, 3) uint8 when image features were requested.
        extra: further feature key -> (N, W) float32 columns requested with ``extra``
            (e.g. ``target.ee_pose.<arm>`` for the EE action space), plus the EE poses.
    """

    root: Path
    task: str
    robot: str | None
    fps: int
    obs_keys: tuple[str, ...]
    obs_names: dict[str, list[str]]
    obs: np.ndarray
    action_names: list[str]
    action: np.ndarray
    episode: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    stats: dict[str, FeatureStats]
    seeds: frozenset[int] = frozenset()
    gen_config: dict[str, Any] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_episodes(self) -> int:
        return len(self.starts)

    def obs_stats(self) -> FeatureStats:
        """Stats of the concatenated observation vector."""
        parts = [self.stats[k] for k in self.obs_keys]
        return FeatureStats(
            np.concatenate([p.mean for p in parts]), np.concatenate([p.std for p in parts])
        )


def expand_keys(patterns: tuple[str, ...] | list[str], features: dict[str, Any]) -> list[str]:
    """Expand ``prefix.*`` patterns against the dataset's feature keys (sorted by key)."""
    out: list[str] = []
    for p in patterns:
        if p.endswith(".*"):
            out += sorted(k for k in features if k.startswith(p[:-1]))
        else:
            out.append(p)
    return out


def _require(features: dict[str, Any], key: str, root: Path, purpose: str) -> None:
    if key not in features:
        have = sorted(k for k in features if k.startswith(("observation", "action")))
        raise SchemaError(
            f"{root / 'meta' / 'info.json'}: the policy needs feature {key!r} ({purpose}) but "
            f"the dataset has none; features present: {have}"
        )


def _stats(root: Path, raw: dict[str, Any], key: str, x: np.ndarray) -> FeatureStats:
    s = raw.get(key)
    if s is not None and "mean" in s and "std" in s:
        mean = np.asarray(s["mean"], np.float32).reshape(-1)
        std = np.asarray(s["std"], np.float32).reshape(-1)
        if mean.shape != (x.shape[1],) or std.shape != (x.shape[1],):
            raise FormatError(
                f"{root / 'meta' / 'stats.json'}: stats of {key!r} have width {mean.shape}, "
                f"the feature has {x.shape[1]} columns"
            )
    else:
        mean, std = x.mean(0), x.std(0)
    return FeatureStats(mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32))


def _matrix(table, key: str, width: int) -> np.ndarray:
    col = table[key].combine_chunks()
    if width == 1 and not hasattr(col.type, "list_size"):
        return col.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, 1)
    return np.asarray(col.flatten().to_numpy(zero_copy_only=False), np.float32).reshape(-1, width)


def load_bc_data(
    root: str | os.PathLike,
    obs_keys: tuple[str, ...] | list[str] = DEFAULT_OBS,
    cameras: tuple[str, ...] | list[str] = (),
    episodes: int | None = None,
    extra: tuple[str, ...] | list[str] = (),
) -> BCData:
    """Load a LeRobot dataset's frames for behaviour cloning.

    Args:
        root: dataset directory (LeRobot v2.x/v3.0; demoforge-written for task/seed metadata).
        obs_keys: observation feature keys; ``prefix.*`` expands to every matching key.
        cameras: camera names whose ``observation.images.<cam>`` frames to load (decoded).
        episodes: use only the first this many episodes (None: all).
        extra: further feature keys (``prefix.*`` patterns) loaded into ``BCData.extra``.

    Raises:
        SchemaError: a needed feature is absent (names the feature and meta/info.json).
    """
    root = Path(root)
    info = read_lerobot_info(root)
    feats = info.features
    keys = expand_keys(tuple(obs_keys), feats)
    base: list[str] = []
    for k in keys:
        for s in sources(k, feats) if is_derived(k) else [k]:
            _require(feats, s, root, f"observation {k}" if s != k else "observation")
            base += [s] if s not in base else []
    extra_keys = []
    for p in extra:
        if p.endswith(".*") and not expand_keys([p], feats):
            _require(feats, p[:-2] + ".<arm>", root, "action target")
        for k in expand_keys([p], feats):
            _require(feats, k, root, "action target")
            extra_keys += [k] if k not in extra_keys else []
    extra_keys += [k for k in feats if k.startswith("observation.ee_pose.") and k not in extra_keys]
    load = list(dict.fromkeys([*base, *extra_keys]))
    _require(feats, "action", root, "action")
    for cam in cameras:
        _require(feats, IMAGE_PREFIX + cam, root, "camera image")
    index = sorted(info.episodes)[: episodes if episodes is not None else None]
    if not index:
        raise SchemaError(f"{root}: the dataset has no episodes to train on")
    files = sorted({info.episodes[i].data_file for i in index})
    cols: dict[str, list[np.ndarray]] = {k: [] for k in [*load, "action", "episode_index"]}
    keep = set(index)
    for f in files:
        table = read_parquet(f, columns=[*load, "action", "episode_index"])
        ep = table["episode_index"].to_numpy()
        mask = np.isin(ep, list(keep))
        cols["episode_index"].append(ep[mask])
        for k in [*load, "action"]:
            width = int(np.prod(feats[k]["shape"]))
            cols[k].append(_matrix(table, k, width)[mask])
    arrays = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.argsort(arrays["episode_index"], kind="stable")
    arrays = {k: v[order] for k, v in arrays.items()}
    epi = arrays["episode_index"].astype(np.int64)
    for k, v in arrays.items():
        if k != "episode_index" and not np.all(np.isfinite(v)):
            row = int(np.argwhere(~np.isfinite(v))[0, 0])
            raise SchemaError(f"{root}: feature {k!r} has NaN/inf at frame {row}")
    names = {k: info.feature_names(k) for k in load}
    for k in keys:
        if is_derived(k):
            arrays[k], names[k] = derive(k, {s: arrays[s] for s in sources(k, feats)}, names)
    stats_path = root / "meta" / "stats.json"
    raw = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    stats = {k: _stats(root, raw, k, arrays[k]) for k in [*keys, "action"]}
    _, starts, lengths = np.unique(epi, return_index=True, return_counts=True)
    dem = info.demoforge or {}
    metas = _metas(root) if dem else []
    task = metas[0].get("task") if metas else (info.tasks[0] if info.tasks else "unknown")
    images = {cam: _images(root, index, cam) for cam in cameras}
    return BCData(
        root=root,
        task=str(task),
        robot=info.robot_type,
        fps=int(info.fps),
        obs_keys=tuple(keys),
        obs_names={k: names[k] for k in keys},
        obs=np.concatenate([arrays[k] for k in keys], axis=1),
        action_names=info.feature_names("action"),
        action=arrays["action"],
        episode=epi,
        starts=starts.astype(np.int64),
        lengths=lengths.astype(np.int64),
        stats=stats,
        seeds=frozenset(s for s in map(_reset_seed, metas) if s is not None),
        gen_config=dict(dem.get("config") or {}),
        images=images,
        extra={k: arrays[k] for k in extra_keys},
    )


def _reset_seed(meta: dict[str, Any]) -> int | None:
    """The seed of the generator an episode's scene was reset with: the ``reset`` stream of
    the attempt (schema 1.1 provenance), else the episode seed."""
    streams = (meta.get("provenance") or {}).get("streams") or {}
    if "reset" in streams:
        return int(streams["reset"])
    return int(meta["seed"]) if meta.get("seed") is not None else None


def _metas(root: Path) -> list[dict[str, Any]]:
    p = root / "meta" / "demoforge" / "episodes.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def _images(root: Path, index: list[int], cam: str) -> np.ndarray:
    from sim.io.lerobot import iter_lerobot

    frames = []
    for ep in iter_lerobot(root, index):
        if cam not in ep.images:
            raise SchemaError(
                f"{root}: episode {ep.meta.source or '?'} has no video for camera {cam!r} "
                f"(feature {IMAGE_PREFIX + cam!r})"
            )
        frames.append(ep.image(cam))
    return np.concatenate(frames).astype(np.uint8)
