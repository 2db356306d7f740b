"""Format registry: detect a demo file's format and dispatch to its reader; shared value checks.

Formats (name: what; how :func:`detect_format` recognizes it):

- ``lerobot``: LeRobot v2.1/v3 dataset (``sim.io.lerobot``); a directory with ``meta/info.json``.
- ``robomimic``: robomimic / MimicGen HDF5 (``sim.io.robomimic``); ``.hdf5``/``.h5`` whose
  ``data`` group has attribute ``env_args``.
- ``robosuite``: raw robosuite ``demo.hdf5`` (``sim.io.robosuite``); ``.hdf5`` with attribute
  ``env`` or ``repository_version`` and ``data/demo_*/states``.
- ``rlds``: RLDS TFRecord of ``tf.train.Example`` (``sim.io.rlds``); a ``*.tfrecord*`` file or a
  directory holding some.
- ``teleop``: VR/exoskeleton teleop log (``sim.io.teleop_log``); ``.csv`` or ``.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sim.episode import Episode
from sim.errors import FormatError, SchemaError, UnknownNameError

FORMATS: tuple[str, ...] = ("lerobot", "robomimic", "robosuite", "rlds", "teleop")
_HDF5_SUFFIXES = (".hdf5", ".h5", ".hdf")


def check_finite(where: str, arr: np.ndarray, row_word: str = "row") -> None:
    """Raise SchemaError naming ``where`` and the first row holding NaN/inf.

    Args:
        where: "<file>: '<key>'" prefix for the message.
        arr: array whose first axis is the row/step.
        row_word: what a row is called in the message ("row", "step").
    """
    a = np.asarray(arr)
    if a.dtype.kind in "fc" and a.size and not np.all(np.isfinite(a)):
        row = int(np.argwhere(~np.isfinite(a))[0][0])
        raise SchemaError(f"{where} has NaN/inf at {row_word} {row}; expected finite values")


def check_unit_quat(where: str, q: np.ndarray, order: str, tol: float = 1e-3) -> None:
    """Raise SchemaError naming ``where`` and the first row whose quaternion is not unit-norm.

    Args:
        where: "<file>: '<key>'" prefix for the message.
        q: (T, 4) quaternions.
        order: component order the source claims, for the message ("x,y,z,w" or "w,x,y,z").
        tol: allowed |norm - 1|.
    """
    norms = np.linalg.norm(np.asarray(q, dtype=np.float64), axis=-1)
    bad = np.abs(norms - 1.0) > tol
    if np.any(bad):
        row = int(np.argmax(bad))
        raise SchemaError(
            f"{where} quaternion at row {row} has norm {norms[row]:.4f}; "
            f"expected a unit quaternion ({order}); wrong columns or convention?"
        )


def _hdf5_kind(path: Path) -> str:
    import h5py

    from sim.io.hdf5 import hdf5_errors, open_hdf5

    with open_hdf5(path) as f, hdf5_errors(path):
        data = f.get("data")
        if isinstance(data, h5py.Group) and "env_args" in data.attrs:
            return "robomimic"
        attrs = set(f.attrs) | (set(data.attrs) if isinstance(data, h5py.Group) else set())
        has_states = isinstance(data, h5py.Group) and any(
            isinstance(g, h5py.Group) and "states" in g for g in data.values()
        )
        if attrs & {"env", "repository_version"} and has_states:
            return "robosuite"
    raise FormatError(
        f"{path}: HDF5 layout not recognized; expected 'data' with attribute 'env_args' "
        "(robomimic/MimicGen) or attributes 'env'/'repository_version' and data/demo_*/states "
        "(robosuite demo.hdf5)"
    )


def detect_format(path: str | Path) -> str:
    """Name of the format of ``path`` (one of :data:`FORMATS`).

    Raises:
        FormatError: the path does not exist or matches no known format; the message says what
            each format looks like.
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "meta" / "info.json").is_file():  # sim.io.lerobot reports bad versions
            return "lerobot"
        if any(".tfrecord" in p.name for p in path.iterdir() if p.is_file()):
            return "rlds"
    else:
        name = path.name.lower()
        if name.endswith(_HDF5_SUFFIXES):
            return _hdf5_kind(path)
        if ".tfrecord" in name:
            return "rlds"
        if name.endswith((".csv", ".jsonl")):
            return "teleop"
    raise FormatError(
        f"{path}: cannot detect the demo format; expected a LeRobot directory (meta/info.json), "
        "a robomimic/robosuite .hdf5, an RLDS *.tfrecord* file or directory, or a teleop "
        ".csv/.jsonl log"
    )


def _readers() -> dict[str, Callable[..., list[Episode]]]:
    def lerobot(path: Path, **kw: Any) -> list[Episode]:
        from sim.io.lerobot import read_lerobot

        return read_lerobot(path, **kw)

    def robomimic(path: Path, **kw: Any) -> list[Episode]:
        from sim.io.robomimic import read_robomimic

        return read_robomimic(path, **kw)

    def robosuite(path: Path, **kw: Any) -> list[Episode]:
        from sim.io.robosuite import read_robosuite

        return read_robosuite(path, **kw)

    def rlds(path: Path, **kw: Any) -> list[Episode]:
        from sim.io.rlds import read_rlds

        return read_rlds(path, **kw)

    def teleop(path: Path, **kw: Any) -> list[Episode]:
        from sim.io.teleop_log import read_teleop_log

        return [read_teleop_log(path, **kw)]

    return {
        "lerobot": lerobot,
        "robomimic": robomimic,
        "robosuite": robosuite,
        "rlds": rlds,
        "teleop": teleop,
    }


def read_episodes(path: str | Path, format: str = "auto", **kw: Any) -> list[Episode]:
    """Read every episode of a demo file/directory into canonical Episodes.

    Args:
        path: file or dataset directory.
        format: one of :data:`FORMATS` (``"mimicgen"`` is accepted for ``"robomimic"``), or
            ``"auto"`` to use :func:`detect_format`.
        **kw: passed to the format's reader (e.g. ``episodes=`` for lerobot, ``fps=`` for teleop).

    Raises:
        UnknownNameError: ``format`` is not a known format name.
        FormatError: the file is corrupt or not in the format.
    """
    path = Path(path)
    name = detect_format(path) if format == "auto" else format
    name = {"mimicgen": "robomimic"}.get(name, name)
    readers = _readers()
    if name not in readers:
        raise UnknownNameError("format", name, [*readers, "auto", "mimicgen"])
    return readers[name](path, **kw)
