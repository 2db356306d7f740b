"""Format registry: detect a demo file's format and dispatch to its reader; shared value checks.

Formats (name: what; how :func:`detect_format` recognizes it):

- ``lerobot``: LeRobot v2.1/v3 dataset (``sim.io.lerobot``); a directory with ``meta/info.json``.
- ``robomimic``: robomimic / MimicGen HDF5 (``sim.io.robomimic``); ``.hdf5``/``.h5`` whose
  demos hold an ``obs`` group (or, without states, whose ``data`` has attribute ``env_args``).
- ``robosuite``: raw robosuite ``demo.hdf5`` (``sim.io.robosuite``), one or more arms; ``.hdf5``
  whose demos hold ``states`` and ``@model_file`` and no ``obs`` (this includes robomimic's
  un-extracted downloads, which carry ``env_args`` too).
- ``rlds``: RLDS TFRecord of ``tf.train.Example`` (``sim.io.rlds``); a ``*.tfrecord*`` file or a
  directory holding some.
- ``teleop``: VR/exoskeleton teleop log (``sim.io.teleop_log``); ``.csv`` or ``.jsonl``.

:func:`read_episodes` runs :func:`sim.io.sanity.check_episode` on every episode of every reader
and reports skipped episodes in a :class:`~sim.io.sanity.ReadReport`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.episode import Episode
from sim.errors import ConfigError, FormatError, SimError, UnknownNameError
from sim.io.sanity import (
    ReadReport,
    SanityLimits,
    check_episode,
    check_finite,
    check_unit_quat,
    split_source,
)

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("lerobot", "robomimic", "robosuite", "rlds", "teleop")
_HDF5_SUFFIXES = (".hdf5", ".h5", ".hdf")


def _hdf5_kind(path: Path) -> str:
    """robomimic (``obs/`` groups) vs robosuite (``states`` + ``@model_file``, no ``obs``).

    Raw robosuite files and robomimic's un-extracted downloads both carry ``states`` and
    ``model_file`` (the latter with ``env_args`` too); both are read by FK from the states, for
    any number of arms. Files whose demos hold ``obs/`` are robomimic/MimicGen datasets.
    """
    import h5py

    from sim.io.hdf5 import hdf5_errors, open_hdf5

    with open_hdf5(path) as f, hdf5_errors(path):
        data = f.get("data")
        if isinstance(data, h5py.Group):
            demos = [g for g in data.values() if isinstance(g, h5py.Group)]
            if any(isinstance(g.get("obs"), h5py.Group) for g in demos):
                return "robomimic"
            if any("states" in g and "model_file" in g.attrs for g in demos):
                return "robosuite"
            if "env_args" in data.attrs:
                return "robomimic"
            attrs = set(f.attrs) | set(data.attrs)
            if attrs & {"env", "env_info", "repository_version"} and any(
                "states" in g for g in demos
            ):
                return "robosuite"
    raise FormatError(
        f"{path}: HDF5 layout not recognized; expected data/demo_*/obs (robomimic/MimicGen) or "
        "data/demo_*/states with @model_file (robosuite demo.hdf5)"
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
        if (path / "demo.hdf5").is_file():  # demoforge's robomimic output directory
            return _hdf5_kind(path / "demo.hdf5")
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
        "a directory with demo.hdf5, "
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


ON_BAD_EPISODE = ("raise", "skip")
_READER_FUNCS = {
    "lerobot": ("sim.io.lerobot", "read_lerobot"),
    "robomimic": ("sim.io.robomimic", "read_robomimic"),
    "robosuite": ("sim.io.robosuite", "read_robosuite"),
    "rlds": ("sim.io.rlds", "read_rlds"),
    "teleop": ("sim.io.teleop_log", "read_teleop_log"),
}


def _check_options(name: str, kw: dict[str, Any]) -> None:
    """Reader options not in the reader's signature fail naming them (before any reading)."""
    import importlib
    import inspect

    module, func = _READER_FUNCS[name]
    params = inspect.signature(getattr(importlib.import_module(module), func)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kw) - set(list(params)[1:]))
    if unknown:
        raise ConfigError(
            f"read option(s) {unknown} not understood by the {name} reader; expected some of "
            f"{list(params)[1:]}"
        )


#: readers that can skip one bad episode of a file themselves (keyword ``on_error``).
_PER_EPISODE = ("robosuite", "rlds")


def read_episodes(
    path: str | Path,
    format: str = "auto",
    on_bad_episode: str = "raise",
    limits: SanityLimits | None = None,
    report: ReadReport | None = None,
    **kw: Any,
) -> list[Episode]:
    """Read every episode of a demo file/directory into canonical, sanity-checked Episodes.

    Every episode any reader returns goes through :func:`sim.io.sanity.check_episode`
    (monotonic time, finite values, unit quaternions, joint limits, scene bounds, speeds).

    Args:
        path: file or dataset directory.
        format: one of :data:`FORMATS` (``"mimicgen"`` is accepted for ``"robomimic"``), or
            ``"auto"`` to use :func:`detect_format`.
        on_bad_episode: ``"raise"`` (default): the first bad episode raises one error naming
            the file, episode, row and field; ``"skip"``: bad episodes are logged, left out and
            counted in ``report.skipped`` (damage that makes the whole file unreadable still
            raises).
        limits: plausibility limits of the sanity checks (default :class:`SanityLimits`).
        report: a :class:`ReadReport` to fill (episodes read, skipped with reasons).
        **kw: passed to the format's reader (e.g. ``episodes=`` for lerobot, ``fps=`` for teleop).

    Raises:
        UnknownNameError: ``format`` is not a known format name.
        ConfigError: ``on_bad_episode`` is not "raise" or "skip".
        FormatError: the file is corrupt or not in the format.
        SanityError: an episode fails a sanity check (``on_bad_episode="raise"``).
    """
    path = Path(path)
    if on_bad_episode not in ON_BAD_EPISODE:
        raise ConfigError(
            f"on_bad_episode={on_bad_episode!r}; expected one of {list(ON_BAD_EPISODE)}"
        )
    name = detect_format(path) if format == "auto" else format
    name = {"mimicgen": "robomimic"}.get(name, name)
    readers = _readers()
    if name not in readers:
        raise UnknownNameError("format", name, [*readers, "auto", "mimicgen"])
    rep = report if report is not None else ReadReport()
    rep.path, rep.format = str(path), name
    skip = on_bad_episode == "skip"

    def skipped(source: str, err: SimError) -> None:
        log.warning("%s: skipping bad episode %s: %s", path, source, err)
        rep.skipped.append({"episode": source, "error": str(err)})

    if skip and name in _PER_EPISODE:
        kw.setdefault("on_error", skipped)
    _check_options(name, kw)
    try:
        episodes = readers[name](path, **kw)
    except SimError:
        raise
    except Exception as e:  # a reader crashed on damaged input: one error naming the file
        raise FormatError(
            f"{path}: the {name} reader failed ({type(e).__name__}: {e}); expected an intact "
            f"{name} file (corrupt or truncated?)"
        ) from e
    out = []
    for k, ep in enumerate(episodes):
        file, epi = split_source(ep.meta.source)
        if str(path) not in file:  # e.g. our own datasets keep the original source string
            file, epi = str(path), f"{k} (source {ep.meta.source!r})"
        try:
            out.append(check_episode(ep, limits, where=(file, epi)))
        except SimError as e:
            if not skip:
                raise
            skipped(ep.meta.source, e)
    rep.read = len(out)
    return out


__all__ = [
    "FORMATS",
    "ON_BAD_EPISODE",
    "ReadReport",
    "check_finite",
    "check_unit_quat",
    "detect_format",
    "read_episodes",
]
