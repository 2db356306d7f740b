"""LeRobot datasets: a v3.0 writer and a v2.x/v3.0 reader for :class:`~sim.episode.Episode`.

Layout written (LeRobot ``codebase_version`` "v3.0", see ../shared/FORMATS.md §1)::

    <root>/meta/info.json                       fps, features, totals, path templates, "demoforge"
    <root>/meta/stats.json                      min/max/mean/std/count/q01..q99 per feature
    <root>/meta/tasks.parquet                   pandas, index "task", column "task_index"
    <root>/meta/episodes/chunk-000/file-000.parquet   one row per episode (+ videos/*, stats/*)
    <root>/meta/demoforge/episodes.jsonl        full EpisodeMeta per episode (provenance, seed, ...)
    <root>/meta/demoforge/dataset.json          copy of info.json["demoforge"]
    <root>/data/chunk-000/file-000.parquet      one row per frame, one row group per episode
    <root>/videos/observation.images.<cam>/chunk-000/file-000.mp4   all episodes, concatenated

Feature mapping (Episode -> LeRobot feature, all float32 unless noted):

* ``observation.state`` (n + g,): ``qpos`` (names = ``joint_names``) followed by the gripper
  openings in [0, 1] of each arm in ``Episode.gripper`` order (names ``<arm>_gripper``).
* ``observation.velocity`` (n,): ``qvel``, names = ``joint_names``.
* ``action`` (m,): ``action``, names = ``action_names``.
* ``observation.ee_pose.<arm>`` (7,): EE pose in the world frame, names x, y, z, qw, qx, qy, qz
  (position [m], quaternion w, x, y, z).
* ``observation.environment_state`` (7k,): object poses concatenated in ``Episode.objects``
  order, names ``<obj>.x`` ... ``<obj>.qz``.
* ``observation.subtask.<name>`` bool: per-step subtask signal.
* ``next.done`` bool (True on the last frame), ``next.success`` bool (True on the last frame of
  an episode whose ``meta.success`` is True).
* ``observation.images.<cam>`` video: H.264 mp4, yuv420p, constant frame rate, frame k of an
  episode at pts ``from_timestamp + k / fps`` exactly.

``timestamp`` is ``frame_index / fps``: the writer requires ``Episode.time`` to be that (within
1e-4 s) and the reader returns exactly ``arange(T) / fps``.

Writing is atomic and resumable: :class:`LeRobotWriter` stages each added episode (a parquet, one
mp4 per camera and a JSON commit marker) in ``<root>.partial/episodes/``; :meth:`finalize`
builds the v3.0 layout in ``<root>.partial/dataset/``, writes ``meta/info.json`` last and renames
the directory to ``<root>``. A crash leaves ``<root>`` absent and the staged episodes resumable.

Reading: :func:`read_lerobot` / :func:`iter_lerobot` (v2.0, v2.1 and v3.0, detected from
``codebase_version``) give Episodes with lazy images; :func:`read_lerobot_info` and
:func:`read_lerobot_columns` give the raw named columns (e.g. to map a foreign robot's joints);
:func:`is_lerobot` detects a dataset directory. A 1-wide vector (e.g. a lone gripper as
``observation.state``) has shape (1,), which LeRobot stores as a scalar column.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.episode import FEATURES, SCHEMA_VERSION, Episode, EpisodeMeta
from sim.errors import ConfigError, FormatError, OutputExistsError, SchemaError
from sim.io.atomic import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    check_output_free,
    partial_path,
    publish_dir,
    remove_tree,
    to_jsonable,
)

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
#: codebase_version values the reader understands (v2.0 and v2.1 share one layout).
READABLE_VERSIONS = ("v2.0", "v2.1", "v3.0")
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEMOFORGE_EPISODES_PATH = "meta/demoforge/episodes.jsonl"
DEMOFORGE_DATASET_PATH = "meta/demoforge/dataset.json"
POSE_NAMES = ["x", "y", "z", "qw", "qx", "qy", "qz"]
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
#: Allowed |decoded pts - expected timestamp| [s]; LeRobot's default ``tolerance_s``.
TIMESTAMP_TOL_S = 1e-4
STATE, VELOCITY, ACTION = "observation.state", "observation.velocity", "action"
ENV_STATE = "observation.environment_state"
EE_PREFIX, SUBTASK_PREFIX, IMAGE_PREFIX = (
    "observation.ee_pose.",
    "observation.subtask.",
    "observation.images.",
)
DONE, SUCCESS = "next.done", "next.success"

DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

_STAGE_FORMAT = "demoforge-lerobot-staging/1"
_EP_STEM = "episode_{:06d}"
_MB = 1024**2


# ----------------------------------------------------------------------------------------------
# Options and schema
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoOptions:
    """H.264 encoder settings for the camera videos (libx264 through PyAV).

    Attributes:
        crf: constant rate factor (0 = lossless, 23 = x264 default, higher = smaller).
        preset: x264 speed preset.
        g: keyframe interval [frames]; small values make random access cheap.
        pix_fmt: pixel format; yuv420p plays everywhere (needs even width and height).
    """

    crf: int = 23
    preset: str = "veryfast"
    g: int = 2
    pix_fmt: str = "yuv420p"

    def encoder_options(self) -> dict[str, str]:
        """Options passed to libx264 (no B-frames so packets are in display order)."""
        return {"crf": str(self.crf), "preset": self.preset, "g": str(self.g), "bf": "0"}


@dataclass
class _Layout:
    """Which Episode fields a dataset stores, fixed by its first episode."""

    joint_names: list[str]
    has_qpos: bool
    grippers: list[str]
    has_qvel: bool
    action_names: list[str]
    has_action: bool
    arms: list[str]
    objects: list[str]
    subtasks: list[str]
    cameras: dict[str, list[int]]  # camera -> [H, W]

    @classmethod
    def of(cls, ep: Episode, cameras: Mapping[str, list[int]] | None = None) -> _Layout:
        """Layout of ``ep``; camera sizes from ``cameras`` (else left empty: compare names only)."""
        return cls(
            joint_names=list(ep.joint_names),
            has_qpos=ep.qpos is not None,
            grippers=list(ep.gripper),
            has_qvel=ep.qvel is not None,
            action_names=list(ep.action_names),
            has_action=ep.action is not None,
            arms=list(ep.ee),
            objects=list(ep.objects),
            subtasks=list(ep.subtasks),
            cameras={cam: list((cameras or {}).get(cam, [])) for cam in ep.images},
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> _Layout:
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in d]
        if missing:
            raise FormatError(f"{where}: key 'layout' lacks {missing}; expected keys {names}")
        return cls(**{n: d[n] for n in names})

    def state_names(self) -> list[str]:
        return (self.joint_names if self.has_qpos else []) + [f"{a}_gripper" for a in self.grippers]


def _features(layout: _Layout, fps: int, video: VideoOptions) -> dict[str, dict[str, Any]]:
    """LeRobot feature specs (info.json "features") for a layout, default features last."""
    feats: dict[str, dict[str, Any]] = {}

    def vec(name: str, names: list[str]) -> None:
        feats[name] = {"dtype": "float32", "shape": [len(names)], "names": list(names)}

    state = layout.state_names()
    if state:
        vec(STATE, state)
    if layout.has_qvel:
        vec(VELOCITY, layout.joint_names)
    if layout.has_action:
        vec(ACTION, layout.action_names)
    for arm in layout.arms:
        vec(EE_PREFIX + arm, POSE_NAMES)
    if layout.objects:
        vec(ENV_STATE, [f"{o}.{p}" for o in layout.objects for p in POSE_NAMES])
    for name in layout.subtasks:
        feats[SUBTASK_PREFIX + name] = {"dtype": "bool", "shape": [1], "names": None}
    feats[DONE] = {"dtype": "bool", "shape": [1], "names": None}
    feats[SUCCESS] = {"dtype": "bool", "shape": [1], "names": None}
    for cam, (h, w) in layout.cameras.items():
        feats[IMAGE_PREFIX + cam] = {
            "dtype": "video",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": h,
                "video.width": w,
                "video.codec": "h264",
                "video.pix_fmt": video.pix_fmt,
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "video.g": video.g,
                "video.crf": video.crf,
                "video.preset": video.preset,
                "has_audio": False,
                "is_depth_map": False,
            },
        }
    feats.update(json.loads(json.dumps(DEFAULT_FEATURES)))
    return feats


def _arrow_type(spec: Mapping[str, Any]) -> pa.DataType:
    dtype = pa.from_numpy_dtype(np.dtype(spec["dtype"]))
    shape = list(spec["shape"])
    if shape == [1]:
        return dtype
    return pa.list_(dtype, int(np.prod(shape)))


def _hf_metadata(features: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The ``huggingface`` parquet schema metadata that ``datasets`` writes (Value/Sequence)."""
    out = {}
    for name, spec in features.items():
        if spec["dtype"] in ("video", "image"):
            continue
        value = {"dtype": spec["dtype"], "_type": "Value"}
        if list(spec["shape"]) == [1]:
            out[name] = value
        else:
            width = int(np.prod(spec["shape"]))
            out[name] = {"feature": value, "length": width, "_type": "Sequence"}
    return json.dumps({"info": {"features": out}}).encode()


def _schema(features: Mapping[str, Mapping[str, Any]]) -> pa.Schema:
    fields = [
        pa.field(name, _arrow_type(spec))
        for name, spec in features.items()
        if spec["dtype"] not in ("video", "image")
    ]
    return pa.schema(fields, metadata={b"huggingface": _hf_metadata(features)})


# ----------------------------------------------------------------------------------------------
# Episode -> frame table, stats, video
# ----------------------------------------------------------------------------------------------


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


def _episode_columns(ep: Episode, layout: _Layout) -> dict[str, np.ndarray]:
    """Per-step feature arrays (T, ...) of ``ep`` keyed by LeRobot feature name (no videos)."""
    T = len(ep)
    cols: dict[str, np.ndarray] = {}
    parts = ([np.asarray(ep.qpos, np.float32)] if layout.has_qpos else []) + [
        np.asarray(ep.gripper[a], np.float32).reshape(T, 1) for a in layout.grippers
    ]
    if parts:
        cols[STATE] = np.concatenate(parts, axis=1)
    if layout.has_qvel:
        cols[VELOCITY] = np.asarray(ep.qvel, np.float32)
    if layout.has_action:
        cols[ACTION] = np.asarray(ep.action, np.float32)
    for arm in layout.arms:
        cols[EE_PREFIX + arm] = np.asarray(ep.ee[arm], np.float32)
    if layout.objects:
        cols[ENV_STATE] = np.concatenate(
            [np.asarray(ep.objects[o], np.float32) for o in layout.objects], axis=1
        )
    for name in layout.subtasks:
        cols[SUBTASK_PREFIX + name] = np.asarray(ep.subtasks[name]).astype(bool)
    done = np.zeros(T, bool)
    done[-1] = True
    cols[DONE] = done
    cols[SUCCESS] = done & bool(ep.meta.success)
    return cols


def _table(
    cols: Mapping[str, np.ndarray],
    schema: pa.Schema,
    fps: int,
    episode_index: int,
    global_from: int,
    task_index: int,
) -> pa.Table:
    T = len(next(iter(cols.values())))
    frame_index = np.arange(T, dtype=np.int64)
    cols = dict(cols)
    cols["timestamp"] = (frame_index / fps).astype(np.float32)
    cols["frame_index"] = frame_index
    cols["episode_index"] = np.full(T, episode_index, np.int64)
    cols["index"] = global_from + frame_index
    cols["task_index"] = np.full(T, task_index, np.int64)
    arrays = []
    for f in schema:
        a = cols[f.name]
        if pa.types.is_fixed_size_list(f.type):
            flat = pa.array(np.ascontiguousarray(a).reshape(-1), type=f.type.value_type)
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, f.type.list_size))
        else:  # shape (1,) features are stored as scalars
            arrays.append(pa.array(np.asarray(a).reshape(T), type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _numeric_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot stats over axis 0 of (T,) or (T, n) data; scalars give shape (1,)."""
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    q = np.quantile(x, QUANTILES, axis=0)
    out = {
        "min": x.min(0),
        "max": x.max(0),
        "mean": x.mean(0),
        "std": x.std(0),
        "count": np.array([len(x)]),
    }
    for qi, v in zip(QUANTILES, q):
        out[f"q{round(qi * 100):02d}"] = v
    return out


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of sampled frames, shape (3, 1, 1), scaled to [0, 1] (LeRobot style).

    Frames are sampled as LeRobot does (about T**0.75, at least 100) and strided to <= 150 px
    when larger than 300 px; stats come from exact per-channel 256-bin histograms (quantiles
    with numpy's linear interpolation).
    """
    T = len(frames)
    n = min(T, max(100, int(T**0.75)))
    idx = np.round(np.linspace(0, T - 1, n)).astype(int)
    sample = frames[idx]
    h, w = sample.shape[1:3]
    if max(h, w) > 300:
        step = max(1, int(np.ceil(max(h, w) / 150)))
        sample = sample[:, ::step, ::step]
    pix = sample.reshape(-1, 3)
    levels = np.arange(256, dtype=np.float64)
    out: dict[str, list[float]] = {k: [] for k in ("min", "max", "mean", "std")}
    qkeys = [f"q{round(q * 100):02d}" for q in QUANTILES]
    out |= {k: [] for k in qkeys}
    for c in range(3):
        hist = np.bincount(pix[:, c], minlength=256).astype(np.float64)
        N = hist.sum()
        nz = np.flatnonzero(hist)
        mean = (hist * levels).sum() / N
        out["min"].append(nz[0])
        out["max"].append(nz[-1])
        out["mean"].append(mean)
        out["std"].append(np.sqrt((hist * (levels - mean) ** 2).sum() / N))
        cum = np.cumsum(hist)
        for k, q in zip(qkeys, QUANTILES):
            pos = q * (N - 1)
            lo, hi = np.floor(pos), np.ceil(pos)
            v_lo = np.searchsorted(cum, lo, side="right")
            v_hi = np.searchsorted(cum, hi, side="right")
            out[k].append(v_lo + (pos - lo) * (v_hi - v_lo))
    stats = {k: np.asarray(v, np.float64).reshape(3, 1, 1) / 255.0 for k, v in out.items()}
    stats["count"] = np.array([len(idx)])
    return stats


def _aggregate_stats(stats: list[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Dataset stats from episode stats, aggregated as lerobot 0.6.1 does.

    Count-weighted mean, pooled variance, min of mins, max of maxes and the count-weighted mean
    of each quantile.
    """
    out: dict[str, dict[str, Any]] = {}
    for key in stats[0]:
        per = [{k: np.asarray(v, np.float64) for k, v in s[key].items()} for s in stats]
        counts = np.array([p["count"].reshape(-1)[0] for p in per], np.float64)
        total = counts.sum()
        means = np.stack([p["mean"] for p in per])
        w = counts.reshape((-1,) + (1,) * (means.ndim - 1))
        mean = (means * w).sum(0) / total
        stds = np.stack([p["std"] for p in per])
        agg = {
            "min": np.min([p["min"] for p in per], axis=0),
            "max": np.max([p["max"] for p in per], axis=0),
            "mean": mean,
            "std": np.sqrt(((stds**2 + (means - mean) ** 2) * w).sum(0) / total),
            "count": np.array([int(total)]),
        }
        for qk in (k for k in per[0] if re.fullmatch(r"q\d\d", k)):
            agg[qk] = (np.stack([p[qk] for p in per]) * w).sum(0) / total
        out[key] = agg
    return out


def _encode_mp4(path: Path, frames: np.ndarray, fps: int, opts: VideoOptions) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 mp4 with frame k at pts k/fps."""
    tb = Fraction(1, fps)
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = opts.pix_fmt
        stream.codec_context.time_base = tb
        stream.options = opts.encoder_options()
        for k, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = k, tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _concat_mp4(inputs: list[Path], lengths: list[int], out_path: Path, fps: int) -> list[float]:
    """Stream-copy mp4 files end to end (no re-encode); return each input's start time [s].

    Frame k of input i lands at pts ``sum(lengths[:i]) / fps + k / fps`` exactly.

    Raises:
        FormatError: an input does not hold ``lengths[i]`` frames at constant pts steps of 1/fps.
    """
    starts: list[float] = []
    with atomic_path(out_path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        ostream = None
        tb0 = None
        offset = 0  # in ticks of tb0
        done = 0  # frames
        for path, T in zip(inputs, lengths):
            with av.open(str(path)) as inp:
                istream = inp.streams.video[0]
                tb = istream.time_base
                step = Fraction(1, fps) / tb
                if step.denominator != 1:
                    raise FormatError(
                        f"{path}: stream time_base {tb} is not a divisor of 1/{fps} s; "
                        "cannot place frames at exact k/fps timestamps"
                    )
                if ostream is None:
                    ostream = out.add_stream_from_template(istream, opaque=True)
                    ostream.time_base = tb0 = tb
                elif tb != tb0:
                    raise FormatError(f"{path}: time_base {tb}, expected {tb0} like {inputs[0]}")
                starts.append(done / fps)
                n = 0
                for packet in inp.demux(istream):
                    if packet.dts is None:
                        continue
                    if packet.pts != n * step.numerator:
                        raise FormatError(
                            f"{path}: packet {n} has pts {packet.pts}, expected "
                            f"{n * step.numerator} (constant frame rate {fps} fps, time_base {tb})"
                        )
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = ostream
                    out.mux(packet)
                    n += 1
                if n != T:
                    raise FormatError(f"{path}: holds {n} frames, expected {T}")
                offset += T * step.numerator
                done += T
    return starts


# ----------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------


@dataclass
class _Staged:
    """One staged episode as recorded in its commit marker."""

    index: int
    length: int
    task: str
    dataset_from_index: int
    meta: dict[str, Any]
    stats: dict[str, dict[str, Any]]


def _meta_dict(meta: EpisodeMeta) -> dict[str, Any]:
    return to_jsonable(dataclasses.asdict(meta))


def _meta_from_dict(d: Mapping[str, Any]) -> EpisodeMeta:
    known = {f.name for f in dataclasses.fields(EpisodeMeta)}
    return EpisodeMeta(**{k: v for k, v in d.items() if k in known})


class LeRobotWriter:
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
    ) -> None:
        self.root = Path(root)
        self.partial = partial_path(self.root)
        self.overwrite = overwrite
        check_output_free(self.root, overwrite)
        for name, v in (
            ("chunks_size", chunks_size),
            ("data_files_size_in_mb", data_files_size_in_mb),
            ("video_files_size_in_mb", video_files_size_in_mb),
        ):
            if not v > 0:
                raise ConfigError(f"LeRobotWriter: {name} must be > 0, got {v}")
        requested = {
            "fps": fps,
            "robot_type": robot_type,
            "config": to_jsonable(dict(config)) if config is not None else None,
            "video": dataclasses.asdict(video) if video is not None else None,
            "chunks_size": chunks_size,
            "data_files_size_in_mb": data_files_size_in_mb,
            "video_files_size_in_mb": video_files_size_in_mb,
        }
        self._episodes_dir = self.partial / "episodes"
        self._state_path = self.partial / "writer.json"
        self._staged: list[_Staged] = []
        self._state: dict[str, Any] | None = None
        if self.partial.exists():
            if resume:
                self._load_staged(requested)
            elif overwrite:
                remove_tree(self.partial)
            else:
                n = len(list(self._episodes_dir.glob("episode_*.json")))
                raise OutputExistsError(
                    f"unfinished write {self.partial} exists ({n} staged episodes); pass "
                    "resume=True to continue it or overwrite=True to discard it"
                )
        self._requested = requested
        self._finalized = False
        if self._state is None:
            self._episodes_dir.mkdir(parents=True, exist_ok=True)

    # -- staging ------------------------------------------------------------------------------

    @property
    def num_staged(self) -> int:
        """Episodes staged so far (including those found when resuming)."""
        return len(self._staged)

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
                    raise ConfigError(
                        f"resuming {self.partial}: {key} is {value!r} but the staged episodes "
                        f"were written with {state[key]!r} ({self._state_path})"
                    )
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
        remove_tree(self.partial / "dataset")
        self._episodes_dir.mkdir(parents=True, exist_ok=True)
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
        atomic_write_json(self._state_path, self._state)

    def _paths(self, index: int) -> tuple[Path, Path, Callable[[str], Path]]:
        stem = self._episodes_dir / _EP_STEM.format(index)
        return (
            stem.with_suffix(".json"),
            stem.with_suffix(".parquet"),
            lambda cam: stem.with_name(f"{stem.name}.{cam}.mp4"),
        )

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
        frames = {cam: _frames(episode, cam, index) for cam in episode.images}
        if self._state is None:
            self._init_state(episode, fps, {c: list(f.shape[1:3]) for c, f in frames.items()})
            layout = _Layout.from_dict(self._state["layout"], state_path)
        for cam, (h, w) in layout.cameras.items():
            if list(frames[cam].shape[1:3]) != [h, w]:
                raise SchemaError(
                    f"episode {index} ({episode.meta.source}): images[{cam!r}] frames are "
                    f"{frames[cam].shape[1]}x{frames[cam].shape[2]}, but the dataset's first "
                    f"episode has {h}x{w}"
                )
        video = VideoOptions(**self._state["video"])
        task = episode.meta.instruction or episode.meta.task
        tasks = self._tasks()
        task_index = tasks.index(task) if task in tasks else len(tasks)
        start = sum(s.length for s in self._staged)
        cols = _episode_columns(episode, layout)
        table = _table(cols, _schema(_features(layout, fps, video)), fps, index, start, task_index)
        stats = {k: _numeric_stats(v) for k, v in cols.items()}
        for k in DEFAULT_FEATURES:
            stats[k] = _numeric_stats(table[k].to_numpy())
        marker, parquet, mp4 = self._paths(index)
        try:
            with atomic_path(parquet) as tmp:
                pq.write_table(table, tmp, compression="snappy")
            for cam, fr in frames.items():
                _encode_mp4(mp4(cam), fr, fps, video)
                stats[IMAGE_PREFIX + cam] = _image_stats(fr)
            staged = _Staged(
                index=index,
                length=len(episode),
                task=task,
                dataset_from_index=start,
                meta=_meta_dict(episode.meta),
                stats=to_jsonable(stats),
            )
            atomic_write_json(marker, dataclasses.asdict(staged), indent=None)  # the commit
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

        Raises:
            SchemaError: no episode was added.
            OutputExistsError: ``root`` appeared meanwhile and ``overwrite`` is False.
        """
        self._check_open()
        if not self._staged:
            raise SchemaError(f"{self.root}: no episodes were added; nothing to finalize")
        check_output_free(self.root, self.overwrite)
        st = self._state
        fps, chunks_size = st["fps"], st["chunks_size"]
        layout = _Layout.from_dict(st["layout"], str(self._state_path))
        video = VideoOptions(**st["video"])
        features = _features(layout, fps, video)
        build = self.partial / "dataset"
        remove_tree(build)
        build.mkdir(parents=True)
        rows: list[dict[str, Any]] = [
            {"episode_index": s.index, "tasks": [s.task], "length": s.length} for s in self._staged
        ]

        # data parquet(s): one row group per episode
        schema = _schema(features)
        groups = _rollover(
            [self._paths(s.index)[1].stat().st_size for s in self._staged],
            st["data_files_size_in_mb"] * _MB,
            chunks_size,
        )
        for (chunk, file), members in groups.items():
            path = build / DATA_PATH.format(chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            with pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=True) as w:
                for i in members:
                    s = self._staged[i]
                    t = pq.read_table(self._paths(s.index)[1])
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
                for i, t0, n in zip(members, starts, lengths):
                    rows[i].update(
                        {
                            f"videos/{key}/chunk_index": chunk,
                            f"videos/{key}/file_index": file,
                            f"videos/{key}/from_timestamp": t0,
                            f"videos/{key}/to_timestamp": t0 + n / fps,
                        }
                    )

        # meta/episodes, tasks, stats
        for r, s in zip(rows, self._staged):
            r["meta/episodes/chunk_index"] = 0
            r["meta/episodes/file_index"] = 0
            for feat, stats in s.stats.items():
                for name, value in stats.items():
                    r[f"stats/{feat}/{name}"] = value
        ep_path = build / EPISODES_PATH.format(chunk_index=0, file_index=0)
        ep_path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), ep_path, compression="snappy")
        tasks = self._tasks()
        pd.DataFrame(
            {"task_index": np.arange(len(tasks), dtype=np.int64)},
            index=pd.Index(tasks, name="task"),
        ).to_parquet(build / "meta" / "tasks.parquet")
        stats = _aggregate_stats([s.stats for s in self._staged])
        atomic_write_json(build / "meta" / "stats.json", stats)

        # demoforge metadata
        demo = {
            "schema_version": SCHEMA_VERSION,
            "software_version": self._staged[0].meta.get("software_version", ""),
            "layout": dataclasses.asdict(layout),
            "feature_map": _feature_map(),
            "episode_schema": FEATURES,
            "config": st["config"],
            "episodes_metadata": DEMOFORGE_EPISODES_PATH,
        }
        atomic_write_json(build / DEMOFORGE_DATASET_PATH, demo)
        atomic_write_text(
            build / DEMOFORGE_EPISODES_PATH,
            "".join(json.dumps({"episode_index": s.index, **s.meta}) + "\n" for s in self._staged),
        )

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
        }
        atomic_write_json(build / "meta" / "info.json", info)  # written last: marks completeness
        publish_dir(build, self.root, self.overwrite)
        remove_tree(self.partial)
        self._finalized = True
        return self.root

    def _check_open(self) -> None:
        if self._finalized:
            raise ConfigError(f"LeRobotWriter({self.root}) is already finalized")

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()


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


def _feature_map() -> dict[str, str]:
    return {
        STATE: "qpos (names = joint_names) followed by gripper[<arm>] as '<arm>_gripper' [0, 1]",
        VELOCITY: "qvel (names = joint_names)",
        ACTION: "action (names = action_names)",
        EE_PREFIX + "<arm>": "ee[<arm>]: x, y, z [m] + qw, qx, qy, qz, world frame",
        ENV_STATE: "objects[<obj>] poses concatenated: <obj>.x .. <obj>.qz, world frame",
        SUBTASK_PREFIX + "<name>": "subtasks[<name>] (bool)",
        IMAGE_PREFIX + "<cam>": "images[<cam>] (H.264 video, RGB)",
        DONE: "True on the last frame",
        SUCCESS: "True on the last frame when meta.success is True",
        "meta": f"full EpisodeMeta per episode in {DEMOFORGE_EPISODES_PATH}",
    }


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


# ----------------------------------------------------------------------------------------------
# Reader
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoClip:
    """Lazy loader of one episode's frames from an mp4: call it to get (T, H, W, 3) uint8.

    Frame k is the decoded frame at pts ``from_timestamp + k / fps`` (± 1e-4 s).
    """

    path: Path
    from_timestamp: float
    length: int
    fps: int

    def __call__(self) -> np.ndarray:
        return decode_frames(self.path, self.from_timestamp, self.length, self.fps)


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


def decode_frames(
    path: str | os.PathLike, from_timestamp: float, length: int, fps: int
) -> np.ndarray:
    """Decode ``length`` frames at ``from_timestamp + k / fps`` [s] from a video file.

    Raises:
        FormatError: the file is missing/unreadable, or a frame's pts is not on the k/fps grid, or
            fewer than ``length`` frames exist from ``from_timestamp`` on.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: video file missing; expected {length} frames at {fps} fps")
    out: np.ndarray | None = None
    got = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            if from_timestamp > 0:
                container.seek(
                    int(from_timestamp / tb) - 1, stream=stream, backward=True, any_frame=False
                )
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb) - from_timestamp
                if t < -TIMESTAMP_TOL_S:
                    continue
                k = round(t * fps)
                if abs(t - k / fps) > TIMESTAMP_TOL_S:
                    raise FormatError(
                        f"{path}: frame at pts {float(frame.pts * tb):.6f} s is not on the "
                        f"{fps} fps grid starting at {from_timestamp} s (tolerance "
                        f"{TIMESTAMP_TOL_S} s)"
                    )
                if k >= length:
                    break
                img = frame.to_ndarray(format="rgb24")
                if out is None:
                    out = np.empty((length,) + img.shape, np.uint8)
                if k != got:
                    raise FormatError(
                        f"{path}: expected frame {got} at {from_timestamp + got / fps:.6f} s, "
                        f"next decoded frame is at {from_timestamp + k / fps:.6f} s"
                    )
                out[k] = img
                got += 1
    except av.FFmpegError as e:
        raise FormatError(f"{path}: cannot decode video: {e}") from e
    if got != length or out is None:
        raise FormatError(
            f"{path}: expected {length} frames from {from_timestamp} s at {fps} fps, decoded {got}"
        )
    return out


@dataclass
class LeRobotEpisodeRef:
    """Where one episode of a LeRobot dataset lives.

    Attributes:
        index: ``episode_index``.
        length: number of frames.
        tasks: task strings of the episode.
        data_file: parquet holding its rows.
        videos: video key -> (mp4 path, from_timestamp [s]) for files that exist.
        missing_videos: video keys whose file is absent.
    """

    index: int
    length: int
    tasks: list[str]
    data_file: Path
    videos: dict[str, tuple[Path, float]] = field(default_factory=dict)
    missing_videos: list[str] = field(default_factory=list)


@dataclass
class LeRobotInfo:
    """A LeRobot dataset's metadata, version-independent.

    Attributes:
        root: dataset directory.
        codebase_version: "v2.0", "v2.1" or "v3.0".
        fps: frame rate [Hz].
        robot_type: info.json ``robot_type`` (may be None).
        features: info.json ``features``.
        tasks: task strings by ``task_index``.
        episodes: per-episode locations, by ``episode_index``.
        demoforge: info.json["demoforge"] (or meta/demoforge/dataset.json) when we wrote it.
        raw: the full info.json.
    """

    root: Path
    codebase_version: str
    fps: int
    robot_type: str | None
    features: dict[str, dict[str, Any]]
    tasks: list[str]
    episodes: dict[int, LeRobotEpisodeRef]
    demoforge: dict[str, Any] | None
    raw: dict[str, Any]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, v in self.features.items() if v.get("dtype") == "video"]

    def feature_names(self, key: str) -> list[str]:
        """Column names of a vector feature (flattened; generated ``<key>_<i>`` if absent)."""
        spec = self.features[key]
        width = int(np.prod(spec.get("shape") or [1]))
        return _flat_names(spec.get("names"), width) or [f"{key}_{i}" for i in range(width)]

    @property
    def missing_videos(self) -> dict[int, list[str]]:
        """episode_index -> video keys whose mp4 is absent (only episodes with any missing)."""
        return {i: r.missing_videos for i, r in self.episodes.items() if r.missing_videos}


def _flat_names(names: Any, width: int) -> list[str]:
    """Normalise feature ``names`` (list, [[...]] as in some v2.1 files, or {"motors": [...]})."""
    if isinstance(names, dict):
        lists = [v for v in names.values() if isinstance(v, list)]
        names = lists[0] if len(lists) == 1 else None
    if isinstance(names, list) and len(names) == 1 and isinstance(names[0], list):
        names = names[0]
    if isinstance(names, list) and len(names) == width and all(isinstance(n, str) for n in names):
        return list(names)
    return []


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(f"{path}: file missing") from None
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: not valid JSON ({e})") from None


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FormatError(f"{path}: file missing")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise FormatError(f"{path}: line {n} is not valid JSON ({e})") from None
    return out


def _require(d: Mapping[str, Any], key: str, where: Path, expected: str) -> Any:
    if key not in d:
        raise FormatError(f"{where}: missing key {key!r}; expected {expected}")
    return d[key]


def is_lerobot(path: str | os.PathLike) -> bool:
    """True if ``path`` has a meta/info.json with a readable ``codebase_version``."""
    try:
        info = json.loads((Path(path) / "meta" / "info.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("codebase_version") in READABLE_VERSIONS


def read_lerobot_info(root: str | os.PathLike) -> LeRobotInfo:
    """Read a LeRobot dataset's metadata (v2.0/v2.1/v3.0, detected from ``codebase_version``).

    Raises:
        FormatError: missing/invalid meta files or keys, unknown ``codebase_version``.
    """
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise FormatError(
            f"{info_path}: file missing; a LeRobot dataset (or a finished demoforge write) has "
            "meta/info.json"
        )
    info = _load_json(info_path)
    if not isinstance(info, dict):
        raise FormatError(f"{info_path}: expected a JSON object")
    version = _require(info, "codebase_version", info_path, f"one of {list(READABLE_VERSIONS)}")
    if version not in READABLE_VERSIONS:
        raise FormatError(
            f"{info_path}: key 'codebase_version' is {version!r}; expected one of "
            f"{list(READABLE_VERSIONS)}"
        )
    fps = _require(info, "fps", info_path, "a positive frame rate")
    if not isinstance(fps, (int, float)) or fps <= 0 or not float(fps).is_integer():
        raise FormatError(f"{info_path}: key 'fps' is {fps!r}; expected a positive integer")
    features = _require(info, "features", info_path, "a dict of feature specs")
    if not isinstance(features, dict):
        raise FormatError(f"{info_path}: key 'features' must be a dict, got {type(features)}")
    for name, spec in features.items():
        for k in ("dtype", "shape"):
            _require(spec, k, info_path, f"features[{name!r}] to have 'dtype' and 'shape'")
    for name in DEFAULT_FEATURES:
        if name not in features:
            raise FormatError(
                f"{info_path}: features lacks default feature {name!r}; expected all of "
                f"{list(DEFAULT_FEATURES)}"
            )
    fps = int(fps)
    video_keys = [k for k, v in features.items() if v["dtype"] == "video"]
    if version == "v3.0":
        tasks, episodes = _index_v30(root, info, info_path, video_keys)
    else:
        tasks, episodes = _index_v2x(root, info, info_path, video_keys)
    demo = info.get("demoforge")
    if demo is None and (root / DEMOFORGE_DATASET_PATH).is_file():
        demo = _load_json(root / DEMOFORGE_DATASET_PATH)
    return LeRobotInfo(
        root=root,
        codebase_version=version,
        fps=fps,
        robot_type=info.get("robot_type"),
        features=features,
        tasks=tasks,
        episodes=episodes,
        demoforge=demo,
        raw=info,
    )


def _index_v30(
    root: Path, info: dict, info_path: Path, video_keys: list[str]
) -> tuple[list[str], dict[int, LeRobotEpisodeRef]]:
    data_tpl = _require(info, "data_path", info_path, f"a template like {DATA_PATH!r}")
    video_tpl = info.get("video_path")
    if video_keys and not video_tpl:
        raise FormatError(f"{info_path}: key 'video_path' is empty but features have videos")
    tasks_path = root / "meta" / "tasks.parquet"
    if not tasks_path.is_file():
        raise FormatError(f"{tasks_path}: file missing; expected pandas index 'task'")
    df = pd.read_parquet(tasks_path)
    if "task_index" not in df.columns:
        raise FormatError(f"{tasks_path}: column 'task_index' missing; columns {list(df.columns)}")
    names = df["task"] if "task" in df.columns else df.index
    tasks_by_index = {int(i): str(t) for t, i in zip(names, df["task_index"])}
    tasks = [tasks_by_index.get(i, "") for i in range(max(tasks_by_index, default=-1) + 1)]
    ep_files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not ep_files:
        raise FormatError(
            f"{root / 'meta' / 'episodes'}: no parquet files; expected "
            f"{EPISODES_PATH.format(chunk_index=0, file_index=0)}"
        )
    episodes: dict[int, LeRobotEpisodeRef] = {}
    need = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    for path in ep_files:
        cols = [c for c in pq.read_schema(path).names if not c.startswith("stats/")]
        vneed = [
            f"videos/{k}/{s}"
            for k in video_keys
            for s in ("chunk_index", "file_index", "from_timestamp")
        ]
        for c in need + vneed:
            if c not in cols:
                raise FormatError(f"{path}: column {c!r} missing; columns present: {cols}")
        for r in pq.read_table(path, columns=cols).to_pylist():
            i = int(r["episode_index"])
            ref = LeRobotEpisodeRef(
                index=i,
                length=int(r["length"]),
                tasks=list(r.get("tasks") or []),
                data_file=root
                / data_tpl.format(
                    chunk_index=r["data/chunk_index"], file_index=r["data/file_index"]
                ),
            )
            for k in video_keys:
                vp = root / video_tpl.format(
                    video_key=k,
                    chunk_index=r[f"videos/{k}/chunk_index"],
                    file_index=r[f"videos/{k}/file_index"],
                )
                if vp.is_file():
                    ref.videos[k] = (vp, float(r[f"videos/{k}/from_timestamp"]))
                else:
                    ref.missing_videos.append(k)
            episodes[i] = ref
    return tasks, dict(sorted(episodes.items()))


def _index_v2x(
    root: Path, info: dict, info_path: Path, video_keys: list[str]
) -> tuple[list[str], dict[int, LeRobotEpisodeRef]]:
    data_tpl = _require(info, "data_path", info_path, "a template with {episode_chunk}")
    video_tpl = info.get("video_path")
    chunks_size = int(info.get("chunks_size", 1000))
    tasks_path = root / "meta" / "tasks.jsonl"
    tasks_by_index = {}
    for n, row in enumerate(_load_jsonl(tasks_path), 1):
        if "task_index" not in row or "task" not in row:
            raise FormatError(f"{tasks_path}: line {n} lacks 'task_index'/'task'")
        tasks_by_index[int(row["task_index"])] = str(row["task"])
    tasks = [tasks_by_index.get(i, "") for i in range(max(tasks_by_index, default=-1) + 1)]
    eps_path = root / "meta" / "episodes.jsonl"
    episodes: dict[int, LeRobotEpisodeRef] = {}
    for n, row in enumerate(_load_jsonl(eps_path), 1):
        if "episode_index" not in row or "length" not in row:
            raise FormatError(f"{eps_path}: line {n} lacks 'episode_index'/'length'")
        i = int(row["episode_index"])
        chunk = i // chunks_size
        ref = LeRobotEpisodeRef(
            index=i,
            length=int(row["length"]),
            tasks=list(row.get("tasks") or []),
            data_file=root / data_tpl.format(episode_chunk=chunk, episode_index=i),
        )
        for k in video_keys:
            vp = root / str(video_tpl).format(episode_chunk=chunk, video_key=k, episode_index=i)
            if video_tpl and vp.is_file():
                ref.videos[k] = (vp, 0.0)
            else:
                ref.missing_videos.append(k)
        episodes[i] = ref
    return tasks, dict(sorted(episodes.items()))


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
            col.value_lengths().to_numpy(zero_copy_only=False)
            if not pa.types.is_fixed_size_list(col.type)
            else np.full(T, col.type.list_size)
        )
        if np.any(lengths != width):
            k = int(np.argmax(lengths != width))
            raise FormatError(
                f"{where}: column {name!r} has {int(lengths[k])} values at row {k}; "
                f"meta/info.json features[{name!r}]['shape'] is {shape}"
            )
        values = col.flatten().to_numpy(zero_copy_only=False)
        out = np.asarray(values).reshape((T, *shape))
    else:
        if shape != [1]:
            raise FormatError(
                f"{where}: column {name!r} holds scalars; meta/info.json "
                f"features[{name!r}]['shape'] is {shape}"
            )
        out = col.to_numpy(zero_copy_only=False)
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

    def __init__(self) -> None:
        self.path: Path | None = None
        self.table: pa.Table | None = None
        self.episode_index: np.ndarray | None = None

    def rows(self, path: Path, episode: int) -> pa.Table:
        if path != self.path:
            if not path.is_file():
                raise FormatError(f"{path}: data file missing (episode {episode})")
            try:
                self.table = pq.read_table(path)
            except (pa.ArrowInvalid, OSError) as e:
                raise FormatError(f"{path}: cannot read parquet ({e})") from e
            if "episode_index" not in self.table.column_names:
                raise FormatError(
                    f"{path}: column 'episode_index' missing; columns present: "
                    f"{self.table.column_names}"
                )
            self.path = path
            self.episode_index = self.table["episode_index"].to_numpy()
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
    return _episode_columns_read(info, ref, _TableCache())[0]


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
    cache = _TableCache()
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
    return {
        _camera(key): VideoClip(path=path, from_timestamp=t0, length=ref.length, fps=info.fps)
        for key, (path, t0) in ref.videos.items()
    }


def _demoforge_metas(info: LeRobotInfo) -> dict[int, dict[str, Any]]:
    rel = info.demoforge.get("episodes_metadata", DEMOFORGE_EPISODES_PATH)
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
    ep.subtasks = {s: get(SUBTASK_PREFIX + s).astype(bool) for s in layout.subtasks}
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
