"""Replay inputs: the source episode from a file, its joint columns and its time grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.episode import Episode
from sim.errors import ConfigError, SchemaError


def source_joints(ep: Episode, prefer: str = "qpos") -> tuple[list[str], np.ndarray, str]:
    """(names, (T, n) values, field) from ``qpos`` or ``action``, whichever is present first."""
    order = ("qpos", "action") if prefer == "qpos" else ("action", "qpos")
    for name in order:
        arr = getattr(ep, name)
        names = ep.joint_names if name == "qpos" else ep.action_names
        if arr is not None and len(names):
            return list(names), np.asarray(arr, np.float64), name
    raise SchemaError(
        f"episode ({ep.meta.source}) has neither 'qpos' nor 'action' with names; joint replay "
        "needs one of them"
    )


def resample_times(ep: Episode, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Source times (T,) re-based to 0, and the control-rate grid [s] covering them."""
    t_src = np.asarray(ep.time, np.float64) - float(ep.time[0])
    if abs(1.0 / ep.meta.fps - dt) < 1e-9 and len(t_src) > 0:
        return t_src, t_src.copy()
    n = int(np.floor(t_src[-1] / dt + 1e-9)) + 1
    return t_src, np.arange(n) * dt


def read_one(source: str, format: str, episode: int) -> Episode:
    """Episode number ``episode`` of a demo file/directory (sanity-checked by the reader).

    Raises:
        ConfigError: the source does not exist or has no such episode.
    """
    from sim.io import detect_format, read_episodes

    path = Path(source)
    if not path.exists():
        raise ConfigError(f"replay source {source!r} does not exist")
    name = detect_format(path) if format == "auto" else format
    if name == "lerobot":
        return read_episodes(path, format=name, episodes=[episode])[0]
    eps = read_episodes(path, format=name)
    if not 0 <= episode < len(eps):
        raise ConfigError(f"{source}: no episode {episode}; it has {len(eps)} episodes")
    return eps[episode]
