"""HDF5 helpers shared by the robomimic and robosuite readers/writers and the format detector.

Every reader error becomes a :class:`~sim.errors.FormatError` naming the file and the dataset.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sim.errors import FormatError
from sim.io.sanity import check_finite

log = logging.getLogger(__name__)

DEMO = re.compile(r"^demo_(\d+)$")


def attr_str(value: Any) -> str:
    """An HDF5 string attribute as str (h5py may return bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def open_hdf5(path: Path) -> h5py.File:
    """Open read-only; h5py's OSError becomes a FormatError naming the file."""
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise FormatError(
            f"{path}: cannot open as HDF5 ({e}); expected a complete HDF5 file "
            "(truncated or not HDF5?)"
        ) from e


@contextlib.contextmanager
def hdf5_errors(path: Path) -> Iterator[None]:
    """Turn h5py's low-level errors on a damaged file into a FormatError naming the file."""
    try:
        yield
    except (OSError, KeyError, RuntimeError) as e:
        raise FormatError(
            f"{path}: HDF5 read failed ({e}); expected an intact file (corrupt or truncated?)"
        ) from e


def demo_names(path: Path, data: h5py.Group, pattern: re.Pattern = DEMO) -> list[str]:
    """``demo_<int>`` groups of ``data`` sorted by the integer (robomimic's order)."""
    names = [k for k in data if pattern.match(k) and isinstance(data[k], h5py.Group)]
    others = [k for k in data if k not in names]
    if others:
        log.warning("%s: ignoring non-demo entries in 'data': %s", path, others)
    if not names:
        raise FormatError(f"{path}: group 'data' has no demo_<int> groups; expected at least one")
    return sorted(names, key=lambda k: int(pattern.match(k).group(1)))


def read_dataset(
    path: Path,
    group: h5py.Group,
    key: str,
    ndim: int | tuple[int, ...] | None = None,
    rows: int | None = None,
    rows_from: str = "",
) -> np.ndarray:
    """Read ``group[key]`` fully, checking presence, rank, row count and finiteness.

    Raises:
        FormatError: missing, unreadable (truncated file), wrong rank or row count.
        SchemaError: NaN/inf values (message names the row).
    """
    full = f"{group.name.lstrip('/')}/{key}"
    if key not in group:
        raise FormatError(f"{path}: missing dataset '{full}'; expected it in every demo")
    try:
        arr = np.asarray(group[key][()])
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise FormatError(f"{path}: cannot read '{full}' ({e}); file truncated?") from e
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if ndims is not None and arr.ndim not in ndims:
        raise FormatError(
            f"{path}: '{full}' has shape {arr.shape}; expected {' or '.join(map(str, ndims))}-D"
        )
    if rows is not None and (arr.ndim == 0 or arr.shape[0] != rows):
        raise FormatError(
            f"{path}: '{full}' has {arr.shape[0] if arr.ndim else 0} rows; expected {rows} "
            f"({rows_from or 'the demo length'})"
        )
    check_finite(f"{path}: '{full}'", arr)
    return arr


def dataset(group: h5py.Group, name: str, data: Any, **kw: Any) -> h5py.Dataset:
    """Create a dataset with a Fletcher-32 checksum (so corruption is caught on read)."""
    arr = np.asarray(data)
    if arr.size:
        kw.setdefault("fletcher32", True)
    return group.create_dataset(name, data=arr, **kw)
