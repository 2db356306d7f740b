"""Teleoperation logs from a VR headset + arm exoskeleton rig: schema, reader and writer.

A log is one recording, one row per sample, as **CSV** or **JSONL**. Samples come at irregular
times (network jitter, dropped packets); the reader resamples them onto a fixed ``fps`` grid.

Columns (see :data:`SCHEMA`; ``<arm>`` is any name without a dot, e.g. ``left``, ``right``)::

    t                       sample time [s], strictly increasing, any origin (re-based to 0)
    <arm>.pos.x|y|z         EE position [m] (or header ``units``), in the header ``frame``
    <arm>.quat.w|x|y|z      EE orientation, unit quaternion, scalar (w) first
    <arm>.gripper           optional: gripper opening in [0, 1], 0 = closed
    <arm>.joint.<name>      optional: joint position [rad] (or header ``joint_units``)

Header metadata (all optional, see :data:`HEADER_KEYS`): in CSV, ``# key: value`` lines before the
column row; in JSONL, a first line ``{"meta": {...}}``. Every other JSONL line is one flat object
``{"t": 0.0, "right.pos.x": 0.41, ...}``.

Example CSV::

    # frame: world
    # units: m
    # robot: panda
    # task: pick_cube
    t,right.pos.x,right.pos.y,right.pos.z,right.quat.w,right.quat.x,right.quat.y,right.quat.z,right.gripper
    0.000,0.40,0.00,0.30,1,0,0,0,1.0
    0.034,0.41,0.00,0.30,1,0,0,0,0.98

Reading: positions, gripper and joints are interpolated linearly, quaternions by slerp (shortest
arc). Checks, each naming the file, the column and the row (and line): missing columns, non-numeric
cells, NaN/empty cells, non-increasing ``t``, non-unit quaternions (e.g. a rig streaming Euler
angles or a 0..100 scale), gripper outside [0, 1]. A wrong component *order* with unit norm (x,y,z,w
written under w,x,y,z names) cannot be told from the numbers alone; columns are read by name, so
their order in the file does not matter.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.episode import Episode, EpisodeMeta
from sim.errors import ConfigError, FormatError, SchemaError
from sim.io.atomic import atomic_path, check_output_free
from sim.transforms import interp_linear, interp_slerp, pose_mul, quat_normalize

log = logging.getLogger(__name__)

#: Column name pattern -> meaning (units, frame).
SCHEMA: dict[str, str] = {
    "t": "sample time [s], strictly increasing; irregular spacing allowed",
    "<arm>.pos.x": "EE position x [m or header units], header frame",
    "<arm>.pos.y": "EE position y [m or header units], header frame",
    "<arm>.pos.z": "EE position z [m or header units], header frame",
    "<arm>.quat.w": "EE orientation quaternion, scalar part (unit norm over w,x,y,z)",
    "<arm>.quat.x": "EE orientation quaternion, x",
    "<arm>.quat.y": "EE orientation quaternion, y",
    "<arm>.quat.z": "EE orientation quaternion, z",
    "<arm>.gripper": "optional; gripper opening in [0, 1], 0 = closed",
    "<arm>.joint.<name>": "optional; joint position [rad or header joint_units]",
}

#: Header key -> allowed values / meaning.
HEADER_KEYS: dict[str, str] = {
    "frame": "'world' (default) or 'rig' (pass rig_to_world to the reader to express in world)",
    "units": "position units: 'm' (default), 'cm' or 'mm'",
    "joint_units": "'rad' (default) or 'deg'",
    "robot": "robot name",
    "task": "task name",
    "instruction": "natural-language task string",
    "fps": "nominal rate [Hz] used when the reader is not given one",
}

_POS_SCALE = {"m": 1.0, "cm": 0.01, "mm": 0.001}
_JOINT_SCALE = {"rad": 1.0, "deg": math.pi / 180.0}
_QUAT = ("w", "x", "y", "z")

__all__ = [
    "HEADER_KEYS",
    "SCHEMA",
    "interp_linear",
    "interp_slerp",
    "read_teleop_log",
    "write_teleop_log",
]


# --------------------------------------------------------------------------------------------
# parsing


def _parse_csv(path: Path) -> tuple[dict[str, str], list[str], list[list[str]], list[int]]:
    header: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        lines = f.read().splitlines()
    first = 0
    while first < len(lines) and (lines[first].startswith("#") or not lines[first].strip()):
        text = lines[first].lstrip("#").strip()
        if ":" in text:
            k, v = text.split(":", 1)
            header[k.strip()] = v.strip()
        first += 1
    if first >= len(lines):
        raise FormatError(f"{path}: no column header row; expected a CSV row starting with 't'")
    reader = csv.reader(lines[first:])
    columns = [c.strip() for c in next(reader)]
    rows, line_nos = [], []
    for k, row in enumerate(reader):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(columns):
            raise FormatError(
                f"{path}: line {first + k + 2} has {len(row)} cells; expected {len(columns)} "
                "(one per header column)"
            )
        rows.append(row)
        line_nos.append(first + k + 2)
    return header, columns, rows, line_nos


def _parse_jsonl(path: Path) -> tuple[dict[str, str], list[str], list[dict], list[int]]:
    header: dict[str, str] = {}
    rows, line_nos, columns = [], [], {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise FormatError(
                    f"{path}: line {n} is not JSON ({e}); expected one object per line"
                ) from e
            if not isinstance(obj, dict):
                raise FormatError(f"{path}: line {n} is {type(obj).__name__}; expected an object")
            if not rows and set(obj) == {"meta"}:
                header = {str(k): str(v) for k, v in obj["meta"].items()}
                continue
            rows.append(obj)
            line_nos.append(n)
            columns.update(dict.fromkeys(obj))
    return header, list(columns), rows, line_nos


def _to_float(path: Path, value: Any, col: str, row: int, line: int) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FormatError(
            f"{path}: column '{col}' at row {row} (line {line}) is {value!r}; expected a number"
        ) from None


# --------------------------------------------------------------------------------------------
# reader


def read_teleop_log(
    path: str | Path,
    fps: float | None = None,
    rig_to_world: np.ndarray | None = None,
    quat_tol: float = 1e-3,
) -> Episode:
    """Read a teleop log (CSV or JSONL, see module docstring) and resample it to ``fps``.

    Args:
        path: ``.csv`` or ``.jsonl`` file.
        fps: output rate [Hz]; default header ``fps``, else the median sample rate (rounded).
        rig_to_world: (7,) pose of the rig frame in the world (pos [m] + quat w,x,y,z); applied
            to EE poses when the header says ``frame: rig``.
        quat_tol: allowed |norm - 1| of each raw quaternion (they are normalized afterwards).

    Returns:
        Episode with ``ee`` / ``gripper`` per arm and ``qpos`` if joints are logged.

    Raises:
        FormatError: unreadable file, missing or non-numeric columns, non-increasing ``t``.
        SchemaError: NaN/empty cells, non-unit quaternions, gripper outside [0, 1].
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, columns, raw, lines = _parse_csv(path)
        table = {c: [r[j] for r in raw] for j, c in enumerate(columns)}
    elif suffix == ".jsonl":
        header, columns, raw, lines = _parse_jsonl(path)
        table = {c: [r.get(c) for r in raw] for c in columns}
    else:
        raise FormatError(
            f"{path}: unknown teleop log extension {suffix!r}; expected .csv or .jsonl"
        )
    if "t" not in columns:
        raise FormatError(f"{path}: missing column 't'; expected columns {list(SCHEMA)}")
    if not raw:
        raise FormatError(f"{path}: no samples; expected at least one row after the header")
    arms = [c.split(".")[0] for c in columns if c.endswith(".pos.x") and c.count(".") == 2]
    if not arms:
        raise FormatError(f"{path}: no '<arm>.pos.x' column; expected columns {list(SCHEMA)}")
    needed = ["t"]
    for arm in arms:
        want = [f"{arm}.pos.{a}" for a in "xyz"] + [f"{arm}.quat.{a}" for a in _QUAT]
        missing = [c for c in want if c not in columns]
        if missing:
            raise FormatError(
                f"{path}: arm {arm!r} lacks column(s) {missing}; expected "
                f"{want} (+ optional {arm}.gripper, {arm}.joint.<name>)"
            )
        needed += want + ([f"{arm}.gripper"] if f"{arm}.gripper" in columns else [])
    joint_cols = [
        c
        for c in columns
        if c.count(".") >= 2 and c.split(".")[1] == "joint" and c.split(".")[0] in arms
    ]
    needed += joint_cols
    vals: dict[str, np.ndarray] = {}
    for c in needed:
        arr = np.array([_to_float(path, v, c, i, lines[i]) for i, v in enumerate(table[c])])
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise SchemaError(
                f"{path}: column '{c}' is NaN/empty at row {i} (line {lines[i]}); "
                "expected a finite number in every row"
            )
        vals[c] = arr
    t = vals["t"]
    dt = np.diff(t)
    if np.any(dt <= 0):
        i = int(np.argmax(dt <= 0)) + 1
        raise FormatError(
            f"{path}: column 't' at row {i} (line {lines[i]}) is {float(t[i])!r} after "
            f"{float(t[i - 1])!r}; expected strictly increasing timestamps [s]"
        )
    units = header.get("units", "m")
    junits = header.get("joint_units", "rad")
    frame = header.get("frame", "world")
    for key, value, allowed in (
        ("units", units, _POS_SCALE),
        ("joint_units", junits, _JOINT_SCALE),
        ("frame", frame, ("world", "rig")),
    ):
        if value not in allowed:
            raise FormatError(
                f"{path}: header '{key}' is {value!r}; expected one of {list(allowed)}"
            )
    rate = fps or (float(header["fps"]) if "fps" in header else None)
    if rate is None:
        rate = float(round(1.0 / float(np.median(dt)))) if len(dt) else 30.0
    t_rel = t - t[0]
    n = int(math.floor(t_rel[-1] * rate + 1e-6)) + 1
    grid = np.arange(n) / rate

    ee, gripper = {}, {}
    for arm in arms:
        pos = np.stack([vals[f"{arm}.pos.{a}"] for a in "xyz"], 1) * _POS_SCALE[units]
        quat = np.stack([vals[f"{arm}.quat.{a}"] for a in _QUAT], 1)
        norms = np.linalg.norm(quat, axis=1)
        bad = np.abs(norms - 1.0) > quat_tol
        if bad.any():
            i = int(np.argmax(bad))
            raise SchemaError(
                f"{path}: '{arm}.quat.{{w,x,y,z}}' at row {i} (line {lines[i]}) has norm "
                f"{norms[i]:.4f}; expected a unit quaternion w,x,y,z (wrong convention, Euler "
                "angles or degrees?)"
            )
        pose = np.concatenate(
            [interp_linear(t_rel, pos, grid), interp_slerp(t_rel, quat / norms[:, None], grid)], 1
        )
        if frame == "rig" and rig_to_world is not None:
            pose = pose_mul(np.broadcast_to(np.asarray(rig_to_world, float), pose.shape), pose)
        ee[arm] = pose
        if f"{arm}.gripper" in vals:
            g = vals[f"{arm}.gripper"]
            bad = (g < -1e-6) | (g > 1 + 1e-6)
            if bad.any():
                i = int(np.argmax(bad))
                raise SchemaError(
                    f"{path}: column '{arm}.gripper' at row {i} (line {lines[i]}) is "
                    f"{float(g[i])!r}; expected an opening in [0, 1] (0 = closed)"
                )
            gripper[arm] = np.clip(interp_linear(t_rel, g, grid), 0.0, 1.0)
    if frame == "rig" and rig_to_world is None:
        log.warning(
            "%s: poses are in the rig frame and no rig_to_world was given; kept in the rig frame",
            path,
        )
    names = [c.split(".", 2)[2] for c in joint_cols]
    if len(set(names)) != len(names):
        names = [f"{c.split('.', 1)[0]}.{c.split('.', 2)[2]}" for c in joint_cols]
    qpos = None
    if joint_cols:
        raw_q = np.stack([vals[c] for c in joint_cols], 1) * _JOINT_SCALE[junits]
        qpos = interp_linear(t_rel, raw_q, grid)
    prov = {
        "format": "teleop_log",
        "file": str(path),
        "frame": frame if frame == "world" or rig_to_world is None else "world (from rig)",
        "raw_samples": len(t),
        "raw_rate_hz": float(1.0 / np.median(dt)) if len(dt) else None,
        "resampled": {
            "fps": rate,
            "position": "linear",
            "quaternion": "slerp",
            "gripper": "linear",
            "joints": "linear",
        },
        "header": header,
    }
    meta = EpisodeMeta(
        task=header.get("task", "teleop"),
        robot=header.get("robot", "unknown"),
        fps=float(rate),
        source=str(path),
        instruction=header.get("instruction", ""),
        provenance=prov,
    )
    return Episode(
        meta=meta,
        time=grid,
        joint_names=names if joint_cols else [],
        qpos=qpos,
        ee=ee,
        gripper=gripper,
    ).validate()


# --------------------------------------------------------------------------------------------
# writer


def _fmt(x: float) -> str:
    return repr(float(x))


def _joint_arms(names: list[str], arms: list[str]) -> list[str]:
    if len(arms) == 1:
        return [arms[0]] * len(names)
    return [next((a for a in arms if a in n), arms[0]) for n in names]


def write_teleop_log(
    episode: Episode,
    path: str | Path,
    format: str = "csv",
    jitter: float = 0.0,
    rng: np.random.Generator | None = None,
    t0: float = 0.0,
    frame: str = "world",
    header: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an episode as a teleop log (e.g. a human-like log from the scripted demonstrator).

    Args:
        episode: needs ``ee``; ``gripper`` and ``qpos`` (with joint names) are written if present.
        path: output file (written atomically).
        format: ``"csv"`` or ``"jsonl"``.
        jitter: max timestamp perturbation [s] of interior samples, uniform in ±jitter and below
            half a period; values are re-interpolated at the perturbed times so the log stays a
            faithful sampling of the same motion.
        rng: random generator, required when ``jitter > 0``.
        t0: time of the first sample [s] (rigs log wall-clock or boot time; readers re-base).
        frame: value of the ``frame`` header (poses are written as they are in the episode).
        header: extra header entries (override robot/task/instruction/fps).
        overwrite: replace an existing file.

    Raises:
        SchemaError: the episode has no ``ee``.
        ConfigError: unknown format, jitter out of range or no rng for jitter.
    """
    episode.require("ee")
    if format not in ("csv", "jsonl"):
        raise ConfigError(f"teleop log format {format!r} unknown; expected 'csv' or 'jsonl'")
    period = 1.0 / episode.meta.fps
    if not 0.0 <= jitter < 0.5 * period:
        raise ConfigError(
            f"jitter={jitter} s out of range; expected 0 <= jitter < half a period "
            f"({0.5 * period:.4g} s at {episode.meta.fps} Hz)"
        )
    if jitter > 0 and rng is None:
        raise ConfigError("jitter > 0 needs rng (np.random.Generator) for reproducibility")
    time = np.asarray(episode.time, dtype=np.float64)
    t = time.copy()
    if jitter > 0 and len(t) > 2:
        t[1:-1] += rng.uniform(-jitter, jitter, size=len(t) - 2)
    arms = list(episode.ee)
    cols: dict[str, np.ndarray] = {"t": t + t0}
    for arm in arms:
        pose = np.asarray(episode.ee[arm], dtype=np.float64)
        pos = interp_linear(time, pose[:, :3], t)
        quat = interp_slerp(time, quat_normalize(pose[:, 3:]), t) if jitter else pose[:, 3:]
        for j, a in enumerate("xyz"):
            cols[f"{arm}.pos.{a}"] = pos[:, j]
        for j, a in enumerate(_QUAT):
            cols[f"{arm}.quat.{a}"] = quat[:, j]
        if arm in episode.gripper:
            cols[f"{arm}.gripper"] = interp_linear(time, episode.gripper[arm], t)
    if episode.qpos is not None and episode.joint_names:
        q = interp_linear(time, episode.qpos, t)
        for j, (name, arm) in enumerate(
            zip(episode.joint_names, _joint_arms(episode.joint_names, arms), strict=True)
        ):
            cols[f"{arm}.joint.{name}"] = q[:, j]
    meta = {
        "frame": frame,
        "units": "m",
        "joint_units": "rad",
        "robot": episode.meta.robot,
        "task": episode.meta.task,
        "fps": repr(float(episode.meta.fps)),
    }
    if episode.meta.instruction:
        meta["instruction"] = episode.meta.instruction
    meta.update(dict(header or {}))
    names = list(cols)
    check_output_free(path, overwrite)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        if format == "csv":
            for k, v in meta.items():
                f.write(f"# {k}: {v}\n")
            w = csv.writer(f, lineterminator="\n")
            w.writerow(names)
            for i in range(len(t)):
                w.writerow([_fmt(cols[c][i]) for c in names])
        else:
            f.write(json.dumps({"meta": meta}) + "\n")
            for i in range(len(t)):
                f.write(json.dumps({c: float(cols[c][i]) for c in names}) + "\n")
    return Path(path)
