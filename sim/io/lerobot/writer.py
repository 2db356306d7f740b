"""LeRobot v3.0 writer: stage episodes atomically, then merge them into the v3.0 layout."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.episode import FEATURES, SCHEMA_VERSION, Episode, EpisodeMeta
from sim.errors import ConfigError, FormatError, SchemaError
from sim.io.atomic import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    check_free_space,
    check_output_free,
    json_digest,
    output_errors,
    publish_dir,
    sha256_file,
    to_jsonable,
)
from sim.io.lerobot.features import (
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_FEATURES,
    DEMOFORGE_DATASET_PATH,
    DEMOFORGE_EPISODES_PATH,
    EPISODES_PATH,
    IMAGE_PREFIX,
    INTEGRITY_KEY,
    LABEL_PREFIX,
    TIMESTAMP_TOL_S,
    VIDEO_PATH,
    _episode_columns,
    _feature_map,
    _features,
    _Layout,
    _meta_dict,
    _meta_from_dict,
    _schema,
    _table,
    arrow_numpy,
    dictionary_columns,
    label_ids,
    read_parquet,
)
from sim.io.lerobot.stats import (
    _aggregate_stats,
    _image_stats,
    numeric_stats_many,
)
from sim.io.lerobot.stream import EncodedVideo
from sim.io.lerobot.video import VideoOptions, _concat_mp4, _encode_mp4
from sim.io.writer import StagedWriter, Staging, resume_mismatch

log = logging.getLogger(__package__)  # "sim.io.lerobot", as before the split

_STAGE_FORMAT = "demoforge-lerobot-staging/1"
_EP_STEM = "episode_{:06d}"
_MB = 1024**2
MODEL_PATH = "meta/demoforge/model.xml"
_LABEL_FIELDS = {"segment": "segments", "segment_ref": "segment_refs"}
_RESERVED = (
    "meta/info.json",
    "meta/stats.json",
    "meta/tasks.parquet",
    DEMOFORGE_DATASET_PATH,
    DEMOFORGE_EPISODES_PATH,
    MODEL_PATH,
)


def _check_episode(ep: Episode, fps: int | None, layout: _Layout | None, index: int) -> int:
    """Validate ``ep`` for writing; return its integer fps. Raises SchemaError naming the field."""
    src = f"episode {index} ({ep.meta.source})"
    try:
        ep.validate()
    except SchemaError as e:
        raise SchemaError(f"episode {index}: {e}") from e
    if len(ep) == 0:
        raise SchemaError(f"{src}: has no steps; expected T >= 1")
    f = float(ep.meta.fps)
    if not f.is_integer():
        raise SchemaError(f"{src}: meta.fps is {ep.meta.fps}; LeRobot v3.0 needs an integer fps")
    ep_fps = int(f)
    if fps is not None and ep_fps != fps:
        raise SchemaError(f"{src}: meta.fps is {ep_fps}, but the dataset's fps is {fps}")
    expected = np.arange(len(ep)) / ep_fps
    err = np.abs(np.asarray(ep.time, dtype=np.float64) - expected)
    if np.any(err > TIMESTAMP_TOL_S):
        k = int(np.argmax(err > TIMESTAMP_TOL_S))
        raise SchemaError(
            f"{src}: 'time' at step {k} is {float(ep.time[k])!r} s; LeRobot timestamps must be "
            f"frame_index/fps = {float(expected[k])!r} s (tolerance {TIMESTAMP_TOL_S} s)"
        )
    if not (ep.meta.instruction or ep.meta.task):
        raise SchemaError(f"{src}: meta.task and meta.instruction are empty; need a task string")
    for group in ("ee", "objects", "subtasks", "images", "gripper"):
        for key in getattr(ep, group):
            if "/" in key or not key:
                raise SchemaError(
                    f"{src}: {group} key {key!r} is not a valid LeRobot feature name part "
                    "(non-empty, no '/')"
                )
    new = _Layout.of(ep)
    if layout is not None:
        for f_ in dataclasses.fields(_Layout):
            a, b = getattr(layout, f_.name), getattr(new, f_.name)
            if f_.name == "cameras":
                a, b = sorted(a), sorted(b)
            if a != b:
                raise SchemaError(
                    f"{src}: {f_.name} is {b!r}, but the dataset's first episode has {a!r}; "
                    "all episodes of one LeRobot dataset share one feature schema"
                )
    return ep_fps


def _reusable(v: Any, fps: int, video: dict[str, Any], length: int, src: str, cam: str) -> bool:
    """True if ``v`` is a worker-encoded mp4 the writer can move in as is (same fps/options)."""
    if not isinstance(v, EncodedVideo):
        return False
    if v.length != length:
        raise SchemaError(f"{src}: images[{cam!r}] holds {v.length} frames, expected T={length}")
    if v.height % 2 or v.width % 2:
        raise SchemaError(
            f"{src}: images[{cam!r}] is {v.height}x{v.width}; yuv420p video needs even sizes"
        )
    if not Path(v.path).is_file():
        raise SchemaError(f"{src}: images[{cam!r}] video {v.path} is missing")
    return v.fps == fps and v.video == video


def _frames(ep: Episode, cam: str, index: int) -> np.ndarray:
    """Frames of one camera without caching a lazy loader's result in the caller's Episode."""
    frames = ep.images[cam]
    frames = np.asarray(frames() if callable(frames) else frames)
    src = f"episode {index} ({ep.meta.source})"
    if frames.ndim != 4 or frames.shape[0] != len(ep) or frames.shape[-1] != 3:
        raise SchemaError(
            f"{src}: images[{cam!r}] must be (T={len(ep)}, H, W, 3), got {frames.shape}"
        )
    if frames.dtype != np.uint8:
        raise SchemaError(f"{src}: images[{cam!r}] must be uint8, got {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise SchemaError(
            f"{src}: images[{cam!r}] is {frames.shape[1]}x{frames.shape[2]}; "
            "yuv420p video needs even height and width"
        )
    return frames


@dataclass
class _Staged:
    """One staged episode as recorded in its commit marker."""

    index: int
    length: int
    task: str
    dataset_from_index: int
    meta: dict[str, Any]
    stats: dict[str, dict[str, Any]]
    labels: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # local label tables
    bytes: int = 0  # staged table + mp4 sizes


def write_ipc(table: pa.Table, path: Path) -> None:
    """Stage ``table`` as an Arrow IPC file (lz4): 2.5x faster to write and 4x faster to read
    back at finalize than parquet, and no larger; the dataset's parquet is written once, at
    finalize."""
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with (
        pa.OSFile(str(path), "wb") as sink,
        pa.ipc.new_file(sink, table.schema, options=options) as w,
    ):
        w.write_table(table)


def read_staged(path: Path) -> pa.Table:
    """A staged episode table (Arrow IPC, or parquet from an earlier release's staging)."""
    if path.suffix == ".parquet":
        return read_parquet(path)
    with pa.OSFile(str(path), "rb") as src:
        return pa.ipc.open_file(src).read_all()


class LeRobotWriter(StagedWriter):
    """Write Episodes as a LeRobot v3.0 dataset, atomically and resumably.

    Usage::

        with LeRobotWriter("out/ds", config=cfg) as w:      # finalizes on a clean exit
            for ep in episodes:
                w.add(ep)

    Each :meth:`add` stages one episode in ``<root>.partial/episodes/`` (memory stays one episode);
    :meth:`finalize` merges them into the v3.0 layout and renames to ``<root>``. After a crash,
    ``LeRobotWriter(root, resume=True)`` keeps the staged episodes (see :attr:`num_staged`).

    Args:
        root: final dataset directory.
        fps: frame rate [Hz]; default: the first episode's ``meta.fps`` (must be an integer).
        robot_type: info.json ``robot_type``; default: the first episode's ``meta.robot``.
        config: resolved run configuration (JSON-able), stored in info.json["demoforge"].
        overwrite: replace an existing ``<root>`` and discard an existing ``<root>.partial``.
        resume: continue an existing ``<root>.partial`` instead of refusing it.
        video: H.264 encoder settings.
        chunks_size: max files per ``chunk-XXX`` directory.
        data_files_size_in_mb: start a new data parquet past this size [MiB].
        video_files_size_in_mb: start a new mp4 past this size [MiB].
        model_xml: MJCF XML of the scene, saved as ``meta/demoforge/model.xml`` so any step can
            be restored from ``observation.mujoco_state`` (``MjModel.from_xml_string`` +
            ``mj_setState``).

    Raises:
        OutputExistsError: ``<root>`` exists (without ``overwrite``), or ``<root>.partial`` exists
            without ``resume``/``overwrite``.
        ConfigError: resuming with fps/robot_type/config/video/sizes that differ from the staged.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        fps: int | None = None,
        robot_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        resume: bool = False,
        video: VideoOptions | None = None,
        chunks_size: int = 1000,
        data_files_size_in_mb: float = 100,
        video_files_size_in_mb: float = 200,
        model_xml: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.overwrite = overwrite
        for name, v in (
            ("chunks_size", chunks_size),
            ("data_files_size_in_mb", data_files_size_in_mb),
            ("video_files_size_in_mb", video_files_size_in_mb),
        ):
            if not v > 0:
                raise ConfigError(f"LeRobotWriter: {name} must be > 0, got {v}")
        if video is not None and video.threads < 1:
            raise ConfigError(f"LeRobotWriter: video.threads must be >= 1, got {video.threads}")
        requested = {
            "fps": fps,
            "robot_type": robot_type,
            "config": to_jsonable(dict(config)) if config is not None else None,
            "video": dataclasses.asdict(video) if video is not None else None,
            "chunks_size": chunks_size,
            "data_files_size_in_mb": data_files_size_in_mb,
            "video_files_size_in_mb": video_files_size_in_mb,
        }
        if model_xml is not None and not isinstance(model_xml, str):
            raise ConfigError(
                "LeRobotWriter: model_xml must be an MJCF XML string, got "
                f"{type(model_xml).__name__}"
            )
        self._model_xml = model_xml
        self._stage = Staging(
            self.root,
            overwrite=overwrite,
            resume=resume,
            kind="LeRobot",
            count_staged=lambda p: len(list((p / "episodes").glob("episode_*.json"))),
        )
        self.partial = self._stage.partial
        self._episodes_dir = self.partial / "episodes"
        self._state_path = self.partial / "writer.json"
        self._staged: list[_Staged] = []
        self._state: dict[str, Any] | None = None
        self._requested = requested
        self._finalized = False
        if self._stage.published:
            return
        if self._stage.resumed:
            self._load_staged(requested)
        with output_errors(self.partial, what="the LeRobot staging folder"):
            self._episodes_dir.mkdir(parents=True, exist_ok=True)

    # -- staging ------------------------------------------------------------------------------

    def stage_file(self, relpath: str, data: bytes) -> Path:
        """Stage ``<root>/<relpath>`` (e.g. ``meta/demoforge_report.json``), published with data.

        Raises:
            ConfigError: ``relpath`` is absolute, has ``..``, or names a file the writer makes.
        """
        if not self.published:  # already published: its files are there
            self._check_open()
        if relpath.startswith(("data/", "videos/")) or relpath in _RESERVED:
            raise ConfigError(
                f"stage_file path {relpath!r} would replace a LeRobot dataset file; use e.g. "
                "'meta/demoforge_report.json'"
            )
        return self._stage.stage_file(relpath, data)

    @property
    def staged_meta(self) -> list[EpisodeMeta]:
        """EpisodeMeta of each staged episode (e.g. the seeds already done, when resuming)."""
        return [_meta_from_dict(s.meta) for s in self._staged]

    @property
    def fps(self) -> int | None:
        """Dataset frame rate [Hz], known once the first episode is staged (or given)."""
        return self._state["fps"] if self._state else self._requested["fps"]

    def _load_staged(self, requested: dict[str, Any]) -> None:
        if self._state_path.exists():
            state = json.loads(self._state_path.read_text())
            if state.get("format") != _STAGE_FORMAT:
                raise FormatError(
                    f"{self._state_path}: key 'format' is {state.get('format')!r}; "
                    f"expected {_STAGE_FORMAT!r}"
                )
            for key, value in requested.items():
                if value is not None and key in state and state[key] != value:
                    raise resume_mismatch(self.partial, key, state[key], value, self._state_path)
            self._state = state
        i = 0
        while (marker := self._episodes_dir / f"{_EP_STEM.format(i)}.json").exists():
            d = json.loads(marker.read_text())
            self._staged.append(_Staged(**d))
            i += 1
        if self._staged and self._state is None:
            raise FormatError(f"{self._state_path}: missing, but {i} episodes are staged")
        if not self._staged:  # the schema of an episode that never committed is not binding
            self._state = None
            self._state_path.unlink(missing_ok=True)
        # Remove leftovers of an episode that crashed mid-staging, and any half-built dataset.
        for p in self._episodes_dir.glob("episode_*"):
            m = re.match(r"episode_(\d+)", p.name)
            if m and int(m.group(1)) >= i:
                p.unlink()
        for p in self._episodes_dir.glob(".*.tmp*"):  # temp files of interrupted atomic writes
            p.unlink()
        log.info("%s: resuming with %d staged episodes", self.partial, len(self._staged))

    def _init_state(self, ep: Episode, fps: int, cameras: dict[str, list[int]]) -> None:
        req = self._requested
        layout = _Layout.of(ep, cameras)
        video = req["video"] or dataclasses.asdict(VideoOptions())
        self._state = {
            "format": _STAGE_FORMAT,
            "fps": fps,
            "robot_type": req["robot_type"] if req["robot_type"] is not None else ep.meta.robot,
            "config": req["config"] or {},
            "video": video,
            "chunks_size": req["chunks_size"],
            "data_files_size_in_mb": req["data_files_size_in_mb"],
            "video_files_size_in_mb": req["video_files_size_in_mb"],
            "layout": dataclasses.asdict(layout),
        }
        with output_errors(self.partial, what="the writer state"):
            atomic_write_json(self._state_path, self._state)

    def _paths(self, index: int) -> tuple[Path, Path, Callable[[str], Path]]:
        """Commit marker, staged table (Arrow IPC) and per-camera mp4 of episode ``index``."""
        stem = self._episodes_dir / _EP_STEM.format(index)
        return (
            stem.with_suffix(".json"),
            stem.with_suffix(".arrow"),
            lambda cam: stem.with_name(f"{stem.name}.{cam}.mp4"),
        )

    def _staged_table_path(self, index: int) -> Path:
        """Episode ``index``'s staged table: ``.arrow``, or ``.parquet`` in a staging folder
        of an earlier release (resumed as it is)."""
        path = self._paths(index)[1]
        old = path.with_suffix(".parquet")
        return old if not path.exists() and old.exists() else path

    def add(self, episode: Episode) -> int:
        """Validate and stage one episode; return its ``episode_index``.

        Raises:
            SchemaError: the episode is invalid (shape, NaN, non-integer fps, time != k/fps) or its
                fields/cameras/names differ from the dataset's first episode. Nothing is staged.
        """
        self._check_open()
        index = self.num_staged
        state_path = str(self._state_path)
        layout = _Layout.from_dict(self._state["layout"], state_path) if self._state else None
        fps = _check_episode(episode, self.fps, layout, index)
        video_req = self._state["video"] if self._state else self._requested["video"]
        video_req = video_req or dataclasses.asdict(VideoOptions())
        encoded = {
            cam: v
            for cam, v in episode.images.items()
            if _reusable(v, fps, video_req, len(episode), f"episode {index}", cam)
        }
        frames = {cam: _frames(episode, cam, index) for cam in episode.images if cam not in encoded}
        sizes = {c: list(f.shape[1:3]) for c, f in frames.items()}
        sizes.update({c: [v.height, v.width] for c, v in encoded.items()})
        if self._state is None:
            self._init_state(episode, fps, sizes)
            layout = _Layout.from_dict(self._state["layout"], state_path)
        for cam, (h, w) in layout.cameras.items():
            if sizes[cam] != [h, w]:
                raise SchemaError(
                    f"episode {index} ({episode.meta.source}): images[{cam!r}] frames are "
                    f"{sizes[cam][0]}x{sizes[cam][1]}, but the dataset's first "
                    f"episode has {h}x{w}"
                )
        video = VideoOptions(**self._state["video"])
        task = episode.meta.instruction or episode.meta.task
        tasks = self._tasks()
        task_index = tasks.index(task) if task in tasks else len(tasks)
        start = sum(s.length for s in self._staged)
        cols = _episode_columns(episode, layout)
        cols_numeric = dict(cols)  # label ids get their stats at finalize, once remapped
        local: dict[str, list[str]] = {}  # remapped to the dataset's label tables at finalize
        for group, prefix in LABEL_PREFIX.items():
            table_ = local.setdefault(group, [])
            for arm in getattr(layout, _LABEL_FIELDS[group]):
                cols[prefix + arm] = label_ids(getattr(episode, group)[arm], table_)
        table = _table(cols, _schema(_features(layout, fps, video)), fps, index, start, task_index)
        stats = numeric_stats_many(
            {**cols_numeric, **{k: arrow_numpy(table[k]) for k in DEFAULT_FEATURES}}
        )
        marker, staged_table, mp4 = self._paths(index)
        need = sum(np.asarray(f).nbytes for f in frames.values()) // 10 + table.nbytes
        try:
            with output_errors(self.partial, need, f"episode {index}"):
                with atomic_path(staged_table) as tmp:
                    write_ipc(table, tmp)
                for cam, fr in frames.items():
                    _encode_mp4(mp4(cam), fr, fps, video)
                    stats[IMAGE_PREFIX + cam] = _image_stats(fr)
                for cam, v in encoded.items():  # encoded by the worker: move, don't re-encode
                    os.replace(v.path, mp4(cam))
                    stats[IMAGE_PREFIX + cam] = v.stats
                size = staged_table.stat().st_size + sum(
                    mp4(c).stat().st_size for c in episode.images
                )
                staged = _Staged(
                    index=index,
                    length=len(episode),
                    task=task,
                    dataset_from_index=start,
                    meta=_meta_dict(episode.meta),
                    stats=to_jsonable(stats),
                    labels=local,
                    bytes=size,
                )
                record = {f.name: getattr(staged, f.name) for f in dataclasses.fields(staged)}
                atomic_write_json(marker, record, indent=None)  # the commit
        except BaseException:
            if index == 0:
                self._state = None
                self._state_path.unlink(missing_ok=True)
            raise
        self._staged.append(staged)
        return index

    def _tasks(self) -> list[str]:
        tasks: list[str] = []
        for s in self._staged:
            if s.task not in tasks:
                tasks.append(s.task)
        return tasks

    # -- finalize -----------------------------------------------------------------------------

    def finalize(self) -> Path:
        """Merge the staged episodes into the v3.0 layout at ``root``; return ``root``.

        Needs free space of about the staged size again (parquets and videos are merged into new
        files before the staging copies are removed); checked first. Returns at once when an
        interrupted run already published.

        Raises:
            SchemaError: no episode was added.
            OutputExistsError: ``root`` appeared meanwhile and ``overwrite`` is False.
            OutputWriteError: not enough free space, or the location is not writable.
        """
        if self._stage.published:
            self._finalized = True
            return self.root
        self._check_open()
        if not self._staged:
            raise SchemaError(f"{self.root}: no episodes were added; nothing to finalize")
        check_output_free(self.root, self.overwrite)
        staged = sum(s.bytes for s in self._staged) + self._stage.staged_bytes()
        need = int(staged * 1.05) + _MB
        check_free_space(
            self.partial,
            need,
            f"finalizing {self.root} (staged episodes are merged into the final files, about "
            "the dataset size again)",
        )
        with output_errors(self.partial, need, f"the final layout of {self.root}"):
            self._build()
            root = self._stage.publish(publish_dir, len(self._staged))
        self._finalized = True
        return root

    def _build(self) -> None:
        st = self._state
        fps, chunks_size = st["fps"], st["chunks_size"]
        layout = _Layout.from_dict(st["layout"], str(self._state_path))
        video = VideoOptions(**st["video"])
        features = _features(layout, fps, video)
        build = self._stage.fresh_build()
        rows: list[dict[str, Any]] = [
            {"episode_index": s.index, "tasks": [s.task], "length": s.length} for s in self._staged
        ]
        # dataset label tables (first-seen order over episodes) and local -> dataset id maps
        labels: dict[str, list[str]] = {g: [] for g in LABEL_PREFIX}
        remap: list[dict[str, np.ndarray]] = []
        for s in self._staged:
            remap.append({g: label_ids(s.labels.get(g, []), labels[g]) for g in LABEL_PREFIX})
        label_cols = {
            LABEL_PREFIX[g] + arm: g
            for g in LABEL_PREFIX
            for arm in getattr(layout, _LABEL_FIELDS[g])
        }
        episode_stats = [dict(s.stats) for s in self._staged]

        # data parquet(s): one row group per episode
        schema = _schema(features)
        groups = _rollover(
            [self._staged_table_path(s.index).stat().st_size for s in self._staged],
            st["data_files_size_in_mb"] * _MB,
            chunks_size,
        )
        for (chunk, file), members in groups.items():
            path = build / DATA_PATH.format(chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            with pq.ParquetWriter(
                path, schema, compression="snappy", use_dictionary=dictionary_columns(schema)
            ) as w:
                for i in members:
                    s = self._staged[i]
                    t = read_staged(self._staged_table_path(s.index))
                    ids_of = {}
                    for name, group in label_cols.items():
                        ids = ids_of[name] = remap[i][group][arrow_numpy(t[name])]
                        t = t.set_column(t.schema.get_field_index(name), name, pa.array(ids))
                    episode_stats[i].update(to_jsonable(numeric_stats_many(ids_of)))
                    w.write_table(t.cast(schema), row_group_size=max(1, t.num_rows))
                    rows[i].update(
                        {
                            "data/chunk_index": chunk,
                            "data/file_index": file,
                            "dataset_from_index": s.dataset_from_index,
                            "dataset_to_index": s.dataset_from_index + s.length,
                        }
                    )

        # videos: stream-copied per camera
        for cam in layout.cameras:
            key = IMAGE_PREFIX + cam
            mp4s = [self._paths(s.index)[2](cam) for s in self._staged]
            groups = _rollover(
                [p.stat().st_size for p in mp4s], st["video_files_size_in_mb"] * _MB, chunks_size
            )
            for (chunk, file), members in groups.items():
                path = build / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
                lengths = [self._staged[i].length for i in members]
                starts = _concat_mp4([mp4s[i] for i in members], lengths, path, fps)
                for i, t0, n in zip(members, starts, lengths, strict=True):
                    rows[i].update(
                        {
                            f"videos/{key}/chunk_index": chunk,
                            f"videos/{key}/file_index": file,
                            f"videos/{key}/from_timestamp": t0,
                            f"videos/{key}/to_timestamp": t0 + n / fps,
                        }
                    )

        # meta/episodes, tasks, stats
        for r, stats_ in zip(rows, episode_stats, strict=True):
            r["meta/episodes/chunk_index"] = 0
            r["meta/episodes/file_index"] = 0
            for feat, stats in stats_.items():
                for name, value in stats.items():
                    r[f"stats/{feat}/{name}"] = value
        ep_path = build / EPISODES_PATH.format(chunk_index=0, file_index=0)
        ep_path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), ep_path, compression="snappy")
        import pandas as pd  # here: 0.7 s to import, only needed once per dataset

        tasks = self._tasks()
        pd.DataFrame(
            {"task_index": np.arange(len(tasks), dtype=np.int64)},
            index=pd.Index(tasks, name="task"),
        ).to_parquet(build / "meta" / "tasks.parquet")
        stats = _aggregate_stats(episode_stats)
        atomic_write_json(build / "meta" / "stats.json", stats)

        # demoforge metadata and the files staged with stage_file
        demo = {
            "schema_version": SCHEMA_VERSION,
            "software_version": self._staged[0].meta.get("software_version", ""),
            "layout": dataclasses.asdict(layout),
            "labels": labels,
            "feature_map": _feature_map(),
            "episode_schema": FEATURES,
            "config": st["config"],
            "episodes_metadata": DEMOFORGE_EPISODES_PATH,
        }
        if self._model_xml is not None:
            demo["model_file"] = MODEL_PATH
            atomic_write_text(build / MODEL_PATH, self._model_xml)
        atomic_write_json(build / DEMOFORGE_DATASET_PATH, demo)
        atomic_write_text(
            build / DEMOFORGE_EPISODES_PATH,
            "".join(json.dumps({"episode_index": s.index, **s.meta}) + "\n" for s in self._staged),
        )
        self._stage.copy_files(build)

        # checksums of every file, so damage is caught on read (info.json: digest of itself)
        files = {
            p.relative_to(build).as_posix(): sha256_file(p)
            for p in sorted(build.rglob("*"))
            if p.is_file()
        }
        total = sum(s.length for s in self._staged)
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": st["robot_type"],
            "total_episodes": len(self._staged),
            "total_frames": total,
            "total_tasks": len(tasks),
            "chunks_size": chunks_size,
            "data_files_size_in_mb": _int_if_whole(st["data_files_size_in_mb"]),
            "video_files_size_in_mb": _int_if_whole(st["video_files_size_in_mb"]),
            "fps": fps,
            "splits": {"train": f"0:{len(self._staged)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if layout.cameras else None,
            "features": features,
            "demoforge": demo,
            INTEGRITY_KEY: {"files_sha256": files},
        }
        info[INTEGRITY_KEY]["info_sha256"] = json_digest(info)
        atomic_write_json(build / "meta" / "info.json", info)  # written last: marks completeness


def _int_if_whole(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def _rollover(sizes: list[int], limit: float, chunks_size: int) -> dict[tuple[int, int], list[int]]:
    """Assign items (by size in bytes) to (chunk, file) slots; a file is full past ``limit``."""
    groups: dict[tuple[int, int], list[int]] = {}
    chunk = file = 0
    current = 0
    for i, size in enumerate(sizes):
        if groups.get((chunk, file)) and current + size >= limit:
            chunk, file = (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)
            current = 0
        groups.setdefault((chunk, file), []).append(i)
        current += size
    return groups


def write_lerobot(
    episodes: Iterable[Episode],
    root: str | os.PathLike,
    *,
    fps: int | None = None,
    robot_type: str | None = None,
    config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    video: VideoOptions | None = None,
) -> Path:
    """Write ``episodes`` as a LeRobot v3.0 dataset at ``root`` (see :class:`LeRobotWriter`).

    On an exception the staged episodes stay in ``<root>.partial`` and ``root`` is not created.
    """
    writer = LeRobotWriter(
        root,
        fps=fps,
        robot_type=robot_type,
        config=config,
        overwrite=overwrite,
        resume=resume,
        video=video,
    )
    for ep in episodes:
        writer.add(ep)
    return writer.finalize()
