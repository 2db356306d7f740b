"""demoforge: few human demos in, large physics-verified MuJoCo datasets out."""

from __future__ import annotations

import os

# Headless by default: EGL (Mesa llvmpipe on CPU, the vendor driver on a GPU). Must be set
# before mujoco is imported anywhere; an explicit MUJOCO_GL from the user wins.
os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

__version__ = "0.1.0"
