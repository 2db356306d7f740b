"""Headless offscreen rendering: one reusable renderer for several cameras, quality presets.

Set ``MUJOCO_GL=egl`` (the package default) for Mesa on CPU or the GPU driver; the same code
runs on both. Video encoding helpers live here too.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from sim.errors import ConfigError, RenderError
from sim.frustum import SceneCuller

GL_PACKAGES = {
    "egl": "libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 (Debian/Ubuntu)",
    "osmesa": "libosmesa6 (Debian/Ubuntu)",
    "glfw": "an X display, or set MUJOCO_GL=egl",
}


@dataclass(frozen=True)
class Quality:
    """A rendering preset: scene flags, MSAA samples and the tessellation of round primitives.

    ``slices``/``stacks`` (None = the model's ``<visual><quality>``) set how finely spheres,
    capsules, cylinders and ellipsoids are drawn; llvmpipe is vertex-bound at small image
    sizes, so 16/8 instead of MuJoCo's 28/16 renders an 84x84 frame about 1.5x faster while
    changing only silhouette pixels of round parts (0.2 % of pixels by more than 8 levels).
    """

    shadows: bool
    reflections: bool
    skybox: bool
    samples: int
    slices: int | None = None
    stacks: int | None = None


#: "fast" (datasets): no shadows/reflections/skybox, no MSAA, coarser round primitives;
#: "high" (videos to watch): everything on, 4x MSAA, the model's tessellation.
QUALITY = {
    "fast": Quality(False, False, False, 0, slices=16, stacks=8),
    "high": Quality(True, True, True, 4),
}


@contextmanager
def model_quality(model: mujoco.MjModel, quality: str) -> Iterator[Quality]:
    """Set ``model.vis.quality`` for ``quality`` while a rendering context is made (MuJoCo bakes
    MSAA and tessellation into the context), then restore the model's own values."""
    q = QUALITY[quality]
    vq = model.vis.quality
    saved = (vq.offsamples, vq.numslices, vq.numstacks)
    vq.offsamples = q.samples
    vq.numslices = q.slices or vq.numslices
    vq.numstacks = q.stacks or vq.numstacks
    try:
        yield q
    finally:
        vq.offsamples, vq.numslices, vq.numstacks = saved


def set_scene_flags(scene: mujoco.MjvScene, quality: str) -> None:
    """Shadow/reflection/skybox flags of ``quality`` on a ``MjvScene``."""
    q = QUALITY[quality]
    f = scene.flags
    f[mujoco.mjtRndFlag.mjRND_SHADOW] = q.shadows
    f[mujoco.mjtRndFlag.mjRND_REFLECTION] = q.reflections
    f[mujoco.mjtRndFlag.mjRND_SKYBOX] = q.skybox


@dataclass(frozen=True)
class CameraConfig:
    """Cameras to render: dataset names (robot YAML `cameras` keys or MJCF names), size [px]."""

    names: tuple[str, ...] = ("head", "right_wrist")
    height: int = 84
    width: int = 84
    quality: str = "fast"


class CameraRig:
    """Renders a fixed set of cameras of one model; reuse it across episodes.

    All cameras of a step are drawn side by side into one offscreen buffer and read back with
    a single ``mjr_readPixels`` (one GPU/llvmpipe sync per step instead of one per camera);
    the geoms are collected once per step (``mjv_updateScene``), later cameras only move the
    camera and its headlight; with the ``fast`` preset (no shadows or reflections) each camera
    draws only the geoms inside its view frustum (:mod:`sim.frustum`); each image is what a
    ``mujoco.Renderer`` of that size and preset gives for the camera (to one intensity level
    on a few pixels: rasterizer rounding depends on the viewport offset).

    Args:
        model: the compiled scene model (its offscreen buffer is enlarged to fit the row).
        cameras: dataset camera name -> MJCF camera name.
        height, width: image size [px].
        quality: "fast" (no shadows/reflections) or "high".
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        cameras: dict[str, str],
        height: int,
        width: int,
        quality: str = "fast",
    ):
        if height <= 0 or width <= 0:
            raise ConfigError(f"cameras.height/width must be > 0, got {height}x{width}")
        if quality not in QUALITY:
            raise ConfigError(f"cameras.quality {quality!r} unknown; expected {list(QUALITY)}")
        self._ids = []
        for name, mj in cameras.items():
            cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, mj)
            if cid < 0:
                raise ConfigError(f"camera {name!r} -> MJCF camera {mj!r} not in the model")
            self._ids.append(cid)
        self.cameras = dict(cameras)
        self.height, self.width = height, width
        row = width * max(len(cameras), 1)
        g = model.vis.global_
        g.offwidth, g.offheight = max(row, g.offwidth), max(height, g.offheight)
        self.model = model
        self._gl = make_gl_context(row, height)
        self._gl.make_current()
        with model_quality(model, quality):
            self._con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self.scene = mujoco.MjvScene(model, maxgeom=10000)
        set_scene_flags(self.scene, quality)
        q = QUALITY[quality]
        # out-of-view geoms only matter through shadows and reflections
        self._culler = None if q.shadows or q.reflections else SceneCuller(self.scene)
        self._opt, self._pert = mujoco.MjvOption(), mujoco.MjvPerturb()
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rects = [mujoco.MjrRect(i * width, 0, width, height) for i in range(len(cameras))]
        self._all = mujoco.MjrRect(0, 0, row, height)
        self._buf = np.empty((height, row, 3), dtype=np.uint8)

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """One (H, W, 3) uint8 frame per camera of the current state."""
        if self._con is None:
            raise RenderError("CameraRig.render called after close()")
        if not self._ids:
            return {}
        _ensure_current(self._gl)
        m, scn, cat = self.model, self.scene, int(mujoco.mjtCatBit.mjCAT_ALL)
        for i, (cid, rect) in enumerate(zip(self._ids, self._rects, strict=True)):
            self._cam.fixedcamid = cid
            if i == 0:
                mujoco.mjv_updateScene(m, data, self._opt, self._pert, self._cam, cat, scn)
                if self._culler is not None:
                    self._culler.snapshot()
            else:  # same geoms: only the camera, and the headlight that follows it, change
                mujoco.mjv_updateCamera(m, data, self._cam, scn)
                mujoco.mjv_makeLights(m, data, scn)
            if self._culler is not None:
                self._culler.cull(self.width / self.height)
            mujoco.mjr_render(rect, scn, self._con)
        mujoco.mjr_readPixels(self._buf, None, self._all, self._con)
        img = self._buf[::-1]  # GL rows are bottom-up
        w = self.width
        return {n: img[:, i * w : (i + 1) * w].copy() for i, n in enumerate(self.cameras)}

    def close(self) -> None:
        if self._con is not None:
            self._gl.make_current()
            self._con.free()
            self._con = None
            self._gl.free()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: GL may already be gone
            pass


def _ensure_current(gl) -> None:
    """Make ``gl`` current unless it already is: ``eglMakeCurrent`` through PyOpenGL costs
    about 50 us a call even for the current context, and a rig renders every control step."""
    address = getattr(getattr(gl, "_context", None), "address", None)
    get = _egl_current_context() if address else None
    if get is None or get() != address:
        gl.make_current()


@functools.cache
def _egl_current_context():
    """``eglGetCurrentContext`` of the loaded libEGL as a bare ctypes function (1 us a call),
    or None when the backend is not EGL."""
    if os.environ.get("MUJOCO_GL") != "egl":
        return None
    try:
        fn = ctypes.CDLL("libEGL.so.1").eglGetCurrentContext
    except (OSError, AttributeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_void_p, []
    return fn


def make_gl_context(width: int, height: int):
    """An offscreen GL context (``mujoco.GLContext``), or RenderError naming the package."""
    backend = os.environ.get("MUJOCO_GL", "glfw")
    try:
        try:  # the class mujoco.Renderer uses (sim switches it to EGL when mujoco came first)
            from mujoco.rendering.classic.gl_context import GLContext
        except ImportError:  # other mujoco layouts
            GLContext = mujoco.GLContext
        if GLContext is None:
            raise RuntimeError("mujoco has no OpenGL context class for this MUJOCO_GL")
        return GLContext(width, height)
    except Exception as e:  # GL loader failures surface as many exception types
        raise _render_error(backend, e) from e


def _render_error(backend: str, e: Exception) -> RenderError:
    hint = GL_PACKAGES.get(backend, "a working OpenGL backend (MUJOCO_GL=egl|osmesa)")
    return RenderError(
        f"cannot create an offscreen OpenGL context with MUJOCO_GL={backend!r} ({e}). "
        f"Install {hint}, or pass cameras=[] to skip images. If mujoco was imported before "
        "sim, export MUJOCO_GL=egl in the environment instead."
    )


def make_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """Create a mujoco.Renderer, or raise RenderError naming the missing system package."""
    backend = os.environ.get("MUJOCO_GL", "glfw")
    try:
        return mujoco.Renderer(model, height, width)
    except Exception as e:  # GL loader failures surface as many exception types
        raise _render_error(backend, e) from e


def resolve_cameras(scene_cameras: dict[str, str], names: tuple[str, ...] | list[str]) -> dict:
    """Map requested dataset camera names to MJCF cameras (robot YAML names or raw MJCF names)."""
    out = {}
    for n in names:
        out[n] = scene_cameras.get(n, n)
    return out


def write_video(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Encode (T, H, W, 3) uint8 frames to an H.264 mp4 (written to a temp name, then renamed)."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    h, w = frames.shape[1:3]
    pad = ((0, 0), (0, h % 2), (0, w % 2), (0, 0))  # yuv420p needs even sizes
    iio.imwrite(
        tmp,
        np.pad(frames, pad, mode="edge"),
        fps=fps,
        codec="libx264",
        plugin="pyav",
        out_pixel_format="yuv420p",
    )
    tmp.replace(path)
    return path
