"""View-frustum culling of a ``MjvScene``: drop the geoms a camera cannot see before drawing.

``mjr_render`` submits every geom of the scene, and on Mesa llvmpipe each one costs CPU time
(transform, lighting, clipping, state changes) even when it is behind the camera. In a
furnished room a camera sees a fraction of it: the head camera meets 29 of stack_blocks' 62
geoms' bounding spheres, a wrist camera 12. Without shadows and reflections a geom whose
bounding sphere lies outside the view frustum cannot change a pixel, so the culled scene
draws the same image (``tests/test_render.py`` checks frames for equality, three rooms, moving
arms); at 84x84 it makes rendering a two-camera step 15-25 % cheaper on llvmpipe.

MuJoCo exposes ``MjvScene.geoms`` only as per-geom wrappers, too slow to copy geoms through in
Python; :class:`SceneCuller` views the scene's C array of ``mjvGeom`` as bytes (its layout is
located and checked against the wrappers on first use) and compacts it with numpy. Where the
layout can't be confirmed, culling switches itself off and the scene is drawn whole.
"""

from __future__ import annotations

import ctypes
import logging
import math

import mujoco
import numpy as np

log = logging.getLogger(__name__)

_PLANE, _BOX = int(mujoco.mjtGeom.mjGEOM_PLANE), int(mujoco.mjtGeom.mjGEOM_BOX)


class SceneCuller:
    """Keeps, per camera, only the scene geoms whose bounding sphere meets the view frustum.

    Never culled: geoms without a model bounding radius (planes, flexes, skins, decor), and
    reflective planes/boxes (``mjr_render`` treats the first of those specially). Call
    :meth:`snapshot` after ``mjv_updateScene`` and :meth:`cull` after each camera update.

    Args:
        scene: the scene to cull in place (its geom buffer must outlive this object).
        margin: extra radius [m] added to every bounding sphere (float rounding in GL).
    """

    def __init__(self, scene: mujoco.MjvScene, margin: float = 1e-3):
        self.scene = scene
        self.margin = margin
        self.enabled = True
        # (geom rows as bytes, float32 index of pos, of modelrbound, of reflectance)
        self._layout: tuple | None = None
        self._full: np.ndarray | None = None  # the whole scene's geom rows of this step
        self._normals: dict[tuple, tuple] = {}  # frustum shape -> camera-frame plane normals

    def _locate(self) -> bool:
        """Find the mjvGeom array and field offsets, checked against the wrappers."""
        scn = self.scene
        g0, g1 = scn.geoms[0], scn.geoms[1]
        stride = g1.size.ctypes.data - g0.size.ctypes.data
        pos_off_size = g0.pos.ctypes.data - g0.size.ctypes.data
        # the struct starts with int type, dataid, objtype, objid (mjvisualize.h): find the
        # start before `size` where those ints read back as the wrappers say, for every geom
        found = None
        for k in range(1, 33):
            base = g0.size.ctypes.data - 4 * k
            ints = np.ctypeslib.as_array(
                (ctypes.c_int32 * (stride // 4 * scn.ngeom)).from_address(base)
            ).reshape(scn.ngeom, stride // 4)
            if all(
                (ints[i, 0], ints[i, 2], ints[i, 3]) == (g.type, g.objtype, g.objid)
                for i, g in enumerate(scn.geoms[: scn.ngeom])
            ):
                found = base
                break
        if found is None:
            return False
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * (stride * scn.maxgeom)).from_address(found))
        rows = raw.reshape(scn.maxgeom, stride)
        size_off = g0.size.ctypes.data - found
        pos_off = size_off + pos_off_size
        rgba_off = g0.rgba.ctypes.data - found
        refl_off = rgba_off + 4 * 7  # rgba[4], emission, specular, shininess, reflectance
        f32 = rows.view(np.float32)
        rb = np.array([g.modelrbound for g in scn.geoms[: scn.ngeom]], np.float32)
        rb_off = next(
            (
                o
                for o in range(refl_off + 4, stride - 3, 4)
                if np.array_equal(f32[: scn.ngeom, o // 4], rb)
            ),
            None,
        )
        refl = np.array([g.reflectance for g in scn.geoms[: scn.ngeom]], np.float32)
        pos = np.array([g.pos for g in scn.geoms[: scn.ngeom]], np.float32)
        if (
            rb_off is None
            or not rb.any()
            or not np.array_equal(f32[: scn.ngeom, refl_off // 4], refl)
            or not np.array_equal(f32[: scn.ngeom, pos_off // 4 : pos_off // 4 + 3], pos)
        ):
            return False
        self._layout = (rows, pos_off // 4, rb_off // 4, refl_off // 4)
        return True

    def snapshot(self) -> int:
        """Save the whole scene's geoms (call after ``mjv_updateScene``); returns their count."""
        n = self.scene.ngeom
        self._full = None
        if not self.enabled or n < 2:  # nothing to cull (or to locate the layout with)
            return n
        if self._layout is None and not self._locate():
            log.warning("scene geom layout not recognised: frustum culling off")
            self.enabled = False
            return n
        rows, po, ro, fo = self._layout
        self._full = full = rows[:n].copy()
        f = full.view(np.float32)
        types = full.view(np.int32)[:, 0]
        self._p4 = p4 = np.ones((n, 4))
        p4[:, :3] = f[:, po : po + 3]
        rb = f[:, ro]
        self._r = rb + self.margin
        self._always = (rb <= 0) | ((f[:, fo] > 0) & ((types == _PLANE) | (types == _BOX)))
        return n

    def cull(self, aspect: float) -> int:
        """Compact the scene to the geoms the current camera can see; returns how many remain.

        ``aspect`` is the viewport's width/height (``mjr_render`` widens the frustum to it).
        """
        scn = self.scene
        if not self.enabled or self._full is None:
            return scn.ngeom
        full, rows = self._full, self._layout[0]
        c0, c1 = scn.camera[0], scn.camera[1]
        if c0.orthographic or scn.enabletransform or scn.stereo:  # draw the whole scene
            keep = slice(None)
        else:
            # inside every plane by more than the radius <=> the largest distance is < radius
            out = (self._p4 @ self._planes(c0, c1, aspect)).max(1)
            keep = np.flatnonzero(self._always | (out < self._r))
        kept = full[keep]
        rows[: len(kept)] = kept
        scn.ngeom = len(kept)
        return len(kept)

    def _planes(self, c0, c1, aspect: float) -> np.ndarray:
        """(4, 6) world planes of the current view (camera-frame normals cached per frustum)."""
        shape = (
            c0.frustum_near,
            c0.frustum_top,
            c0.frustum_bottom,
            c0.frustum_width,
            c0.frustum_center,
            aspect,
        )
        normals = self._normals.get(shape)
        if normals is None:
            normals = self._normals[shape] = _camera_normals(*shape)
        return _world_planes(normals, c0, c1)


def _camera_normals(
    near: float, top: float, bottom: float, width: float, center: float, aspect: float
) -> tuple[tuple[float, float, float], ...]:
    """Outward unit normals of the four side planes in camera axes (right, up, forward), for
    ``MjvGLCamera`` frustum fields [m] and the viewport's width/height ``aspect``."""
    hw = width or 0.5 * aspect * (top - bottom)
    left, right = center - hw, center + hw
    out = []
    for a, b, c in ((near, 0, -right), (-near, 0, left), (0, near, -top), (0, -near, bottom)):
        k = 1.0 / math.sqrt(a * a + b * b + c * c)
        out.append((a * k, b * k, c * k))
    return tuple(out)


def _world_planes(normals, c0, c1) -> np.ndarray:
    """(4, 6) world-frame frustum planes of a mono view: column k holds (n, -n.p0) for the
    outward unit normal n of plane k, so that (x, 1) . column = signed distance outside [m].

    ``normals`` are the side planes' unit normals in camera axes (:func:`_camera_normals`).
    Mono rendering views from the midpoint of the two eye cameras ``c0``/``c1`` (they sit
    ipd/2 to either side and share forward, up and the frustum), as ``mjr_render`` does.
    """
    fx, fy, fz = c0.forward.tolist()
    ux, uy, uz = c0.up.tolist()
    rx, ry, rz = fy * uz - fz * uy, fz * ux - fx * uz, fx * uy - fy * ux  # right = fwd x up
    (ax, ay, az), (bx, by, bz) = c0.pos.tolist(), c1.pos.tolist()
    px, py, pz = 0.5 * (ax + bx), 0.5 * (ay + by), 0.5 * (az + bz)
    cols = []
    for a, b, c in normals:  # side planes through the eye
        nx, ny, nz = a * rx + b * ux + c * fx, a * ry + b * uy + c * fy, a * rz + b * uz + c * fz
        cols.append((nx, ny, nz, -(nx * px + ny * py + nz * pz)))
    near, far, fp = c0.frustum_near, c0.frustum_far, fx * px + fy * py + fz * pz
    cols.append((-fx, -fy, -fz, fp + near))  # behind the near plane
    cols.append((fx, fy, fz, -fp - far))  # beyond the far plane
    return np.array(cols).T
