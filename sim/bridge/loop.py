"""Fixed-rate loops with precise sleep and jitter statistics.

``precise_sleep`` sleeps with the OS timer until ``spin_s`` before the deadline, then busy-spins
the rest (the OS timer alone overshoots by 50-1000 µs). :class:`RateLoop` keeps an absolute
schedule (deadline k = t0 + k·period), so errors do not accumulate; after an overrun longer than
one period it re-bases the schedule instead of bursting to catch up, and counts the overrun.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sim.errors import ConfigError


def precise_sleep(
    deadline: float, spin_s: float = 0.001, clock: Callable[[], float] = time.perf_counter
) -> None:
    """Return at ``deadline`` (a ``clock()`` time [s]): OS sleep, then spin the last ``spin_s``."""
    remaining = deadline - clock()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    while clock() < deadline:
        pass


@dataclass
class JitterStats:
    """Period-error statistics of a rate loop [s]; errors are achieved − nominal period."""

    period: float
    errors: list[float] = field(default_factory=list)
    overruns: int = 0
    max_keep: int = 100_000

    def add(self, actual_period: float) -> None:
        if len(self.errors) < self.max_keep:
            self.errors.append(actual_period - self.period)

    def summary(self) -> dict[str, float]:
        """``n``, ``rate_hz`` (achieved), ``mean_s``/``p99_s``/``max_s`` of |period error|."""
        if not self.errors:
            return {
                "n": 0,
                "rate_hz": 0.0,
                "mean_s": 0.0,
                "p99_s": 0.0,
                "max_s": 0.0,
                "overruns": self.overruns,
            }
        e = np.asarray(self.errors)
        a = np.abs(e)
        return {
            "n": int(e.size),
            "rate_hz": float(1.0 / (self.period + e.mean())),
            "mean_s": float(a.mean()),
            "p99_s": float(np.percentile(a, 99)),
            "max_s": float(a.max()),
            "overruns": self.overruns,
        }


class RateLoop:
    """Pace a loop at ``fps`` [Hz]: call :meth:`wait` once per iteration.

    Example:
        loop = RateLoop(50)
        for _ in range(n):
            work()
            loop.wait()
    """

    def __init__(
        self, fps: float, spin_s: float = 0.001, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        if not fps > 0:
            raise ConfigError(f"RateLoop: fps must be > 0, got {fps}")
        self.period = 1.0 / fps
        self.spin_s = spin_s
        self.clock = clock
        self.stats = JitterStats(self.period)
        self._next: float | None = None
        self._last_tick: float | None = None

    def start(self) -> None:
        """Start the schedule now (called implicitly by the first :meth:`wait`)."""
        self._last_tick = self.clock()
        self._next = self._last_tick + self.period

    def wait(self) -> float:
        """Sleep until the next deadline; return the time spent sleeping [s]."""
        if self._next is None:
            self.start()
        assert self._next is not None and self._last_tick is not None
        now = self.clock()
        slept = 0.0
        if now < self._next:
            precise_sleep(self._next, self.spin_s, self.clock)
            slept = self.clock() - now
            self._next += self.period
        else:  # overran this period
            self.stats.overruns += 1
            if now > self._next + self.period:  # more than a period late: re-base, no burst
                self._next = now + self.period
            else:
                self._next += self.period
        tick = self.clock()
        self.stats.add(tick - self._last_tick)
        self._last_tick = tick
        return slept


def run_at_rate(
    step: Callable[[int], bool | None],
    fps: float,
    n: int | None = None,
    stop: threading.Event | None = None,
    spin_s: float = 0.001,
) -> JitterStats:
    """Call ``step(k)`` at ``fps`` until it returns True, ``n`` calls, or ``stop`` is set.

    At least one of ``n`` / ``stop`` must be given (loops are bounded).
    """
    if n is None and stop is None:
        raise ConfigError("run_at_rate needs n or stop (unbounded loop)")
    loop = RateLoop(fps, spin_s)
    k = 0
    while (n is None or k < n) and not (stop is not None and stop.is_set()):
        if step(k):
            break
        k += 1
        loop.wait()
    return loop.stats
