"""Sanity checks on everything a reader returns: damage inside the data must never load silently.

:func:`check_episode` runs on every episode that :func:`sim.io.read_episodes` returns, whatever
the reader. Checks, in order (the first violation raises one :class:`SanityError` naming the
file, the episode, the row and the field):

1. ``time``: finite and strictly increasing;
2. every float array (``qpos``, ``qvel``, ``action``, ``ee``, ``gripper``, ``objects``,
   ``target``, ``gripper_cmd``, ``state``): finite and below :attr:`SanityLimits.max_abs`;
3. quaternions of ``ee``/``objects``/``target``: unit norm within :attr:`SanityLimits.quat_tol`;
4. positions of ``ee``/``objects``/``target``: inside the scene box :attr:`SanityLimits.bounds`
   (world frame [m]);
5. joint positions within :attr:`SanityLimits.joint_margin` of the model's limits, where a model
   is known (``meta.provenance["joint_limits"]``, filled by readers that load the demo's MJCF, or
   ``joint_limits=``);
6. frame-to-frame speeds: position tracks below ``max_lin_speed`` [m/s], orientation below
   ``max_ang_speed`` [rad/s], joints (differences and ``qvel``) below ``max_joint_speed``
   [rad/s or m/s]; gripper openings in [0, 1].

Nothing is repaired: a violation is an error, or (``on_bad_episode="skip"`` in
:func:`sim.io.read_episodes`) a skipped episode counted in a :class:`ReadReport`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.episode import Episode
from sim.errors import SchemaError

log = logging.getLogger(__name__)


class SanityError(SchemaError):
    """A reader's output violates a physical-plausibility check.

    Attributes:
        file, episode: where the data came from; row: first bad row (step); field: e.g.
        ``"objects['cube']"``; check: the check's name.
    """

    def __init__(self, file: str, episode: str, row: int, field_: str, check: str, what: str):
        self.file, self.episode, self.row, self.field, self.check = (
            file,
            episode,
            row,
            field_,
            check,
        )
        super().__init__(f"{file}: episode {episode}: field {field_} at row {row}: {what}")


@dataclass(frozen=True)
class SanityLimits:
    """Plausibility limits (defaults suit table-top and humanoid manipulation).

    Attributes:
        quat_tol: allowed |norm - 1| of a quaternion.
        max_abs: largest magnitude of any float value (catches garbage such as 1.7e32).
        bounds: (lo, hi) corners of the scene box, world frame [m].
        joint_margin: allowed excursion beyond the model's joint limits [rad or m].
        max_lin_speed: EE/object frame-to-frame speed [m/s].
        max_ang_speed: EE/object frame-to-frame angular speed [rad/s].
        max_joint_speed: joint frame-to-frame speed and |qvel| [rad/s or m/s].
        gripper_tol: allowed excursion of a gripper opening beyond [0, 1].
    """

    quat_tol: float = 1e-3
    max_abs: float = 1e6
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (-10.0, -10.0, -10.0),
        (10.0, 10.0, 10.0),
    )
    joint_margin: float = 0.05
    max_lin_speed: float = 10.0
    max_ang_speed: float = 40.0
    max_joint_speed: float = 50.0
    gripper_tol: float = 1e-3


@dataclass
class ReadReport:
    """What :func:`sim.io.read_episodes` did with one path (pass one in with ``report=``).

    Attributes:
        path, format: what was read.
        read: episodes returned.
        skipped: one entry per skipped episode: ``{"episode": source, "error": message}``.
    """

    path: str = ""
    format: str = ""
    read: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "read": self.read,
            "skipped": self.n_skipped,
            "skipped_episodes": list(self.skipped),
        }


def split_source(source: str) -> tuple[str, str]:
    """``"<file>#<episode>"`` -> (file, episode); a bare file gives episode ``"0"``."""
    file, sep, ep = source.rpartition("#")
    return (file, ep) if sep else (source, "0")


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
    bad = ~(np.abs(norms - 1.0) <= tol)
    if np.any(bad):
        row = int(np.argmax(bad))
        raise SchemaError(
            f"{where} quaternion at row {row} has norm {norms[row]:.4f}; "
            f"expected a unit quaternion ({order}); wrong columns or convention?"
        )


def _first(bad: np.ndarray) -> int | None:
    bad = np.asarray(bad)
    if bad.ndim > 1:
        bad = bad.reshape(len(bad), -1).any(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def _angle_steps(q: np.ndarray) -> np.ndarray:
    d = np.abs(np.sum(q[1:] * q[:-1], axis=1)) / (
        np.linalg.norm(q[1:], axis=1) * np.linalg.norm(q[:-1], axis=1)
    )
    return 2.0 * np.arccos(np.clip(d, 0.0, 1.0))


def _tracks(ep: Episode) -> dict[str, np.ndarray]:
    out = {}
    for group in ("ee", "objects", "target"):
        for k, v in getattr(ep, group).items():
            out[f"{group}[{k!r}]"] = np.asarray(v, dtype=np.float64)
    return out


def check_episode(
    ep: Episode,
    limits: SanityLimits | None = None,
    joint_limits: Mapping[str, tuple[float, float]] | None = None,
    where: tuple[str, str] | None = None,
) -> Episode:
    """Run every check of the module docstring on ``ep``; return it unchanged or raise.

    Args:
        ep: a reader's output (``meta.source`` = "<file>#<episode>").
        limits: plausibility limits (default :class:`SanityLimits`).
        joint_limits: joint name -> (lo, hi) model limits [rad or m]; default
            ``ep.meta.provenance["joint_limits"]`` when present.
        where: (file, episode) for messages; default from ``ep.meta.source``.

    Raises:
        SanityError: the first violation (file, episode, row, field, what was expected).
    """
    lim = limits or SanityLimits()
    file, epi = where if where is not None else split_source(ep.meta.source)

    def fail(row: int, fld: str, check: str, what: str) -> None:
        raise SanityError(file, epi, row, fld, check, what)

    t = np.asarray(ep.time, dtype=np.float64)
    if (row := _first(~np.isfinite(t))) is not None:
        fail(row, "'time'", "finite", f"{float(t[row])!r}; expected a finite time [s]")
    if len(t) > 1 and (row := _first(np.diff(t) <= 0)) is not None:
        fail(
            row + 1,
            "'time'",
            "monotonic",
            f"{float(t[row + 1])!r} [s] after {float(t[row])!r}; expected strictly increasing time",
        )
    dt = np.diff(t)
    arrays: dict[str, np.ndarray] = {}
    for name in ("qpos", "qvel", "action", "state"):
        v = getattr(ep, name)
        if v is not None:
            arrays[f"'{name}'"] = np.asarray(v)
    for group in ("ee", "gripper", "objects", "target", "gripper_cmd"):
        for k, v in getattr(ep, group).items():
            arrays[f"{group}[{k!r}]"] = np.asarray(v)
    for fld, a in arrays.items():
        if a.dtype.kind not in "fiu" or not a.size:
            continue
        a = a.astype(np.float64)
        if (row := _first(~np.isfinite(a))) is not None:
            fail(row, fld, "finite", "NaN/inf; expected finite values")
        if (row := _first(np.abs(a) > lim.max_abs)) is not None:
            fail(
                row,
                fld,
                "magnitude",
                f"|value| {np.max(np.abs(np.atleast_2d(a.T).T[row])):.3g} > {lim.max_abs:g}; "
                "expected physically plausible values (corrupt data?)",
            )
    tracks = _tracks(ep)
    lo, hi = np.asarray(lim.bounds[0], float), np.asarray(lim.bounds[1], float)
    for fld, p in tracks.items():
        norms = np.linalg.norm(p[:, 3:], axis=1)
        if (row := _first(~(np.abs(norms - 1.0) <= lim.quat_tol))) is not None:
            fail(
                row,
                fld,
                "unit_quat",
                f"quaternion norm {norms[row]:.6g}; expected 1 +- {lim.quat_tol:g} (w,x,y,z)",
            )
        if (row := _first((p[:, :3] < lo) | (p[:, :3] > hi))) is not None:
            fail(
                row,
                fld,
                "bounds",
                f"position {np.round(p[row, :3], 4).tolist()} [m] is outside the scene box "
                f"{lo.tolist()}..{hi.tolist()}",
            )
    for group in ("gripper", "gripper_cmd"):
        for k, g in getattr(ep, group).items():
            g = np.asarray(g, dtype=np.float64)
            bad = (g < -lim.gripper_tol) | (g > 1.0 + lim.gripper_tol)
            if (row := _first(bad)) is not None:
                fail(
                    row, f"{group}[{k!r}]", "range", f"{g[row]:.4g}; expected an opening in [0, 1]"
                )
    jl = joint_limits if joint_limits is not None else ep.meta.provenance.get("joint_limits")
    qpos = None if ep.qpos is None else np.asarray(ep.qpos, dtype=np.float64)
    if jl and qpos is not None:
        for j, name in enumerate(ep.joint_names):
            if name not in jl:
                continue
            jlo, jhi = (float(x) for x in jl[name])
            col = qpos[:, j]
            bad = (col < jlo - lim.joint_margin) | (col > jhi + lim.joint_margin)
            if (row := _first(bad)) is not None:
                fail(
                    row,
                    f"qpos[{name!r}]",
                    "joint_limits",
                    f"{col[row]:.4g} is beyond the model's range [{jlo:.4g}, {jhi:.4g}] by more "
                    f"than {lim.joint_margin:g}",
                )
    if len(t) < 2:
        return ep
    for fld, p in tracks.items():
        v = np.linalg.norm(np.diff(p[:, :3], axis=0), axis=1) / dt
        if (row := _first(v > lim.max_lin_speed)) is not None:
            fail(
                row + 1,
                fld,
                "speed",
                f"jumps {v[row] * dt[row]:.4g} m in {dt[row]:.4g} s ({v[row]:.4g} m/s); "
                f"expected at most {lim.max_lin_speed:g} m/s",
            )
        w = _angle_steps(p[:, 3:]) / dt
        if (row := _first(w > lim.max_ang_speed)) is not None:
            fail(
                row + 1,
                fld,
                "angular_speed",
                f"turns {w[row] * dt[row]:.4g} rad in {dt[row]:.4g} s; expected at most "
                f"{lim.max_ang_speed:g} rad/s",
            )
    if qpos is not None and qpos.ndim == 2 and qpos.shape[1]:
        v = np.abs(np.diff(qpos, axis=0)) / dt[:, None]
        if (row := _first(v > lim.max_joint_speed)) is not None:
            j = int(np.argmax(v[row]))
            fail(
                row + 1,
                f"qpos[{ep.joint_names[j]!r}]" if ep.joint_names else "'qpos'",
                "joint_speed",
                f"jumps {v[row, j] * dt[row]:.4g} in {dt[row]:.4g} s; expected at most "
                f"{lim.max_joint_speed:g} per second",
            )
    if ep.qvel is not None and np.asarray(ep.qvel).size:
        qv = np.abs(np.asarray(ep.qvel, dtype=np.float64))
        if (row := _first(qv > lim.max_joint_speed)) is not None:
            j = int(np.argmax(qv[row]))
            fail(
                row,
                f"qvel[{ep.joint_names[j]!r}]" if ep.joint_names else "'qvel'",
                "joint_speed",
                f"|qvel| {qv[row, j]:.4g} > {lim.max_joint_speed:g}",
            )
    return ep
