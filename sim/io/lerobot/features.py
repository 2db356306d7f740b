"""Feature, schema and layout mapping shared by the LeRobot writer and reader.

Constants (path templates, feature names), :class:`_Layout` (which Episode fields a dataset
stores), the info.json ``features`` / arrow schema of a layout and the Episode -> per-step feature
columns mapping (see the package docstring of :mod:`sim.io.lerobot` for the mapping itself).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError
from sim.io.atomic import to_jsonable

if TYPE_CHECKING:
    from sim.io.lerobot.video import VideoOptions

CODEBASE_VERSION = "v3.0"
#: codebase_version values the reader understands (v2.0 and v2.1 share one layout).
READABLE_VERSIONS = ("v2.0", "v2.1", "v3.0")
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEMOFORGE_EPISODES_PATH = "meta/demoforge/episodes.jsonl"
DEMOFORGE_DATASET_PATH = "meta/demoforge/dataset.json"
#: info.json key holding SHA-256 digests of every dataset file and of info.json itself (computed
#: with this key's "info_sha256" removed); readers verify them. lerobot drops unknown keys when
#: it rewrites info.json, which then simply disables the check.
INTEGRITY_KEY = "demoforge_integrity"
POSE_NAMES = ["x", "y", "z", "qw", "qx", "qy", "qz"]
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
# schema 1.1
TARGET_PREFIX, GRIPPER_CMD_PREFIX = "target.ee_pose.", "target.gripper."
SEGMENT_PREFIX, SEGMENT_REF_PREFIX = "observation.segment.", "observation.segment_ref."
MUJOCO_STATE = "observation.mujoco_state"
#: Episode label group -> feature prefix; labels are stored as int64 ids into the table
#: info.json["demoforge"]["labels"][group] (one table per group, first-seen order).
LABEL_PREFIX = {"segment": SEGMENT_PREFIX, "segment_ref": SEGMENT_REF_PREFIX}

DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


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
    # schema 1.1 (defaults: datasets written before it)
    targets: list[str] = dataclasses.field(default_factory=list)
    gripper_cmds: list[str] = dataclasses.field(default_factory=list)
    segments: list[str] = dataclasses.field(default_factory=list)
    segment_refs: list[str] = dataclasses.field(default_factory=list)
    state_dim: int | None = None  # width of Episode.state, None = no state
    state_spec: int | None = None
    arm_joints: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    #: fields a layout dict must have (those before schema 1.1)
    REQUIRED = (
        "joint_names",
        "has_qpos",
        "grippers",
        "has_qvel",
        "action_names",
        "has_action",
        "arms",
        "objects",
        "subtasks",
        "cameras",
    )

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
            targets=list(ep.target),
            gripper_cmds=list(ep.gripper_cmd),
            segments=list(ep.segment),
            segment_refs=list(ep.segment_ref),
            state_dim=None if ep.state is None else int(np.asarray(ep.state).shape[1]),
            state_spec=None if ep.state is None else int(ep.state_spec),
            arm_joints={a: list(j) for a, j in ep.arm_joints.items()},
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> _Layout:
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in cls.REQUIRED if n not in d]
        if missing:
            raise FormatError(f"{where}: key 'layout' lacks {missing}; expected keys {names}")
        return cls(**{n: d[n] for n in names if n in d})

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
    for name in layout.subtasks:  # 0/1 floats: LeRobot normalizes every observation.* input
        feats[SUBTASK_PREFIX + name] = {"dtype": "float32", "shape": [1], "names": None}
    for arm in layout.targets:
        vec(TARGET_PREFIX + arm, POSE_NAMES)
    for arm in layout.gripper_cmds:
        feats[GRIPPER_CMD_PREFIX + arm] = {"dtype": "float32", "shape": [1], "names": None}
    for group, arms in (("segment", layout.segments), ("segment_ref", layout.segment_refs)):
        for arm in arms:
            feats[LABEL_PREFIX[group] + arm] = {"dtype": "int64", "shape": [1], "names": None}
    if layout.state_dim is not None:
        feats[MUJOCO_STATE] = {
            "dtype": "float64",
            "shape": [layout.state_dim],
            "names": None,
        }
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


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth parquet dictionary encoding: the integer ones (indices, label ids).

    Float columns (joints, poses, MuJoCo states) are nearly all distinct values: dictionary
    pages for them cost write time and come out larger than plain snappy pages (an episode of
    stack_blocks: 5.4 -> 3.5 ms to write, 250 -> 214 KB).
    """
    return [f.name for f in schema if pa.types.is_integer(f.type)]


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
        cols[SUBTASK_PREFIX + name] = np.asarray(ep.subtasks[name]).astype(bool).astype(np.float32)
    for arm in layout.targets:
        cols[TARGET_PREFIX + arm] = np.asarray(ep.target[arm], np.float32)
    for arm in layout.gripper_cmds:
        cols[GRIPPER_CMD_PREFIX + arm] = np.asarray(ep.gripper_cmd[arm], np.float32)
    if layout.state_dim is not None:
        cols[MUJOCO_STATE] = np.asarray(ep.state, np.float64)
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


def label_ids(values: Any, table: list[str]) -> np.ndarray:
    """Per-step strings -> int64 ids into ``table`` (new labels appended, first-seen order)."""
    index = {s: i for i, s in enumerate(table)}
    out = np.empty(len(values), np.int64)
    for k, v in enumerate(np.asarray(values).tolist()):
        s = v.decode() if isinstance(v, bytes) else str(v)
        if s not in index:
            index[s] = len(table)
            table.append(s)
        out[k] = index[s]
    return out


def _meta_dict(meta: EpisodeMeta) -> dict[str, Any]:
    # shallow field dict: dataclasses.asdict would deep-copy the whole provenance first
    return to_jsonable({f.name: getattr(meta, f.name) for f in dataclasses.fields(meta)})


def _meta_from_dict(d: Mapping[str, Any]) -> EpisodeMeta:
    known = {f.name for f in dataclasses.fields(EpisodeMeta)}
    return EpisodeMeta(**{k: v for k, v in d.items() if k in known})


def _feature_map() -> dict[str, str]:
    return {
        STATE: "qpos (names = joint_names) followed by gripper[<arm>] as '<arm>_gripper' [0, 1]",
        VELOCITY: "qvel (names = joint_names)",
        ACTION: "action (names = action_names)",
        EE_PREFIX + "<arm>": "ee[<arm>]: x, y, z [m] + qw, qx, qy, qz, world frame",
        ENV_STATE: "objects[<obj>] poses concatenated: <obj>.x .. <obj>.qz, world frame",
        SUBTASK_PREFIX + "<name>": "subtasks[<name>] as 0.0/1.0 (bool before 2026-12-02)",
        TARGET_PREFIX + "<arm>": "target[<arm>]: commanded EE pose x, y, z + qw, qx, qy, qz",
        GRIPPER_CMD_PREFIX + "<arm>": "gripper_cmd[<arm>]: commanded opening [0, 1]",
        SEGMENT_PREFIX + "<arm>": "segment[<arm>] as ids into demoforge.labels.segment",
        SEGMENT_REF_PREFIX + "<arm>": "segment_ref[<arm>] as ids into demoforge.labels.segment_ref",
        MUJOCO_STATE: "state: full MuJoCo state (mj_getState, spec layout.state_spec), float64",
        IMAGE_PREFIX + "<cam>": "images[<cam>] (H.264 video, RGB)",
        DONE: "True on the last frame",
        SUCCESS: "True on the last frame when meta.success is True",
        "meta": f"full EpisodeMeta per episode in {DEMOFORGE_EPISODES_PATH}",
    }


def arrow_numpy(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``arr`` as a new numpy array: fixed-width numbers and bools without nulls are read from
    the Arrow buffers, anything else goes through ``to_numpy``.

    pyarrow's own conversion initialises its pandas support on first use and so imports pandas
    when it is installed (0.3-0.7 s in every process that reads a dataset, generation workers
    included).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t, n = arr.type, len(arr)
    if arr.null_count == 0 and (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
    ):
        buf = arr.buffers()[1]
        if pa.types.is_boolean(t):
            if n == 0:
                return np.empty(0, bool)
            bits = np.unpackbits(np.frombuffer(buf, np.uint8), bitorder="little")
            return bits[arr.offset : arr.offset + n].astype(bool)
        dt = np.dtype(t.to_pandas_dtype())
        if n == 0:
            return np.empty(0, dt)
        return np.frombuffer(buf, dt, count=n, offset=arr.offset * dt.itemsize).copy()
    return arr.to_numpy(zero_copy_only=False)


def read_parquet(path, columns: list[str] | None = None) -> pa.Table:
    """A parquet file (or its ``columns``) as a table, through ``pq.ParquetFile``.

    ``pq.read_table`` goes through ``pyarrow.dataset``, whose import pulls in pandas (0.7 s in
    every generation worker); ``ParquetFile.read`` silently skips unknown columns, so they are
    checked here and raise ``pa.ArrowInvalid`` like ``read_table`` does.
    """
    with pq.ParquetFile(path) as f:
        if columns is not None:
            names = f.schema_arrow.names
            missing = [c for c in columns if c not in names]
            if missing:
                raise pa.ArrowInvalid(f"No match for column(s) {missing} in {names}")
        return f.read(columns=columns)
