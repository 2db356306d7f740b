"""Plain-file episode format of the hardware bridge (``fmt=npz``), behind the ``Writer`` protocol.

Layout of a published directory::

    <root>/episode_000000.npz    arrays: time, qpos, qvel, action, ee/<arm>, gripper/<arm>,
                                 objects/<name>, subtasks/<name>, images/<camera>
    <root>/episode_000000.json   {"meta": EpisodeMeta fields, "joint_names", "action_names"}
    <root>/<staged files>        e.g. bridge_audit.jsonl (the server's audit trail)

Arrays keep the Episode's units and frames (poses: position [m] + quaternion w, x, y, z in the
world frame). :class:`NpzWriter` stages episodes in ``<root>.partial/episodes/`` and publishes
with one rename in :meth:`NpzWriter.finalize` (see :mod:`sim.io.writer`); :func:`read_npz_dir`
reads a directory back (validated).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError
from sim.io.atomic import atomic_open, output_errors, publish_dir, to_jsonable
from sim.io.writer import Staging

_GROUPS = ("ee", "gripper", "objects", "subtasks", "images")


def save_episode_npz(episode: Episode, path: str | os.PathLike) -> None:
    """One Episode as an ``.npz`` (arrays) plus a ``.json`` sidecar (meta, names), atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {"time": np.asarray(episode.time)}
    for name in ("qpos", "qvel", "action"):
        if getattr(episode, name) is not None:
            arrays[name] = np.asarray(getattr(episode, name))
    for group in ("ee", "gripper", "objects", "subtasks"):
        for k, v in getattr(episode, group).items():
            arrays[f"{group}/{k}"] = np.asarray(v)
    for cam in episode.images:
        arrays[f"images/{cam}"] = episode.image(cam)
    side = {
        "meta": to_jsonable(asdict(episode.meta)),
        "joint_names": episode.joint_names,
        "action_names": episode.action_names,
    }
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    with atomic_open(path.with_suffix(".json"), "w") as fh:
        json.dump(side, fh)


def load_episode_npz(path: str | os.PathLike) -> Episode:
    """Inverse of :func:`save_episode_npz` (raises FormatError naming the file)."""
    path = Path(path)
    try:
        side = json.loads(path.with_suffix(".json").read_text())
        z = np.load(path)
        files = list(z.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise FormatError(f"{path}: cannot read episode ({type(e).__name__}: {e})") from None
    if not isinstance(side, dict) or not {"meta", "joint_names", "action_names"} <= set(side):
        raise FormatError(
            f"{path.with_suffix('.json')}: expected keys meta, joint_names, action_names"
        )
    groups: dict[str, dict[str, np.ndarray]] = {g: {} for g in _GROUPS}
    try:
        for key in files:
            g, _, k = key.partition("/")
            if k:
                if g not in groups:
                    raise FormatError(f"{path}: unknown array group {g!r} in {key!r}")
                groups[g][k] = z[key]
        ep = Episode(
            meta=EpisodeMeta(**side["meta"]),
            time=z["time"],
            joint_names=side["joint_names"],
            qpos=z["qpos"] if "qpos" in files else None,
            qvel=z["qvel"] if "qvel" in files else None,
            action_names=side["action_names"],
            action=z["action"] if "action" in files else None,
            **groups,
        )
    except (
        KeyError,
        TypeError,
        ValueError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
    ) as e:
        raise FormatError(f"{path}: malformed episode ({type(e).__name__}: {e})") from None
    return ep.validate()


def read_npz_dir(root: str | os.PathLike) -> list[Episode]:
    """All ``episode_*.npz`` under ``root``, in order (FormatError if there are none)."""
    root = Path(root)
    files = sorted(root.glob("episode_*.npz"))
    if not files:
        raise FormatError(f"{root}: no episode_*.npz files")
    return [load_episode_npz(f) for f in files]


class NpzWriter:
    """Staged, resumable writer of the npz layout (implements :class:`sim.io.writer.Writer`).

    Args:
        root: final directory.
        overwrite: replace an existing ``root`` / discard an unfinished ``<root>.partial``.
        resume: continue ``<root>.partial`` (episodes staged there are kept).

    Raises:
        OutputExistsError: ``root`` or ``<root>.partial`` exists (see :class:`Staging`).
    """

    def __init__(
        self, root: str | os.PathLike, *, overwrite: bool = False, resume: bool = False
    ) -> None:
        self._stage = Staging(
            root,
            overwrite=overwrite,
            resume=resume,
            kind="npz",
            count_staged=lambda p: len(list((p / "episodes").glob("episode_*.npz"))),
        )
        self.root, self.partial = self._stage.root, self._stage.partial
        self._episodes = self.partial / "episodes"
        if not self._stage.published:
            self._episodes.mkdir(parents=True, exist_ok=True)
        self._n = (
            self._stage.published_episodes
            if self._stage.published
            else len(list(self._episodes.glob("episode_*.npz")))
        )

    @property
    def num_staged(self) -> int:
        return self._n

    @property
    def published(self) -> bool:
        return self._stage.published

    def add(self, episode: Episode) -> int:
        """Validate and stage one episode; return its index."""
        episode.validate()
        i = self._n
        with output_errors(self.partial, what=f"episode {i}"):
            save_episode_npz(episode, self._episodes / f"episode_{i:06d}.npz")
        self._n += 1
        return i

    def stage_file(self, relpath: str, data: bytes) -> Path:
        """Stage an extra file published at ``<root>/<relpath>``."""
        return self._stage.stage_file(relpath, data)

    def finalize(self) -> Path:
        """Copy the staged episodes and files into the final layout and publish it."""
        if self._stage.published:
            return self.root
        build = self._stage.fresh_build()
        with output_errors(self.partial, what="the npz layout"):
            for p in sorted(self._episodes.iterdir()):
                if p.name.startswith("episode_"):
                    shutil.copyfile(p, build / p.name)
            self._stage.copy_files(build)
        return self._stage.publish(publish_dir, self._n)
