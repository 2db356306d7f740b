"""Digital-twin driver: a MuJoCo model standing in for the robot.

:class:`TwinDriver` steps a simulation backend (:mod:`sim.bridge.backends`) in real time in a
background thread (or in lockstep: one control period per ``send_action``), with configurable
command and observation latency (delay queues), Gaussian observation noise and dropped packets.
``action`` goes to position-actuator ctrl through the backend.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim.bridge.backends import SimBackend
from sim.bridge.protocol import (
    Capabilities,
    as_action_vector,
    flatten_observation,
    observation_features,
)
from sim.errors import BridgeError, ConfigError, SimError


@dataclass(frozen=True)
class TwinConfig:
    """Link/robot imperfections of the twin.

    Attributes:
        realtime: step in a background thread at wall-clock rate (else lockstep: each
            ``send_action`` advances one control period).
        cmd_latency_s: delay before a command reaches the actuators [s].
        obs_latency_s: age of the state returned by ``get_observation`` [s].
        noise_qpos: std of Gaussian noise on observed joint positions [rad or m].
        noise_qvel: std on joint velocities [rad/s].
        noise_ee: std on EE positions [m].
        drop_prob: probability that a command is lost, and (independently) that an
            observation is lost (the previous one is returned again).
        seed: seed of the noise/drop generator.
        tick_s: real-time thread period [s] (physics catches up to wall time each tick).
        objects: include ``objects.<name>`` (and ``success`` when the backend has a task).
    """

    realtime: bool = True
    cmd_latency_s: float = 0.0
    obs_latency_s: float = 0.0
    noise_qpos: float = 0.0
    noise_qvel: float = 0.0
    noise_ee: float = 0.0
    drop_prob: float = 0.0
    seed: int = 0
    tick_s: float = 0.004
    objects: bool = True

    def __post_init__(self) -> None:
        for k in ("cmd_latency_s", "obs_latency_s", "noise_qpos", "noise_qvel", "noise_ee"):
            if getattr(self, k) < 0:
                raise ConfigError(f"twin.{k} must be >= 0, got {getattr(self, k)}")
        if not 0.0 <= self.drop_prob < 1.0:
            raise ConfigError(f"twin.drop_prob must be in [0, 1), got {self.drop_prob}")


@dataclass
class TwinStats:
    """Link and physics counters of a twin."""

    commands: int = 0
    cmd_dropped: int = 0
    cmd_applied: int = 0
    observations: int = 0
    obs_dropped: int = 0
    physics_steps: int = 0
    max_lag_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TwinDriver:
    """A simulated robot behind the :class:`~sim.bridge.protocol.Driver` protocol.

    Args:
        backend: the simulation (see :func:`load_backend`).
        cfg: latency/noise/drop settings.
    """

    def __init__(self, backend: SimBackend, cfg: TwinConfig | None = None) -> None:
        self.backend = backend
        self.cfg = cfg or TwinConfig()
        self.link_stats = TwinStats()
        self._rng = np.random.default_rng(self.cfg.seed)
        self._lock = threading.RLock()
        self._cmds: deque[tuple[float, np.ndarray]] = deque()
        self._snaps: deque[tuple[float, dict[str, np.ndarray]]] = deque()
        self._last_obs: dict[str, np.ndarray] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fault: str | None = None
        self._connected = False
        self._step_idx = 0
        dt, ts = backend.control_dt, backend.model.opt.timestep
        self._n_sub = int(round(dt / ts))
        lo, hi = backend.limits()
        has_success = self.cfg.objects and backend.success() is not None
        self._caps = Capabilities(
            robot=backend.name,
            driver="twin",
            joint_names=list(backend.joint_names),
            action_names=list(backend.action_names),
            arms=list(backend.arms),
            fps_max=1.0 / ts,
            control_dt=dt,
            lower=lo.tolist(),
            upper=hi.tolist(),
            objects=list(backend.objects) if self.cfg.objects else [],
            extra={"twin": asdict(self.cfg), "timestep": ts, "has_success": has_success},
        )
        self._features = observation_features(self._caps)
        if has_success:
            self._features["success"] = ()
        keep = max(self.cfg.obs_latency_s, 0.0) / min(self.cfg.tick_s, dt) + 64
        self._keep = int(keep)

    # ------------------------------------------------------------------ Driver protocol
    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def observation_features(self) -> dict[str, tuple[int, ...]]:
        return dict(self._features)

    @property
    def action_features(self) -> dict[str, tuple[int, ...]]:
        return {"action": (len(self._caps.action_names),)}

    @property
    def fk(self):  # noqa: ANN201 - the backend's FK (see sim.bridge.safety.FK)
        return self.backend.fk

    def connect(self) -> None:
        """Start the physics thread (real-time mode); idempotent."""
        with self._lock:
            if self._connected:
                return
            self._fault = None
            self._snapshot(time.monotonic())
            self._connected = True
        if self.cfg.realtime:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="twin-physics", daemon=True)
            self._thread.start()

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._connected = False

    def get_observation(self) -> dict[str, np.ndarray]:
        """Latest state at least ``obs_latency_s`` old, with noise; a dropped packet returns
        the previous observation again."""
        with self._lock:
            self._check()
            self.link_stats.observations += 1
            if self._last_obs is not None and self._drop():
                self.link_stats.obs_dropped += 1
                return {k: v.copy() for k, v in self._last_obs.items()}
            if self.cfg.realtime:
                target = time.monotonic() - self.cfg.obs_latency_s
                snap = self._snaps[0][1]
                for t, s in reversed(self._snaps):
                    if t <= target:
                        snap = s
                        break
            else:
                k = int(round(self.cfg.obs_latency_s / self.backend.control_dt))
                snap = self._snaps[max(0, len(self._snaps) - 1 - k)][1]
            obs = self._noisy(snap)
            self._last_obs = obs
            return {k: v.copy() for k, v in obs.items()}

    def send_action(self, action: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Queue a command (applied after ``cmd_latency_s``); returns it. Lockstep mode then
        advances one control period."""
        a = as_action_vector(action, self._caps.action_names)
        if not np.all(np.isfinite(a)):
            raise BridgeError(
                f"twin {self._caps.robot!r}: NaN/inf action {a} (the safety layer "
                "should have stopped it)"
            )
        with self._lock:
            self._check()
            self.link_stats.commands += 1
            dropped = self._drop()
            if dropped:
                self.link_stats.cmd_dropped += 1
            if self.cfg.realtime:
                if not dropped:
                    self._cmds.append((time.monotonic() + self.cfg.cmd_latency_s, a.copy()))
            else:
                k = int(round(self.cfg.cmd_latency_s / self.backend.control_dt))
                if not dropped:
                    self._cmds.append((self._step_idx + k, a.copy()))
                self._apply_due(self._step_idx)
                self._physics(self._n_sub)
                self._step_idx += 1
                self._snapshot(float(self._step_idx))
        return a.copy()

    # ------------------------------------------------------------------ simulation access
    def reset(
        self,
        seed: int | None = None,
        level: str | None = None,
        objects: Mapping[str, np.ndarray] | None = None,
        qpos: np.ndarray | None = None,
    ) -> None:
        """Reset the simulated world (pending commands are discarded).

        Args:
            seed: scene reset seed (task layout); level: task level ("D0".."D2").
            objects: object name -> pose (7,) world frame, pos [m] + quat w,x,y,z.
            qpos: joint positions (n,) [rad]; the joint targets are set to them too.
        """
        objects = dict(objects or {})
        unknown = sorted(set(objects) - set(self.backend.objects))
        if unknown:
            raise BridgeError(
                f"twin {self._caps.robot!r}: unknown objects {unknown}; it has "
                f"{self.backend.objects}"
            )
        n = len(self._caps.joint_names)
        if qpos is not None and np.shape(qpos) != (n,):
            raise BridgeError(
                f"twin {self._caps.robot!r}: qpos must have shape ({n},), got {np.shape(qpos)}"
            )
        with self._lock:
            self.backend.reset(seed, level, objects, qpos)
            self._cmds.clear()
            self._snaps.clear()
            self._last_obs = None
            self._fault = None
            self._snapshot(time.monotonic() if self.cfg.realtime else float(self._step_idx))

    def success(self) -> bool | None:
        with self._lock:
            return self.backend.success()

    def step(self, n: int = 1) -> None:
        """Advance ``n`` control periods now (lockstep mode; for dry runs and tests)."""
        with self._lock:
            for _ in range(n):
                self._apply_due(self._step_idx)
                self._physics(self._n_sub)
                self._step_idx += 1
                self._snapshot(float(self._step_idx))

    # ------------------------------------------------------------------ internals
    def _check(self) -> None:
        if self._fault is not None:
            raise BridgeError(f"twin {self._caps.robot!r} stopped: {self._fault}")
        if not self._connected:
            raise BridgeError(f"twin {self._caps.robot!r} not connected (call connect())")

    def _drop(self) -> bool:
        return self.cfg.drop_prob > 0 and bool(self._rng.random() < self.cfg.drop_prob)

    def _noisy(self, snap: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        c = self.cfg
        if not (c.noise_qpos or c.noise_qvel or c.noise_ee):
            return snap
        out = dict(snap)
        if c.noise_qpos:
            out["qpos"] = snap["qpos"] + self._rng.normal(0, c.noise_qpos, snap["qpos"].shape)
        if c.noise_qvel:
            out["qvel"] = snap["qvel"] + self._rng.normal(0, c.noise_qvel, snap["qvel"].shape)
        if c.noise_ee:
            for arm in self._caps.arms:
                p = snap[f"ee.{arm}"].copy()
                p[:3] += self._rng.normal(0, c.noise_ee, 3)
                out[f"ee.{arm}"] = p
        return out

    def _apply_due(self, now: float) -> None:
        latest = None
        while self._cmds and self._cmds[0][0] <= now:
            latest = self._cmds.popleft()[1]
        if latest is not None:
            self.backend.set_action(latest)
            self.link_stats.cmd_applied += 1

    def _physics(self, n: int) -> None:
        try:
            self.backend.step_physics(n)
        except SimError as e:
            self._fault = str(e)
            raise BridgeError(f"twin {self._caps.robot!r} stopped: {e}") from None
        self.link_stats.physics_steps += n

    def _snapshot(self, t: float) -> None:
        obs = flatten_observation(self.backend.observe())
        if not self.cfg.objects:
            obs = {k: v for k, v in obs.items() if not k.startswith("objects.")}
        if "success" in self._features:
            obs["success"] = np.asarray(float(bool(self.backend.success())))
        self._snaps.append((t, obs))
        while len(self._snaps) > self._keep:
            self._snaps.popleft()

    def _run(self) -> None:
        ts = self.backend.model.opt.timestep
        t0 = time.monotonic()
        done = 0
        while not self._stop.is_set():
            now = time.monotonic()
            due = int((now - t0) / ts) - done
            if due > 0:
                n = min(due, max(1, int(0.1 / ts)))  # cap: never stall > 100 ms of physics
                with self._lock:
                    try:
                        self._apply_due(now)
                        self._physics(n)
                    except BridgeError:
                        return
                    self._snapshot(now)
                done += n
                self.link_stats.max_lag_s = max(self.link_stats.max_lag_s, (due - n) * ts)
                if due - n > 0:  # fell behind by more than the cap: drop the backlog
                    done = int((time.monotonic() - t0) / ts)
            self._stop.wait(self.cfg.tick_s)
