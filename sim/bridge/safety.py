"""The safety layer: the only path from any caller to a driver.

:class:`SafetyLayer` wraps a :class:`~sim.bridge.protocol.Driver` and is itself a Driver. The
server wraps its driver in one before serving, so nothing on the wire can bypass it. Per command:

1. e-stop latched -> rejected (SafetyError); nothing reaches the driver until ``reset_estop``.
2. wrong shape / NaN / inf -> rejected (SafetyError) and the robot is told to *hold*.
3. clamp to joint limits ``[lower, upper]`` (grippers [0, 1]).
4. clamp the change from the previous sent command to ``±step`` where
   ``step = min(max_step, max_velocity · dt)`` per dim (``dt`` = nominal command period [s]).
5. workspace box: if FK of the candidate puts any EE outside ``[workspace_lo, workspace_hi]``
   (world frame [m]), move only the largest fraction of the way (bisection) that stays inside.
   A robot that starts outside may only move in ways that do not increase the violation.

Steps 3-5 keep the command inside the limits and within ``step`` of the last one: the allowed set
per dim is an interval that contains the previous command, and step 5 takes a convex combination.
Every clamp/reject/hold is counted in :class:`SafetyStats` and logged (rate-limited).

Hold: ``hold_mode="current"`` commands the measured position (stop where you are),
``"last"`` re-sends the last safe command. The watchdog (``check_watchdog``, called by the
server's watchdog thread) holds once when no command arrived for ``watchdog_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sim.bridge.protocol import (
    Capabilities,
    Driver,
    action_from_observation,
    as_action_vector,
)
from sim.errors import BridgeError, ConfigError, SafetyError

log = logging.getLogger("sim.bridge.safety")

FK = Callable[[np.ndarray], Mapping[str, np.ndarray]]
"""Forward kinematics: joint positions (n,) in ``joint_names`` order -> arm -> EE position (3,)
in the world frame [m]."""


@dataclass(frozen=True)
class SafetyConfig:
    """Safety limits. Unset limits come from the driver's capabilities.

    Attributes:
        lower: per action dim lower bound (joints [rad or m], grippers 0); None = capabilities.
        upper: per action dim upper bound; None = capabilities.
        max_step: largest change of a joint target per command [rad or m].
        gripper_max_step: largest change of a gripper opening per command [0-1].
        max_velocity: joint speed limit [rad/s or m/s] -> step ≤ max_velocity · dt; None = off.
        dt: nominal command period [s]; None = capabilities.control_dt.
        workspace_lo: (3,) lower corner of the EE box in the world frame [m]; None = no box.
        workspace_hi: (3,) upper corner [m].
        watchdog_s: hold when no command arrived for this long [s]; None = no watchdog.
        hold_mode: "current" (command the measured position) or "last" (last safe command).
        workspace_iters: bisection iterations for the workspace clamp.
    """

    lower: tuple[float, ...] | None = None
    upper: tuple[float, ...] | None = None
    max_step: float = 0.05
    gripper_max_step: float = 0.25
    max_velocity: float | None = 2.0
    dt: float | None = None
    workspace_lo: tuple[float, float, float] | None = None
    workspace_hi: tuple[float, float, float] | None = None
    watchdog_s: float | None = 0.25
    hold_mode: str = "current"
    workspace_iters: int = 12

    def __post_init__(self) -> None:
        if self.hold_mode not in ("current", "last"):
            raise ConfigError(
                f"safety.hold_mode must be 'current' or 'last', got {self.hold_mode!r}"
            )
        if not self.max_step > 0 or not self.gripper_max_step > 0:
            raise ConfigError("safety.max_step and safety.gripper_max_step must be > 0")
        if (self.workspace_lo is None) != (self.workspace_hi is None):
            raise ConfigError("safety.workspace_lo and safety.workspace_hi must be set together")
        if self.watchdog_s is not None and not self.watchdog_s > 0:
            raise ConfigError(f"safety.watchdog_s must be > 0 or None, got {self.watchdog_s}")


@dataclass
class SafetyStats:
    """Counters of everything the safety layer did (all since connect)."""

    commands: int = 0
    sent: int = 0
    clamped_limits: int = 0
    clamped_step: int = 0
    clamped_workspace: int = 0
    rejected_invalid: int = 0
    rejected_nonfinite: int = 0
    rejected_estop: int = 0
    holds: int = 0
    watchdog_holds: int = 0
    estops: int = 0
    resets: int = 0
    watchdog_latency_s: list[float] = field(default_factory=list)
    events: deque = field(default_factory=lambda: deque(maxlen=256))
    last_hold: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["events"] = list(self.events)[-32:]
        d["watchdog_latency_s"] = list(self.watchdog_latency_s)[-64:]
        return d


class SafetyLayer:
    """A Driver that checks and clamps every command before it reaches ``driver``.

    Args:
        driver: the robot-side driver to protect.
        cfg: limits (unset ones come from ``driver.capabilities``).
        fk: optional forward kinematics for the workspace box (see :data:`FK`).
        clock: monotonic time source [s] (injectable for tests).
    """

    def __init__(
        self,
        driver: Driver,
        cfg: SafetyConfig | None = None,
        fk: FK | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.cfg = cfg or SafetyConfig()
        self.fk = fk
        self.clock = clock
        self.stats = SafetyStats()
        self._lock = threading.RLock()
        self._last: np.ndarray | None = None
        self._t_last_cmd: float | None = None
        self._holding = False
        self._estop: str | None = None
        self._log_t: dict[str, tuple[float, int]] = {}
        self._resolved = False
        if self.cfg.workspace_lo is not None and fk is None:
            raise ConfigError("safety: workspace box given but no fk(q) to check it with")

    # ------------------------------------------------------------------ Driver protocol
    @property
    def capabilities(self) -> Capabilities:
        return self.driver.capabilities

    @property
    def observation_features(self) -> dict[str, tuple[int, ...]]:
        return self.driver.observation_features

    @property
    def action_features(self) -> dict[str, tuple[int, ...]]:
        return self.driver.action_features

    def connect(self) -> None:
        """Connect the driver and take its measured position as the previous command."""
        with self._lock:
            self.driver.connect()
            self._resolve()
            self._last = self._measured_action()

    def disconnect(self) -> None:
        with self._lock:
            self.driver.disconnect()

    def get_observation(self) -> dict[str, np.ndarray]:
        with self._lock:
            return self.driver.get_observation()

    def send_action(self, action: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Check, clamp and forward a command; return what was sent.

        Raises:
            SafetyError: e-stop latched, or the command was malformed / NaN / inf (the robot
                is told to hold first).
        """
        with self._lock:
            self._resolve()
            self.stats.commands += 1
            if self._estop is not None:
                self.stats.rejected_estop += 1
                raise SafetyError(
                    f"e-stop latched ({self._estop}); command rejected until reset_estop"
                )
            names = self.capabilities.action_names
            try:
                a = as_action_vector(action, names)
            except BridgeError as e:
                self.stats.rejected_invalid += 1
                self._hold("invalid command")
                raise SafetyError(f"command rejected ({e}); holding position") from None
            bad = ~np.isfinite(a)
            if bad.any():
                self.stats.rejected_nonfinite += 1
                which = [names[i] for i in np.flatnonzero(bad)]
                self._hold(f"NaN/inf command in {which}")
                raise SafetyError(f"command rejected: NaN/inf in {which}; holding position")
            c = self._clamp(a)
            sent = self.driver.send_action(c)
            self._last = np.asarray(sent, dtype=np.float64).copy()
            self._t_last_cmd = self.clock()
            self._holding = False
            self.stats.sent += 1
            return self._last.copy()

    # ------------------------------------------------------------------ safety operations
    @property
    def estopped(self) -> bool:
        return self._estop is not None

    @property
    def holding(self) -> bool:
        return self._holding

    @property
    def last_sent(self) -> np.ndarray | None:
        return None if self._last is None else self._last.copy()

    def estop(self, reason: str = "requested") -> None:
        """Hold, then latch: no command reaches the driver until :meth:`reset_estop`."""
        with self._lock:
            if self._estop is None:
                self._hold(f"e-stop: {reason}")
                self._estop = reason
                self.stats.estops += 1
                self._event("estop", reason)
                log.error("E-STOP latched: %s", reason)

    def reset_estop(self) -> None:
        """Clear a latched e-stop; the next command is step-limited from the measured position."""
        with self._lock:
            if self._estop is not None:
                self._estop = None
                self.stats.resets += 1
                self._event("reset_estop", "")
                log.warning("e-stop reset")
            self._last = self._measured_action()
            self._t_last_cmd = None
            self._holding = False

    def hold(self, reason: str) -> None:
        """Tell the robot to hold now (see ``hold_mode``); ignored while e-stopped (already
        holding, and nothing may reach the driver)."""
        with self._lock:
            if self._estop is None:
                self._hold(reason)

    def reset_driver(self, **kwargs: Any) -> None:
        """Reset a simulated driver (``driver.reset(**kwargs)``), then re-baseline from its state.

        Raises:
            BridgeError: the driver cannot reset (a real robot).
            SafetyError: the e-stop is latched.
        """
        with self._lock:
            reset = getattr(self.driver, "reset", None)
            if reset is None:
                raise BridgeError(
                    f"driver {self.capabilities.driver!r} cannot reset (not simulated)"
                )
            if self._estop is not None:
                raise SafetyError(
                    f"e-stop latched ({self._estop}); reset_estop before resetting the scene"
                )
            reset(**kwargs)
            self.reset_estop()

    def check_watchdog(self, now: float | None = None) -> bool:
        """Hold once if the last command is older than ``watchdog_s``; return True if it did."""
        if self.cfg.watchdog_s is None:
            return False
        with self._lock:
            now = self.clock() if now is None else now
            t = self._t_last_cmd
            if t is None or self._holding or self._estop is not None:
                return False
            age = now - t
            if age <= self.cfg.watchdog_s:
                return False
            self.stats.watchdog_holds += 1
            self._hold(
                f"watchdog: no command for {age * 1e3:.0f} ms "
                f"(deadline {self.cfg.watchdog_s * 1e3:.0f} ms)"
            )
            self.stats.watchdog_latency_s.append(self.clock() - t)
            if len(self.stats.watchdog_latency_s) > 1024:
                del self.stats.watchdog_latency_s[:512]
            return True

    def status(self) -> dict[str, Any]:
        """Snapshot for heartbeats: e-stop, holding, age of last command, counters."""
        with self._lock:
            age = None if self._t_last_cmd is None else self.clock() - self._t_last_cmd
            return {
                "estop": self._estop,
                "holding": self._holding,
                "last_cmd_age_s": age,
                "stats": self.stats.to_dict(),
            }

    # ------------------------------------------------------------------ internals
    def _resolve(self) -> None:
        if self._resolved:
            return
        caps = self.capabilities
        m = len(caps.action_names)
        n = len(caps.joint_names)
        self.lower = np.asarray(
            self.cfg.lower if self.cfg.lower is not None else caps.lower, dtype=np.float64
        )
        self.upper = np.asarray(
            self.cfg.upper if self.cfg.upper is not None else caps.upper, dtype=np.float64
        )
        if self.lower.shape != (m,) or self.upper.shape != (m,):
            raise ConfigError(
                f"safety: lower/upper need {m} values ({caps.action_names}), got "
                f"{self.lower.shape}/{self.upper.shape}"
            )
        if np.any(self.lower > self.upper) or not np.all(np.isfinite(self.lower + self.upper)):
            raise ConfigError(
                f"safety: need finite lower <= upper, got {self.lower} / {self.upper}"
            )
        dt = self.cfg.dt if self.cfg.dt is not None else caps.control_dt
        step = np.full(m, self.cfg.max_step)
        step[n:] = self.cfg.gripper_max_step
        if self.cfg.max_velocity is not None:
            step[:n] = np.minimum(step[:n], self.cfg.max_velocity * dt)
        self.step = step
        self.n_joints = n
        self.box = None
        if self.cfg.workspace_lo is not None:
            self.box = (
                np.asarray(self.cfg.workspace_lo, float),
                np.asarray(self.cfg.workspace_hi, float),
            )
        self._resolved = True

    def _measured_action(self) -> np.ndarray:
        self._resolve()
        obs = self.driver.get_observation()
        return np.clip(action_from_observation(obs, self.capabilities), self.lower, self.upper)

    def _violation(self, a: np.ndarray) -> float:
        """Summed distance [m] of all EEs outside the workspace box (0 = inside)."""
        assert self.box is not None and self.fk is not None
        lo, hi = self.box
        v = 0.0
        for pos in self.fk(a[: self.n_joints]).values():
            p = np.asarray(pos, dtype=np.float64)[:3]
            v += float(np.linalg.norm(np.maximum(lo - p, 0.0) + np.maximum(p - hi, 0.0)))
        return v

    def _clamp(self, a: np.ndarray) -> np.ndarray:
        prev = self._last if self._last is not None else self._measured_action()
        c = np.clip(a, self.lower, self.upper)
        if np.any(c != a):
            self.stats.clamped_limits += 1
            self._warn("limits", f"command clamped to joint limits: {self._diff(a, c)}")
        lo = np.maximum(self.lower, prev - self.step)
        hi = np.minimum(self.upper, prev + self.step)
        d = np.clip(c, lo, hi)
        if np.any(d != c):
            self.stats.clamped_step += 1
            self._warn("step", f"command step-limited: {self._diff(c, d)}")
        if self.box is not None:
            d = self._clamp_workspace(prev, d)
        return d

    def _clamp_workspace(self, prev: np.ndarray, cand: np.ndarray) -> np.ndarray:
        v_cand = self._violation(cand)
        if v_cand == 0.0:
            return cand
        v_prev = self._violation(prev)
        n = self.n_joints
        out = cand.copy()
        if v_prev > 0.0:  # started outside: allow only moves that do not increase the violation
            if v_cand <= v_prev:
                return cand
            out[:n] = prev[:n]
        else:
            lo_a, hi_a = 0.0, 1.0  # lo_a always inside
            for _ in range(self.cfg.workspace_iters):
                mid = 0.5 * (lo_a + hi_a)
                trial = prev[:n] + mid * (cand[:n] - prev[:n])
                x = out.copy()
                x[:n] = trial
                if self._violation(x) == 0.0:
                    lo_a = mid
                else:
                    hi_a = mid
            out[:n] = prev[:n] + lo_a * (cand[:n] - prev[:n])
        self.stats.clamped_workspace += 1
        self._warn(
            "workspace", f"command would leave the workspace box by {v_cand:.3f} m; shortened"
        )
        return out

    def _hold(self, reason: str) -> None:
        """Command the hold target (see module docstring) and mark the robot as holding."""
        target = None
        if self.cfg.hold_mode == "current":
            try:
                target = self._measured_action()
            except Exception as e:  # noqa: BLE001 - fall back to the last safe command
                log.error("hold: cannot read position (%s); re-sending last command", e)
        if target is None:
            target = self._last
        t = self.clock()
        if target is not None:
            sent = self.driver.send_action(target)
            self._last = np.asarray(sent, dtype=np.float64).copy()
        self._holding = True
        self.stats.holds += 1
        self.stats.last_hold = {"t": t, "reason": reason}
        self._event("hold", reason)
        log.warning("HOLD: %s", reason)

    def _event(self, kind: str, detail: str) -> None:
        self.stats.events.append({"t": self.clock(), "kind": kind, "detail": detail})

    def _diff(self, a: np.ndarray, b: np.ndarray) -> str:
        names = self.capabilities.action_names
        idx = np.flatnonzero(a != b)[:4]
        return ", ".join(f"{names[i]} {a[i]:.4g}->{b[i]:.4g}" for i in idx) + (
            " ..." if np.count_nonzero(a != b) > 4 else ""
        )

    def _warn(self, kind: str, msg: str) -> None:
        """Log at most one warning per kind per second, with the count of suppressed ones."""
        now = self.clock()
        t0, suppressed = self._log_t.get(kind, (-1e9, 0))
        if now - t0 >= 1.0:
            extra = f" (+{suppressed} more in the last second)" if suppressed else ""
            log.warning("%s%s", msg, extra)
            self._log_t[kind] = (now, 0)
        else:
            self._log_t[kind] = (t0, suppressed + 1)
