"""Run one action sequence on two drivers and measure how far they diverge, per joint.

Typical use: driver ``a`` is the twin, driver ``b`` the robot (or a twin with injected latency
and noise standing in for it). Both get the same action at each tick; their observed joint
positions are compared: RMS and max of ``b - a`` [rad or m], and the lag of ``b`` behind ``a``
estimated by cross-correlation of the joint velocities (finite differences), positive = ``b``
lags. A JSON report and a matplotlib plot (Agg backend) are written on request.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.bridge.loop import RateLoop
from sim.bridge.protocol import Driver, split_observation
from sim.errors import ConfigError, SchemaError


@dataclass
class JointDivergence:
    """Divergence of one joint: RMS/max of ``b - a`` [rad or m], lag of b behind a."""

    rms: float
    max: float
    lag_steps: int
    lag_s: float
    corr: float  # normalized cross-correlation at the lag (0 = no usable motion)


@dataclass
class CompareReport:
    """Per-joint divergence plus the traces it was computed from."""

    fps: float
    joint_names: list[str]
    joints: dict[str, JointDivergence]
    lag_s: float  # median lag over joints that moved [s]
    rms_max: float
    qpos_a: np.ndarray = field(repr=False)
    qpos_b: np.ndarray = field(repr=False)
    actions: np.ndarray = field(repr=False)
    jitter: dict[str, float] = field(default_factory=dict)
    drivers: tuple[str, str] = ("a", "b")

    def to_dict(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "drivers": list(self.drivers),
            "lag_s": self.lag_s,
            "rms_max": self.rms_max,
            "steps": int(len(self.actions)),
            "joints": {k: asdict(v) for k, v in self.joints.items()},
            "jitter": self.jitter,
        }

    def write_json(self, path: str | Path) -> Path:
        from sim.io.atomic import atomic_open

        path = Path(path)
        with atomic_open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)
        return path

    def plot(self, path: str | Path) -> Path:
        """Overlay of both drivers' joint positions (one panel per joint) as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(self.joint_names)
        cols = min(n, 4)
        rows = int(np.ceil(n / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        t = np.arange(len(self.qpos_a)) / self.fps
        for j, name in enumerate(self.joint_names):
            ax = axes[j // cols][j % cols]
            ax.plot(t, self.qpos_a[:, j], label=self.drivers[0], lw=1.2)
            ax.plot(t, self.qpos_b[:, j], label=self.drivers[1], lw=1.0, ls="--")
            d = self.joints[name]
            ax.set_title(f"{name}\nrms {d.rms:.3g} lag {d.lag_s * 1e3:.0f} ms", fontsize=8)
            ax.tick_params(labelsize=7)
        for j in range(n, rows * cols):
            axes[j // cols][j % cols].axis("off")
        axes[0][0].legend(fontsize=7)
        fig.supxlabel("time [s]", fontsize=8)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path


def estimate_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[int, float]:
    """Lag (steps) of ``b`` behind ``a`` maximizing their normalized cross-correlation.

    Both are 1-D signals of equal length (use velocities, not positions, so offsets and
    drifts do not dominate). Returns (lag, correlation at that lag); (0, 0.0) when either
    signal is constant.
    """
    a = np.asarray(a, float) - np.mean(a)
    b = np.asarray(b, float) - np.mean(b)
    if np.std(a) < 1e-12 or np.std(b) < 1e-12:
        return 0, 0.0
    n = len(a)
    best, best_c = 0, -np.inf
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            x, y = a[: n - lag], b[lag:]
        else:
            x, y = a[-lag:], b[: n + lag]
        if len(x) < 3:
            continue
        den = np.linalg.norm(x) * np.linalg.norm(y)
        c = float(x @ y / den) if den > 0 else 0.0
        if c > best_c:
            best, best_c = lag, c
    return best, best_c


def divergence(
    qa: np.ndarray,
    qb: np.ndarray,
    names: list[str],
    fps: float,
    max_lag_s: float = 0.5,
    min_motion: float = 1e-3,
) -> dict[str, JointDivergence]:
    """Per-joint RMS/max of ``qb - qa`` and lag of b behind a (see :func:`estimate_lag`)."""
    qa, qb = np.asarray(qa, float), np.asarray(qb, float)
    if qa.shape != qb.shape or qa.ndim != 2 or qa.shape[1] != len(names):
        raise SchemaError(
            f"divergence: traces must both be (T, {len(names)}), got {qa.shape} and {qb.shape}"
        )
    max_lag = max(1, int(round(max_lag_s * fps)))
    out = {}
    for j, name in enumerate(names):
        d = qb[:, j] - qa[:, j]
        moved = np.ptp(qa[:, j]) > min_motion
        lag, c = estimate_lag(np.diff(qa[:, j]), np.diff(qb[:, j]), max_lag) if moved else (0, 0)
        out[name] = JointDivergence(
            rms=float(np.sqrt(np.mean(d**2))),
            max=float(np.abs(d).max()),
            lag_steps=int(lag),
            lag_s=lag / fps,
            corr=float(c),
        )
    return out


def compare_drivers(
    a: Driver,
    b: Driver,
    actions: np.ndarray,
    *,
    fps: float | None = None,
    realtime: bool = True,
    names: tuple[str, str] = ("twin", "robot"),
    max_lag_s: float = 0.5,
) -> CompareReport:
    """Send ``actions`` (T, m) to both connected drivers tick by tick; compare observed qpos.

    Each tick: observe both, then command both (same order every tick, so neither gets a
    systematic head start larger than one request).
    """
    ca, cb = a.capabilities, b.capabilities
    if ca.action_names != cb.action_names or ca.joint_names != cb.joint_names:
        raise ConfigError(
            f"compare: drivers differ in joints/actions: {ca.action_names} vs {cb.action_names}"
        )
    actions = np.asarray(actions, float)
    if actions.ndim != 2 or actions.shape[1] != len(ca.action_names):
        raise SchemaError(
            f"compare: actions must be (T, {len(ca.action_names)}), got {actions.shape}"
        )
    fps = float(fps or ca.fps)
    loop = RateLoop(fps)
    qa, qb = [], []
    for k, act in enumerate(actions):
        oa = split_observation(a.get_observation())
        ob = split_observation(b.get_observation())
        qa.append(np.asarray(oa["qpos"], float))
        qb.append(np.asarray(ob["qpos"], float))
        a.send_action(act)
        b.send_action(act)
        if realtime and k < len(actions) - 1:
            loop.wait()
    qa_, qb_ = np.stack(qa), np.stack(qb)
    joints = divergence(qa_, qb_, list(ca.joint_names), fps, max_lag_s)
    moving = [d.lag_s for d in joints.values() if d.corr > 0.5]
    return CompareReport(
        fps=fps,
        joint_names=list(ca.joint_names),
        joints=joints,
        lag_s=float(np.median(moving)) if moving else 0.0,
        rms_max=max(d.rms for d in joints.values()),
        qpos_a=qa_,
        qpos_b=qb_,
        actions=actions,
        jitter=loop.stats.summary() if realtime else {},
        drivers=names,
    )


def sine_actions(
    start: np.ndarray,
    n_joints: int,
    steps: int,
    fps: float,
    amplitude: float = 0.3,
    period_s: float = 2.0,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> np.ndarray:
    """(steps, m) test trajectory: each joint a phase-shifted sine around ``start``.

    Gripper dims (beyond ``n_joints``) stay at ``start``. Clipped to [lower, upper] if given.
    """
    t = np.arange(steps) / fps
    out = np.tile(np.asarray(start, float), (steps, 1))
    for j in range(n_joints):
        out[:, j] += amplitude * np.sin(2 * np.pi * t / period_s + 0.7 * j)
    if lower is not None and upper is not None:
        out = np.clip(out, lower, upper)
    return out
