"""Shared test configuration for the bridge: the tiny-arm twin behind loopback."""

from __future__ import annotations

from typing import Any

from sim.bridge.config import HardwareConfig
from sim.cli.bridge import hardware_from_dict

TINY_SAFETY = {"max_step": 0.1, "max_velocity": 4.0, "watchdog_s": 0.25}


def tiny_hw(fps: float, safety: dict[str, Any] | None = None, **kw: Any) -> HardwareConfig:
    """Hardware config of the tiny-arm twin on a free loopback port; ``safety`` adds limits;
    other keyword arguments are hardware keys (sections as mappings)."""
    base: dict[str, Any] = dict(
        name="tiny",
        robot="tiny_arm",
        fps=fps,
        endpoint="tcp://127.0.0.1:*",
        safety={**TINY_SAFETY, **(safety or {})},
    )
    base.update(kw)
    return hardware_from_dict(base)
