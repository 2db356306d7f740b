"""demoforge: few human demos in, large physics-verified MuJoCo datasets out."""

from __future__ import annotations

import os
import sys

# Headless by default: EGL (Mesa llvmpipe on CPU, the vendor driver on a GPU). MuJoCo reads
# MUJOCO_GL when it is first imported; an explicit MUJOCO_GL from the user wins.
os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
# Mesa llvmpipe (CPU rendering) rasterizes in the calling thread, not in a pool of one thread per
# core: dataset frames are small (84x84 renders 20 % faster that way) and generation workers
# already fill the cores (the pool costs CPU time at every size). Read when the first GL context
# is made; an explicit LP_NUM_THREADS wins; no effect on a GPU driver.
os.environ.setdefault("LP_NUM_THREADS", "0")


def _late_headless_gl() -> None:
    """mujoco was imported before sim without MUJOCO_GL on a machine without a display: it
    picked GLFW, which cannot render here. Switch its offscreen context class to EGL."""
    glc = sys.modules.get("mujoco.rendering.classic.gl_context")
    if (
        glc is None
        or getattr(glc, "_MUJOCO_GL", None) != ""
        or os.environ["MUJOCO_GL"] != "egl"
        or os.environ.get("DISPLAY")
        or sys.platform != "linux"
    ):
        return
    try:
        from mujoco.egl import GLContext
    except Exception:  # no EGL: sim.render.make_renderer explains what to install
        return
    glc.GLContext = GLContext


_late_headless_gl()

__version__ = "0.1.0"
