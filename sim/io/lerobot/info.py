"""LeRobot dataset metadata (v2.0/v2.1/v3.0): info.json, tasks and per-episode locations."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sim.errors import FormatError
from sim.io.atomic import json_digest, sha256_file
from sim.io.lerobot.features import (
    DATA_PATH,
    DEFAULT_FEATURES,
    DEMOFORGE_DATASET_PATH,
    EPISODES_PATH,
    INTEGRITY_KEY,
    READABLE_VERSIONS,
    read_parquet,
)


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
    checksums: dict[str, str] = field(default_factory=dict)  # relpath -> sha256 (ours only)
    _verified: set[str] = field(default_factory=set, repr=False)

    def verify(self, path: Path) -> None:
        """Check ``path`` against the SHA-256 recorded at write time (once per file).

        Raises:
            FormatError: the file's content differs from what the writer recorded.
        """
        try:
            rel = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return
        if rel in self._verified or rel not in self.checksums:
            return
        if not Path(path).is_file():
            raise FormatError(f"{path}: file missing (listed in meta/info.json)")
        if sha256_file(path) != self.checksums[rel]:
            raise FormatError(
                f"{path}: content does not match the checksum recorded in meta/info.json "
                f"['{INTEGRITY_KEY}']; the file is damaged (truncated or modified)"
            )
        self._verified.add(rel)

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
    checksums = _integrity(info, info_path)
    video_keys = [k for k, v in features.items() if v["dtype"] == "video"]
    verify = _Verifier(root, checksums)
    if version == "v3.0":
        tasks, episodes = _index_v30(root, info, info_path, video_keys, verify)
    else:
        tasks, episodes = _index_v2x(root, info, info_path, video_keys)
    for rel in checksums:  # every small metadata file we wrote, read or not
        if rel.startswith("meta/"):
            verify(root / rel)
    demo = info.get("demoforge")
    if demo is None and (root / DEMOFORGE_DATASET_PATH).is_file():
        verify(root / DEMOFORGE_DATASET_PATH)
        demo = _load_json(root / DEMOFORGE_DATASET_PATH)
    out = LeRobotInfo(
        root=root,
        codebase_version=version,
        fps=fps,
        robot_type=info.get("robot_type"),
        features=features,
        tasks=tasks,
        episodes=episodes,
        demoforge=demo,
        raw=info,
        checksums=checksums,
    )
    out._verified.update(verify.done)
    return out


def _integrity(info: dict, info_path: Path) -> dict[str, str]:
    """Verify info.json's own digest (when we wrote it); return the recorded file digests."""
    block = info.get(INTEGRITY_KEY)
    if block is None:
        return {}
    if not isinstance(block, dict) or "info_sha256" not in block:
        raise FormatError(f"{info_path}: key {INTEGRITY_KEY!r} is malformed; file damaged?")
    stripped = {**info, INTEGRITY_KEY: {k: v for k, v in block.items() if k != "info_sha256"}}
    if json_digest(stripped) != block["info_sha256"]:
        raise FormatError(
            f"{info_path}: content does not match its recorded digest "
            f"({INTEGRITY_KEY}.info_sha256); the file is damaged or was edited by hand"
        )
    files = block.get("files_sha256", {})
    if not isinstance(files, dict):
        raise FormatError(f"{info_path}: key {INTEGRITY_KEY}.files_sha256 must be a dict")
    return {str(k): str(v) for k, v in files.items()}


class _Verifier:
    """Checks metadata files against recorded digests while the index is read."""

    def __init__(self, root: Path, checksums: dict[str, str]) -> None:
        self.root, self.checksums, self.done = root, checksums, set()

    def __call__(self, path: Path) -> None:
        rel = path.relative_to(self.root).as_posix()
        if rel in self.checksums and rel not in self.done:
            if not path.is_file():
                raise FormatError(f"{path}: file missing (listed in meta/info.json)")
            if sha256_file(path) != self.checksums[rel]:
                raise FormatError(
                    f"{path}: content does not match the checksum recorded in meta/info.json "
                    f"['{INTEGRITY_KEY}']; the file is damaged (truncated or modified)"
                )
            self.done.add(rel)


def _read_parquet_meta(path: Path, what: str, columns: list[str] | None = None):
    """pyarrow table of a metadata parquet; damage becomes a FormatError naming the file."""
    try:
        return read_parquet(path, columns=columns)
    except (OSError, ValueError, pa.ArrowException) as e:
        raise FormatError(
            f"{path}: cannot read {what} ({type(e).__name__}: {e}); expected an intact parquet "
            "file (truncated or damaged?)"
        ) from e


def _index_v30(
    root: Path, info: dict, info_path: Path, video_keys: list[str], verify: _Verifier
) -> tuple[list[str], dict[int, LeRobotEpisodeRef]]:
    data_tpl = _require(info, "data_path", info_path, f"a template like {DATA_PATH!r}")
    video_tpl = info.get("video_path")
    if video_keys and not video_tpl:
        raise FormatError(f"{info_path}: key 'video_path' is empty but features have videos")
    tasks_path = root / "meta" / "tasks.parquet"
    if not tasks_path.is_file():
        raise FormatError(f"{tasks_path}: file missing; expected pandas index 'task'")
    verify(tasks_path)
    # read as arrow, not pandas (pandas costs 0.7 s to import in every worker): the task names
    # are the 'task' column, or the column the pandas metadata names as the index
    table = _read_parquet_meta(tasks_path, "the task table")
    try:
        meta = table.schema.pandas_metadata or {}
        index_cols = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    except (ValueError, TypeError, AttributeError) as e:  # pandas metadata damaged
        raise FormatError(f"{tasks_path}: cannot read the task table ({e})") from e
    cols = table.column_names
    data_cols = [c for c in cols if c not in index_cols]
    if "task_index" not in cols:
        raise FormatError(f"{tasks_path}: column 'task_index' missing; columns {data_cols}")
    name_col = "task" if "task" in cols else (index_cols[0] if index_cols else None)
    if name_col is None:
        raise FormatError(
            f"{tasks_path}: no task names; expected a 'task' column or pandas index, "
            f"columns {data_cols}"
        )
    names = table.column(name_col).to_pylist()
    ids = table.column("task_index").to_pylist()
    tasks_by_index = {int(i): str(t) for t, i in zip(names, ids, strict=True)}
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
        verify(path)
        schema = _read_parquet_meta(path, "the episode table").schema
        cols = [c for c in schema.names if not c.startswith("stats/")]
        vneed = [
            f"videos/{k}/{s}"
            for k in video_keys
            for s in ("chunk_index", "file_index", "from_timestamp")
        ]
        for c in need + vneed:
            if c not in cols:
                raise FormatError(f"{path}: column {c!r} missing; columns present: {cols}")
        for r in _read_parquet_meta(path, "the episode table", cols).to_pylist():
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
