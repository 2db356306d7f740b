"""Atomic file and directory writes shared by the dataset writers.

A file is written to a temporary sibling, flushed to disk and renamed over its target, so a
reader sees either the old content or the new one, never half of it. A dataset directory is
built in ``<root>.partial/`` and renamed to ``<root>`` only once complete (see
:func:`publish_dir`), so a directory at the final path always holds a finished dataset.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from sim.errors import OutputExistsError, OutputWriteError

PARTIAL_SUFFIX = ".partial"
#: Test hook: ``DEMOFORGE_KILL_AT=before_publish|after_publish`` SIGKILLs the process right before
#: / right after the rename in :func:`publish_dir` (used by crash-in-finalize tests).
KILL_ENV = "DEMOFORGE_KILL_AT"
#: errno values that mean "the output location cannot take the data".
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def _mb(n: float) -> str:
    return f"{n / 1024**2:.1f} MB"


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the filesystem holding ``path`` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def check_free_space(path: str | os.PathLike, need: int, what: str) -> None:
    """Raise OutputWriteError naming ``path`` when fewer than ``need`` bytes are free there."""
    free = free_bytes(path)
    if free < need:
        raise OutputWriteError(
            f"{path}: not enough disk space for {what}: needs about {_mb(need)}, "
            f"{_mb(free)} free; free some space or choose another output directory"
        )


@contextmanager
def output_errors(
    path: str | os.PathLike, need: int | None = None, what: str = ""
) -> Iterator[None]:
    """Turn a disk-full / read-only OSError into one OutputWriteError naming the path and size.

    Args:
        path: the output location being written (named in the message).
        need: bytes the operation needs (named in the message when known).
        what: what is being written, for the message.
    """
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as e:
        if e.errno not in _NO_SPACE | _READ_ONLY:
            raise
        where = e.filename or path
        size = f"; it needs about {_mb(need)}" if need else ""
        doing = f" while writing {what}" if what else ""
        if e.errno in _NO_SPACE:
            raise OutputWriteError(
                f"{where}: disk full{doing} ({os.strerror(e.errno)}){size}, "
                f"{_mb(free_bytes(path))} free at {path}; free some space or choose another "
                "output directory"
            ) from e
        raise OutputWriteError(
            f"{where}: cannot write{doing} ({os.strerror(e.errno)}); the output location "
            f"{path} is read-only or not writable{size}; choose a writable output directory"
        ) from e


def _maybe_kill(point: str) -> None:
    if os.environ.get(KILL_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (memory stays ``chunk`` bytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_digest(obj: Any) -> str:
    """Hex SHA-256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    text = json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mkstemp creates 0600 files; published files get the usual permissions (0666 & ~umask).
_FILE_MODE = 0o666 & ~_umask()


def partial_path(root: str | os.PathLike) -> Path:
    """The staging directory ``<root>.partial`` beside the final dataset directory."""
    root = Path(root)
    return root.with_name(root.name + PARTIAL_SUFFIX)


def check_output_free(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise OutputExistsError if ``path`` exists and ``overwrite`` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output {path} already exists; pass overwrite=True to replace it "
            "(or choose another path)"
        )


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path for a library that writes files itself (pyarrow, PyAV).

    The temporary file is renamed to ``path`` when the block exits normally and removed on an
    exception. The temporary name keeps ``path``'s suffix so format detection by extension works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, sets and tuples into plain JSON types (recursively)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _json_default(obj: Any) -> Any:
    """``json.dumps`` hook: what the C encoder cannot write natively (see :func:`to_jsonable`)."""
    if isinstance(obj, (np.ndarray, np.generic, os.PathLike, set, frozenset)) or (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    ):
        return to_jsonable(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps_json(obj: Any, indent: int | None = 4) -> str:
    """JSON text of ``obj`` (numpy values become lists/numbers), as :func:`to_jsonable` gives.

    Plain containers go through json's C encoder untouched (fast for large provenance and
    stats); only numpy values, paths, sets and dataclasses are converted. Falls back to a full
    :func:`to_jsonable` pass for non-string dict keys such as numpy integers.
    """
    try:
        return json.dumps(obj, indent=indent, default=_json_default)
    except TypeError:
        return json.dumps(to_jsonable(obj), indent=indent)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 4) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (numpy values become lists/numbers)."""
    atomic_write_text(path, dumps_json(obj, indent) + "\n")


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a file or directory tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def publish_dir(built: str | os.PathLike, final: str | os.PathLike, overwrite: bool) -> Path:
    """Rename the finished directory ``built`` to ``final`` (same filesystem).

    With ``overwrite``, an existing ``final`` is first moved aside and deleted only after the
    rename succeeded, so at every moment either the old or the new dataset sits at ``final``
    except for the instant between two renames.

    Raises:
        OutputExistsError: ``final`` exists and ``overwrite`` is False.
    """
    built, final = Path(built), Path(final)
    check_output_free(final, overwrite)
    _maybe_kill("before_publish")
    old = None
    if final.exists():
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        remove_tree(old)
        os.replace(final, old)
    try:
        os.replace(built, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    _maybe_kill("after_publish")
    if old is not None:
        remove_tree(old)
    return final
