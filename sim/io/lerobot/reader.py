"""LeRobot episodes as :class:`~sim.episode.Episode`: checked columns, lazy images, mapping."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError, FormatError, SchemaError
from sim.io.lerobot.features import (
    ACTION,
    DEFAULT_FEATURES,
    DEMOFORGE_EPISODES_PATH,
    EE_PREFIX,
    ENV_STATE,
    GRIPPER_CMD_PREFIX,
    IMAGE_PREFIX,
    LABEL_PREFIX,
    MUJOCO_STATE,
    STATE,
    SUBTASK_PREFIX,
    SUCCESS,
    TARGET_PREFIX,
    TIMESTAMP_TOL_S,
    VELOCITY,
    _Layout,
    _meta_from_dict,
    arrow_numpy,
    read_parquet,
)
from sim.io.lerobot.info import LeRobotEpisodeRef, LeRobotInfo, _load_jsonl, read_lerobot_info
from sim.io.lerobot.video import VideoClip

log = logging.getLogger(__package__)  # "sim.io.lerobot", as before the split


@dataclass(frozen=True)
class ParquetImages:
    """Lazy loader of an image-dtype feature (PNG/JPEG bytes in the parquet rows).

    Call it to get (T, H, W, 3) uint8; ``column`` is the episode's slice of the struct column
    ``{bytes, path}`` that HF ``datasets.Image()`` writes.
    """

    column: Any
    where: str

    def __call__(self) -> np.ndarray:
        import imageio.v3 as iio

        frames = []
        for k, value in enumerate(self.column.to_pylist()):
            data = value.get("bytes") if isinstance(value, dict) else value
            if not data:
                raise FormatError(f"{self.where}: row {k} has no embedded image bytes")
            img = np.asarray(iio.imread(data))
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=-1)
            frames.append(img[..., :3])
        return np.stack(frames).astype(np.uint8)


def _column(table: pa.Table, name: str, spec: Mapping[str, Any], where: Path) -> np.ndarray:
    """One declared feature column as (T,) or (T, n) numpy, checked against info.json."""
    if name not in table.column_names:
        raise FormatError(
            f"{where}: column {name!r} declared in meta/info.json features is missing; "
            f"columns present: {table.column_names}"
        )
    col = table[name].combine_chunks() if table.num_rows else table[name]
    if col.null_count:
        raise FormatError(f"{where}: column {name!r} has {col.null_count} null values")
    shape = [int(s) for s in spec["shape"]]
    width = int(np.prod(shape))
    dtype = np.dtype(spec["dtype"])
    T = table.num_rows
    if (
        pa.types.is_fixed_size_list(col.type)
        or pa.types.is_list(col.type)
        or pa.types.is_large_list(col.type)
    ):
        if T == 0:
            return np.empty((0, width), dtype)
        lengths = (
            arrow_numpy(col.value_lengths())
            if not pa.types.is_fixed_size_list(col.type)
            else np.full(T, col.type.list_size)
        )
        if np.any(lengths != width):
            k = int(np.argmax(lengths != width))
            raise FormatError(
                f"{where}: column {name!r} has {int(lengths[k])} values at row {k}; "
                f"meta/info.json features[{name!r}]['shape'] is {shape}"
            )
        out = arrow_numpy(col.flatten()).reshape((T, *shape))
    else:
        if shape != [1]:
            raise FormatError(
                f"{where}: column {name!r} holds scalars; meta/info.json "
                f"features[{name!r}]['shape'] is {shape}"
            )
        out = arrow_numpy(col)
    if out.dtype != dtype:
        out = out.astype(dtype)
    return out


def _finite(a: np.ndarray, name: str, where: Path, episode: int) -> np.ndarray:
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        step = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
        raise SchemaError(
            f"{where}: episode {episode} column {name!r} has NaN/inf at step {step}; "
            "expected finite values"
        )
    return a


class _TableCache:
    """Keeps the last parquet file read, so episodes sharing a v3.0 file read it once."""

    def __init__(self, info: LeRobotInfo | None = None) -> None:
        self.info = info
        self.path: Path | None = None
        self.table: pa.Table | None = None
        self.episode_index: np.ndarray | None = None

    def rows(self, path: Path, episode: int) -> pa.Table:
        if path != self.path:
            if not path.is_file():
                raise FormatError(f"{path}: data file missing (episode {episode})")
            if self.info is not None:
                self.info.verify(path)
            try:
                self.table = read_parquet(path)
            except (pa.ArrowException, OSError, ValueError) as e:
                raise FormatError(f"{path}: cannot read parquet ({e})") from e
            if "episode_index" not in self.table.column_names:
                raise FormatError(
                    f"{path}: column 'episode_index' missing; columns present: "
                    f"{self.table.column_names}"
                )
            self.path = path
            self.episode_index = arrow_numpy(self.table["episode_index"])
        idx = np.flatnonzero(self.episode_index == episode)
        if len(idx) and (idx[-1] - idx[0] + 1 != len(idx)):
            raise FormatError(f"{path}: rows of episode {episode} are not contiguous")
        return self.table.slice(int(idx[0]), len(idx)) if len(idx) else self.table.slice(0, 0)


def read_lerobot_columns(
    root: str | os.PathLike, episode: int, info: LeRobotInfo | None = None
) -> dict[str, np.ndarray]:
    """Raw per-frame columns of one episode: every non-video feature -> (T,) or (T, n) array.

    Use :meth:`LeRobotInfo.feature_names` for the column names of vector features (e.g. to map a
    foreign robot's joints when retargeting).
    """
    info = info or read_lerobot_info(root)
    ref = _episode_ref(info, episode)
    return _episode_columns_read(info, ref, _TableCache(info))[0]


def _episode_ref(info: LeRobotInfo, episode: int) -> LeRobotEpisodeRef:
    if episode not in info.episodes:
        raise ConfigError(
            f"{info.root}: no episode {episode}; the dataset has {len(info.episodes)} episodes "
            f"(indices {min(info.episodes, default=None)}..{max(info.episodes, default=None)})"
        )
    return info.episodes[episode]


def _episode_columns_read(
    info: LeRobotInfo, ref: LeRobotEpisodeRef, cache: _TableCache
) -> tuple[dict[str, np.ndarray], dict[str, ParquetImages]]:
    """Numeric/bool columns of one episode as numpy, and lazy loaders of image-dtype columns."""
    table = cache.rows(ref.data_file, ref.index)
    where = ref.data_file
    if table.num_rows != ref.length:
        raise FormatError(
            f"{where}: episode {ref.index} has {table.num_rows} rows; the episode metadata "
            f"says length {ref.length}"
        )
    cols = {
        name: _column(table, name, spec, where)
        for name, spec in info.features.items()
        if spec["dtype"] not in ("video", "image", "string", "language")
    }
    for name in DEFAULT_FEATURES:
        if name not in cols:
            raise FormatError(f"{where}: default feature {name!r} missing from the columns")
    fi = cols["frame_index"]
    if not np.array_equal(fi, np.arange(ref.length)):
        k = int(np.argmax(fi != np.arange(ref.length)))
        raise FormatError(
            f"{where}: episode {ref.index} column 'frame_index' is {int(fi[k])} at row {k}; "
            f"expected 0..{ref.length - 1} in order"
        )
    ts = cols["timestamp"].astype(np.float64)
    err = np.abs(ts - fi / info.fps)
    if np.any(err > TIMESTAMP_TOL_S):
        k = int(np.argmax(err > TIMESTAMP_TOL_S))
        raise FormatError(
            f"{where}: episode {ref.index} column 'timestamp' is {float(ts[k])!r} at frame {k}; "
            f"expected frame_index/fps = {k / info.fps!r} (tolerance {TIMESTAMP_TOL_S} s)"
        )
    images = {}
    for name, spec in info.features.items():
        if spec["dtype"] == "image":
            if name not in table.column_names:
                raise FormatError(
                    f"{where}: column {name!r} declared in meta/info.json features is missing; "
                    f"columns present: {table.column_names}"
                )
            images[name] = ParquetImages(table[name], f"{where} column {name!r}")
    return cols, images


def iter_lerobot(
    root: str | os.PathLike, episodes: Iterable[int] | None = None
) -> Iterator[Episode]:
    """Yield Episodes of a LeRobot v2.x/v3.0 dataset (see :func:`read_lerobot`)."""
    info = read_lerobot_info(root)
    indices = list(info.episodes) if episodes is None else [int(e) for e in episodes]
    refs = [_episode_ref(info, e) for e in indices]
    metas = _demoforge_metas(info) if info.demoforge is not None else {}
    missing = info.missing_videos
    if missing:
        log.warning(
            "%s: video files missing for %d of %d episodes (e.g. episode %d: %s); those "
            "episodes have no images for these cameras",
            info.root,
            len(missing),
            len(info.episodes),
            next(iter(missing)),
            missing[next(iter(missing))],
        )
    cache = _TableCache(info)
    for ref in refs:
        cols, images = _episode_columns_read(info, ref, cache)
        if info.demoforge is not None:
            yield _own_episode(info, ref, cols, metas)
        else:
            ep = _foreign_episode(info, ref, cols)
            ep.images.update({_camera(k): v for k, v in images.items()})
            yield ep


def read_lerobot(root: str | os.PathLike, episodes: Iterable[int] | None = None) -> list[Episode]:
    """Read a LeRobot dataset (v2.0/v2.1/v3.0, auto-detected) as Episodes.

    Datasets written by :class:`LeRobotWriter` are inverted exactly (float32 arrays as stored,
    full EpisodeMeta). Foreign datasets map ``observation.state`` -> ``qpos`` (joint names from
    info.json), ``observation.velocity`` -> ``qvel``, ``action`` -> ``action``; meta.task from
    the task table, meta.robot from ``robot_type``, meta.success None (or from ``next.success``),
    meta.source ``"<root>#<episode_index>"``; meta.provenance["lerobot"] records the version,
    feature names and which fields/videos are missing. Raw columns: :func:`read_lerobot_columns`.

    Images are lazy: ``Episode.images[cam]`` is a :class:`VideoClip` (callable returning
    (T, H, W, 3) uint8), present only where the video file exists.

    Args:
        root: dataset directory.
        episodes: episode indices to read (default: all, in index order).

    Raises:
        FormatError: missing/invalid metadata, unknown version, missing declared column, wrong
            width, row count different from the episode length, timestamps off the k/fps grid.
        SchemaError: NaN/inf in a mapped column (message names the step).
        ConfigError: a requested episode index does not exist.
    """
    return list(iter_lerobot(root, episodes))


def _camera(key: str) -> str:
    return key[len(IMAGE_PREFIX) :] if key.startswith(IMAGE_PREFIX) else key


def _clips(info: LeRobotInfo, ref: LeRobotEpisodeRef) -> dict[str, VideoClip]:
    def digest(path: Path) -> str | None:
        try:
            return info.checksums.get(path.relative_to(info.root).as_posix())
        except ValueError:
            return None

    return {
        _camera(key): VideoClip(
            path=path, from_timestamp=t0, length=ref.length, fps=info.fps, sha256=digest(path)
        )
        for key, (path, t0) in ref.videos.items()
    }


def _signal(v: np.ndarray, name: str, df: Any, episode: int) -> np.ndarray:
    """A subtask signal column as bool: 0.0/1.0 floats (bool in datasets before 2026-12-02)."""
    v = v.reshape(-1)
    bad = np.flatnonzero(~np.isin(v, (0, 1))) if v.dtype != bool else ()
    if len(bad):
        raise FormatError(
            f"{df}: column {name!r} of episode {episode} holds {v[bad[0]].item()!r}; a subtask "
            "signal is 0 or 1"
        )
    return v.astype(bool)


def _demoforge_metas(info: LeRobotInfo) -> dict[int, dict[str, Any]]:
    rel = info.demoforge.get("episodes_metadata", DEMOFORGE_EPISODES_PATH)
    info.verify(info.root / rel)
    rows = _load_jsonl(info.root / rel)
    return {int(r.pop("episode_index")): r for r in rows}


def _own_episode(
    info: LeRobotInfo,
    ref: LeRobotEpisodeRef,
    cols: dict[str, np.ndarray],
    metas: dict[int, dict[str, Any]],
) -> Episode:
    where = info.root / "meta" / "info.json"
    layout = _Layout.from_dict(info.demoforge.get("layout", {}), f"{where} key 'demoforge'")
    if ref.index not in metas:
        raise FormatError(
            f"{info.root / DEMOFORGE_EPISODES_PATH}: no entry for episode_index {ref.index}"
        )
    meta = _meta_from_dict(metas[ref.index])
    df = ref.data_file

    def get(name: str) -> np.ndarray:
        if name not in cols:
            raise FormatError(
                f"{where}: features lacks {name!r}, which the 'demoforge' layout requires"
            )
        return _finite(cols[name], name, df, ref.index)

    T = ref.length

    def vec(name: str) -> np.ndarray:  # (T, n) even when n == 1 (stored as a scalar column)
        return np.ascontiguousarray(get(name).reshape(T, -1))

    ep = Episode(meta=meta, time=np.arange(T) / info.fps)
    n = len(layout.joint_names) if layout.has_qpos else 0
    state_names = layout.state_names()
    if state_names:
        state = vec(STATE)
        if state.shape[1] != len(state_names):
            raise FormatError(
                f"{df}: column {STATE!r} has width {state.shape[1]}; layout expects "
                f"{len(state_names)} ({state_names})"
            )
        if layout.has_qpos:
            ep.qpos = np.ascontiguousarray(state[:, :n])
        ep.gripper = {
            a: np.ascontiguousarray(state[:, n + i]) for i, a in enumerate(layout.grippers)
        }
    ep.joint_names = list(layout.joint_names)
    if layout.has_qvel:
        ep.qvel = vec(VELOCITY)
    ep.action_names = list(layout.action_names)
    if layout.has_action:
        ep.action = vec(ACTION)
    ep.ee = {a: get(EE_PREFIX + a) for a in layout.arms}
    if layout.objects:
        env = vec(ENV_STATE)
        ep.objects = {
            o: np.ascontiguousarray(env[:, 7 * i : 7 * i + 7]) for i, o in enumerate(layout.objects)
        }
    ep.subtasks = {
        s: _signal(get(SUBTASK_PREFIX + s), SUBTASK_PREFIX + s, df, ref.index)
        for s in layout.subtasks
    }
    ep.target = {a: vec(TARGET_PREFIX + a) for a in layout.targets}
    ep.gripper_cmd = {
        a: np.ascontiguousarray(get(GRIPPER_CMD_PREFIX + a).reshape(T)) for a in layout.gripper_cmds
    }
    labels = info.demoforge.get("labels", {})
    for group, arms in (("segment", layout.segments), ("segment_ref", layout.segment_refs)):
        table = np.asarray(labels.get(group, []), dtype=str)
        out = {}
        for a in arms:
            name = LABEL_PREFIX[group] + a
            ids = get(name).reshape(T)
            if T and (ids.min() < 0 or ids.max() >= len(table)):
                raise FormatError(
                    f"{df}: column {name!r} holds ids {int(ids.min())}..{int(ids.max())}; the "
                    f"label table demoforge.labels.{group} in {where} has {len(table)} entries"
                )
            out[a] = table[ids] if T else np.array([], str)
        setattr(ep, group, out)
    if layout.state_dim is not None:
        ep.state = vec(MUJOCO_STATE)
        ep.state_spec = layout.state_spec
    ep.arm_joints = {a: list(j) for a, j in layout.arm_joints.items()}
    ep.images = dict(_clips(info, ref))
    return ep


def _foreign_episode(
    info: LeRobotInfo, ref: LeRobotEpisodeRef, cols: dict[str, np.ndarray]
) -> Episode:
    df = ref.data_file
    task = ref.tasks[0] if ref.tasks else ""
    if not task and "task_index" in cols and len(cols["task_index"]):
        ti = int(cols["task_index"][0])
        task = info.tasks[ti] if 0 <= ti < len(info.tasks) else ""
    success = None
    if SUCCESS in cols:
        success = bool(np.any(cols[SUCCESS]))
    missing = ["ee", "gripper", "objects", "subtasks"]
    ep = Episode(
        meta=EpisodeMeta(
            task=task,
            robot=info.robot_type or "unknown",
            fps=float(info.fps),
            source=f"{info.root}#{ref.index}",
            success=success,
            instruction=task,
        ),
        time=np.arange(ref.length) / info.fps,
    )
    if STATE in cols:
        ep.qpos = _finite(cols[STATE].reshape(ref.length, -1), STATE, df, ref.index)
        ep.joint_names = info.feature_names(STATE)
    else:
        missing.append("qpos")
    if (
        VELOCITY in cols
        and STATE in cols
        and info.features[VELOCITY]["shape"] == info.features[STATE]["shape"]
    ):
        ep.qvel = _finite(cols[VELOCITY].reshape(ref.length, -1), VELOCITY, df, ref.index)
    else:
        missing.append("qvel")
    if ACTION in cols:
        ep.action = _finite(cols[ACTION].reshape(ref.length, -1), ACTION, df, ref.index)
        ep.action_names = info.feature_names(ACTION)
    else:
        missing.append("action")
    ep.images = dict(_clips(info, ref))
    if not any(v["dtype"] in ("video", "image") for v in info.features.values()):
        missing.append("images")
    ep.meta.provenance["lerobot"] = {
        "root": str(info.root),
        "codebase_version": info.codebase_version,
        "episode_index": ref.index,
        "tasks": list(ref.tasks),
        "feature_names": {
            k: info.feature_names(k)
            for k, v in info.features.items()
            if v["dtype"] not in ("video", "image", "string", "language")
            and k not in DEFAULT_FEATURES
        },
        "missing_fields": missing,
        "missing_videos": list(ref.missing_videos),
    }
    return ep
