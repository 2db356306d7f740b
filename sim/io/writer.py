"""The one ``Writer`` protocol every dataset writer implements (LeRobot, robomimic, bridge).

Life cycle: open (fresh, ``overwrite`` or ``resume``) -> :meth:`Writer.add` one episode at a
time (staged on disk under ``<path>.partial``, memory stays one episode) -> optional
:meth:`Writer.stage_file` for reports and plots -> :meth:`Writer.finalize`, which builds the
final layout inside the staging area and publishes it with one rename, last. A crash at any
point leaves only ``<path>.partial``; reopening with ``resume=True`` continues it, and a crash
inside finalize is completed by the resumed run:

* killed before the rename: ``<path>`` is absent; the resumed writer still has every staged
  episode and file and its ``finalize`` builds and publishes again;
* killed after the rename (before ``<path>.partial`` was removed): ``<path>`` is complete, with
  its report (staged files are published with the data); the resumed writer reports
  ``published == True``, removes the stale staging folder and its ``finalize`` returns the path.

:class:`Staging` is the shared staging-folder logic; :func:`open_writer` picks a writer by
format name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable

from sim.episode import Episode
from sim.errors import ConfigError, OutputExistsError, UnknownNameError
from sim.io.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    check_output_free,
    output_errors,
    partial_path,
    remove_tree,
)

log = logging.getLogger(__name__)

#: Output formats :func:`open_writer` knows.
WRITER_FORMATS = ("lerobot", "robomimic")
_PUBLISHED = "published.json"


@runtime_checkable
class Writer(Protocol):
    """A staged, resumable, atomically published dataset writer."""

    root: Path  # final dataset directory
    partial: Path  # staging directory

    @property
    def num_staged(self) -> int:
        """Episodes staged so far (those found when resuming included)."""

    @property
    def published(self) -> bool:
        """True once the dataset sits complete at ``root`` (also after a crash past the rename)."""

    def add(self, episode: Episode) -> int:
        """Validate and stage one episode; return its index in the dataset."""

    def stage_file(self, relpath: str, data: bytes) -> Path:
        """Stage an extra file (e.g. ``meta/demoforge_report.json``) published with the data."""

    def finalize(self) -> Path:
        """Build the final layout in the staging area, rename it into place; return the path."""


def open_writer(
    format: str,
    out: str | os.PathLike,
    *,
    fps: int | None = None,
    config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    **format_options: Any,
) -> Writer:
    """Open the writer of ``format`` for the dataset directory ``out``.

    Args:
        format: ``"lerobot"`` (LeRobot v3.0) or ``"robomimic"`` (``<out>/demo.hdf5`` + ``meta/``).
        out: final dataset directory.
        fps: frame rate [Hz] (integer for LeRobot).
        config: resolved run configuration (JSON-able): stored in the dataset, and a resume with
            other values is refused naming the keys that differ.
        overwrite: replace an existing dataset / discard an unfinished one.
        resume: continue ``<out>.partial`` (or complete a crashed finalize).
        **format_options: passed to the writer (LeRobot: ``robot_type``, ``video``, sizes;
            robomimic: ``env_args``, ``model_xml``, ``valid_fraction``, ``split_seed``,
            ``env_interface_name``, ``env_interface_type``, ``compress_images``).

    Raises:
        UnknownNameError: unknown format.
        OutputExistsError, ConfigError, OutputWriteError: see the writers.
    """
    if format == "lerobot":
        from sim.io.lerobot import LeRobotWriter

        return LeRobotWriter(
            out, fps=fps, config=config, overwrite=overwrite, resume=resume, **format_options
        )
    if format in ("robomimic", "mimicgen"):
        from sim.io.robomimic import RobomimicWriter

        return RobomimicWriter(
            out, fps=fps, config=config, overwrite=overwrite, resume=resume, **format_options
        )
    raise UnknownNameError("output format", format, WRITER_FORMATS)


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON-like configs (for resume messages)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in old or k not in new:
                out.append(key)
            else:
                out += config_diff(old[k], new[k], key)
        return out
    return [] if old == new else [prefix or "<root>"]


def resume_mismatch(partial: Path, key: str, old: Any, new: Any, where: Path) -> ConfigError:
    """ConfigError for a resume with other settings; large configs name only the keys."""
    if isinstance(old, dict) and isinstance(new, dict) and len(repr(old)) + len(repr(new)) > 300:
        keys = config_diff(old, new)
        pairs = "; ".join(
            f"{k}: staged {lookup_dotted(old, k)!r} vs now {lookup_dotted(new, k)!r}"
            for k in keys[:10]
        )
        return ConfigError(
            f"resuming {partial}: {key} differs from the staged episodes in keys {keys} "
            f"({pairs}) ({where}); resume with the same values or overwrite=True"
        )
    return ConfigError(
        f"resuming {partial}: {key} is {new!r} but the staged episodes were written with "
        f"{old!r} ({where})"
    )


def lookup_dotted(d: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return "<absent>"
        d = d[part]
    return d


def check_relpath(relpath: str) -> PurePosixPath:
    """A staged file's path: relative, POSIX, no ``..``; raise ConfigError otherwise."""
    p = PurePosixPath(relpath)
    if not relpath or p.is_absolute() or ".." in p.parts or "\\" in relpath:
        raise ConfigError(
            f"stage_file path {relpath!r} must be relative inside the dataset "
            "(e.g. 'meta/demoforge_report.json'), without '..'"
        )
    return p


class Staging:
    """The ``<root>.partial`` staging folder shared by the writers.

    Holds ``files/`` (extra files staged with :meth:`stage_file`), ``dataset/`` (the layout being
    built by finalize) and ``published.json`` (written just before the publishing rename).

    Args:
        root: final dataset directory.
        overwrite: replace ``root`` when publishing and discard an existing staging folder.
        resume: keep an existing staging folder; complete a publish that crashed after renaming.
        kind: writer name for messages.
        count_staged: returns the number of staged episodes (for the "exists" message).

    Raises:
        OutputExistsError: ``root`` exists (without ``overwrite``), or the staging folder exists
            without ``resume``/``overwrite``.
        OutputWriteError: the staging folder cannot be created (read-only, disk full).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        overwrite: bool,
        resume: bool,
        kind: str,
        count_staged: Callable[[Path], int],
    ) -> None:
        self.root = Path(root)
        self.partial = partial_path(self.root)
        self.overwrite = overwrite
        self.kind = kind
        self.published = False
        self.published_episodes = 0
        self.resumed = False
        marker = self.partial / _PUBLISHED
        if (
            resume
            and self.root.exists()
            and marker.is_file()
            and not (self.partial / "dataset").exists()
        ):
            # killed after the publishing rename: the dataset at root is complete
            info = json.loads(marker.read_text())
            self.published = True
            self.published_episodes = int(info.get("episodes", 0))
            self._cleanup()
            log.info("%s: already published by the interrupted run; nothing to redo", self.root)
            return
        check_output_free(self.root, overwrite)
        if self.partial.exists():
            if resume:
                self.resumed = True
                (self.partial / _PUBLISHED).unlink(missing_ok=True)
                remove_tree(self.partial / "dataset")  # a half-built layout is rebuilt
            elif overwrite:
                remove_tree(self.partial)
            else:
                n = count_staged(self.partial)
                raise OutputExistsError(
                    f"unfinished write {self.partial} exists ({n} staged episodes); pass "
                    "resume=True to continue it or overwrite=True to discard it"
                )
        with output_errors(self.partial, what=f"the {kind} staging folder"):
            (self.partial / "files").mkdir(parents=True, exist_ok=True)

    @property
    def files(self) -> Path:
        return self.partial / "files"

    @property
    def build(self) -> Path:
        return self.partial / "dataset"

    def stage_file(self, relpath: str, data: bytes) -> Path:
        """Write ``data`` to ``files/<relpath>`` atomically; return the staged path."""
        rel = check_relpath(relpath)
        if self.published:
            final = self.root / rel
            log.info("%s: already published with its files; not restaging %s", self.root, rel)
            return final
        path = self.files / rel
        with output_errors(self.partial, len(data), f"staged file {rel}"):
            atomic_write_bytes(path, bytes(data))
        return path

    def staged_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files.rglob("*") if p.is_file())

    def copy_files(self, build: Path) -> None:
        """Copy the staged files into the layout being built (kept for a rerun of finalize)."""
        for p in sorted(self.files.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                dst = build / p.relative_to(self.files)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dst)

    def fresh_build(self) -> Path:
        remove_tree(self.build)
        self.build.mkdir(parents=True)
        return self.build

    def publish(self, publish: Callable[[Path, Path, bool], Path], episodes: int) -> Path:
        """Rename the built layout to ``root`` (marker first), then remove the staging folder."""
        atomic_write_json(self.partial / _PUBLISHED, {"root": str(self.root), "episodes": episodes})
        publish(self.build, self.root, self.overwrite)
        self.published = True
        self.published_episodes = episodes
        self._cleanup()
        return self.root

    def _cleanup(self) -> None:
        """Remove the staging folder, the publish marker last (a kill midway stays resumable)."""
        for p in self.partial.iterdir():
            if p.name != _PUBLISHED:
                remove_tree(p)
        (self.partial / _PUBLISHED).unlink(missing_ok=True)
        self.partial.rmdir()


class StagedWriter:
    """What the staged writers share: the open check and finalize-on-clean-exit.

    Subclasses set ``root``, ``_finalized`` and ``_stage`` (a :class:`Staging`).
    """

    root: Path
    _finalized: bool
    _stage: Staging
    _staged: list

    @property
    def num_staged(self) -> int:
        """Episodes staged so far (those found when resuming included; or published)."""
        return self._stage.published_episodes if self._stage.published else len(self._staged)

    @property
    def published(self) -> bool:
        """True once the dataset is complete at ``root`` (also after a crash past the rename)."""
        return self._stage.published

    def _check_open(self) -> None:
        name = type(self).__name__
        if self._finalized:
            raise ConfigError(f"{name}({self.root}) is already finalized")
        if self._stage.published:
            raise ConfigError(
                f"{name}({self.root}): the dataset was already published by the "
                "interrupted run; nothing more can be added"
            )

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
