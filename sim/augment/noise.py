"""Action noise on EE targets (MimicGen adds noise to the actions of generated segments)."""

from __future__ import annotations

import numpy as np

from sim.errors import ConfigError


def position_noise(pose: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """EE poses (T, 7) with i.i.d. Gaussian noise of std ``scale`` [m] on the positions.

    Orientations are left as they are; ``scale`` 0 returns a copy (and draws nothing).
    """
    if scale < 0:
        raise ConfigError(f"source.noise must be >= 0 [m], got {scale}")
    out = np.array(pose, dtype=float)
    if scale > 0 and len(out):
        out[:, :3] += rng.normal(0.0, scale, size=(len(out), 3))
    return out
