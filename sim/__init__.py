"""demoforge: few human demos in, large physics-verified MuJoCo datasets out."""

from __future__ import annotations

__version__ = "0.1.0"
