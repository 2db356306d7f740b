"""wipe_table (home): grasp the sponge and wipe the coffee stain off the table.

Coverage is physics-judged and **accumulated once per control step**: the executor calls
``subtasks(scene)`` once per control step (``sim.rollout.Recorder.add``), and each call marks the
stain cells under the sponge's bottom face while the sponge touches the table top lying flat.
``success`` reads the accumulated grid; ``reset`` clears it. A state set by hand therefore counts
only once ``subtasks`` has seen it.

The sponge has a grip block on top: the fingers squeeze the grip and their tips press on the foam
pad's top face. Pressing through friction alone would not last in MuJoCo (soft contacts creep
until the load is gone, leaving the pad hovering), so the demonstrator's downward pressure
(a target 3-6 mm below the surface) goes through that normal contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import mujoco
import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.errors import ConfigError
from sim.model.contacts import held_by_hands
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import quat_to_mat, yaw_quat

STAIN_HALF = np.array([0.08, 0.10])  # stain rectangle half sizes in its own frame [m]
TILES = (4, 5)  # visual tiles along x, y (geoms stain_<i><j>)
CELL = 0.005  # coverage grid cell [m]
FLAT_COS = np.cos(np.deg2rad(20))  # sponge counts as lying flat within 20° of upright
NOMINAL = {"stain": (-0.03, -0.05), "sponge": (-0.02, -0.26)}  # relative to workspace [m]
# Reset ranges per level: xy half-width [m], stain / sponge yaw half-widths [rad], mirror sides.
LEVEL_RANGES = {
    "D0": {"xy": 0.02, "stain_yaw": 0.1, "sponge_yaw": 0.2, "swap": False},
    "D1": {"xy": 0.04, "stain_yaw": 0.3, "sponge_yaw": 0.6, "swap": False},
    "D2": {"xy": 0.06, "stain_yaw": 0.5, "sponge_yaw": np.pi / 2, "swap": True},
}


@register_task("wipe_table")
@dataclass
class WipeTable(Task):
    """Wipe >= ``threshold`` of the stain's area with the sponge pressed on the table."""

    room: str = "home"
    props: str = "props/wipe_table.xml"
    objects: tuple[str, ...] = ("sponge", "stain")
    arms: tuple[str, ...] = ("right", "left")
    instruction: str = "Wipe the coffee stain off the table with the sponge."
    threshold: float = 0.8  # covered fraction of the stain area for success
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))
    symmetry = MappingProxyType({"sponge": 2, "stain": 2})  # z-symmetry order (0 = round)

    def bind(self, scene: Scene) -> None:
        m = scene.model
        self._sponge = m.body("sponge").id
        self._sponge_geom = m.geom("sponge").id  # the foam pad: its bottom face wipes
        self._half = m.geom_size[self._sponge_geom].copy()  # pad half sizes [m]
        if "table_top" not in {m.geom(i).name for i in range(m.ngeom)}:
            raise ConfigError(f"wipe_table needs a geom 'table_top' in room {scene.room!r}")
        self._table = m.geom("table_top").id
        self._stain = m.body("stain").id
        self._mocap = int(m.body_mocapid[self._stain])
        self._tiles = np.array(
            [[m.geom(f"stain_{i}{j}").id for j in range(TILES[1])] for i in range(TILES[0])]
        )
        self._alpha = m.geom_rgba[self._tiles, 3].copy()  # tile alpha while dirty
        n = np.round(2 * STAIN_HALF / CELL).astype(int)
        gx = (np.arange(n[0]) + 0.5) * CELL - STAIN_HALF[0]
        gy = (np.arange(n[1]) + 0.5) * CELL - STAIN_HALF[1]
        self._cells = np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1)  # (nx, ny, 2)
        self._covered = np.zeros(n, dtype=bool)

    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        sign = -1.0 if r["swap"] and rng.random() < 0.5 else 1.0  # mirror: the other arm wipes
        ws = scene.workspace()
        x, y = NOMINAL["stain"]
        xy = np.array([x, sign * y]) + rng.uniform(-r["xy"], r["xy"], 2)
        scene.data.mocap_pos[self._mocap] = ws + np.array([*xy, 0.0006])
        scene.data.mocap_quat[self._mocap] = yaw_quat(rng.uniform(-r["stain_yaw"], r["stain_yaw"]))
        x, y = NOMINAL["sponge"]
        xy = np.array([x, sign * y]) + rng.uniform(-r["xy"], r["xy"], 2)
        yaw = rng.uniform(-r["sponge_yaw"], r["sponge_yaw"])
        pos = ws + np.array([*xy, self._half[2] + 1e-4])
        scene.set_free_pose("sponge", np.concatenate([pos, yaw_quat(yaw)]))
        self._covered[:] = False
        scene.model.geom_rgba[self._tiles, 3] = self._alpha

    # ------------------------------------------------------------------ physics-judged signals
    def coverage(self) -> float:
        """Fraction of the stain area wiped so far (accumulated per control step) in [0, 1]."""
        return float(self._covered.mean())

    def _under_sponge(self, scene: Scene) -> np.ndarray:
        """(nx, ny) bool: stain cells inside the sponge's bottom-face footprint (world xy)."""
        d = scene.data
        sm = quat_to_mat(d.mocap_quat[self._mocap])
        cells = self._cells @ sm[:2, :2].T + d.mocap_pos[self._mocap][:2]
        rot = d.xmat[self._sponge].reshape(3, 3)
        local = (cells - d.xpos[self._sponge][:2]) @ rot[:2, :2]  # sponge frame (flat sponge)
        return np.all(np.abs(local) <= self._half[:2], axis=-1)

    def _on_table(self, scene: Scene) -> bool:
        """Sponge lies flat and touches the table top."""
        d = scene.data
        n = d.ncon
        g1, g2 = d.contact.geom1[:n], d.contact.geom2[:n]
        s, t = self._sponge_geom, self._table
        contact = bool(np.any(((g1 == s) & (g2 == t)) | ((g1 == t) & (g2 == s))))
        return contact and d.xmat[self._sponge][8] > FLAT_COS

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        grasped = any(
            held_by_hands(scene.model, scene.data, self._sponge, scene.hand_bodies.values())
        )
        over = self._under_sponge(scene) if self._on_table(scene) else None
        if over is not None and over.any():
            self._covered |= over
            self._fade_tiles(scene)
        wiping = bool(grasped and over is not None and over.any())
        return {"grasped": grasped, "wiping": wiping, "covered": self.success(scene)}

    def _fade_tiles(self, scene: Scene) -> None:
        """Tile alpha follows the wiped fraction of each tile (what the cameras see)."""
        nx, ny = self._covered.shape
        frac = self._covered.reshape(TILES[0], nx // TILES[0], TILES[1], ny // TILES[1])
        frac = frac.mean(axis=(1, 3))
        scene.model.geom_rgba[self._tiles, 3] = self._alpha * (1.0 - frac)

    def success(self, scene: Scene) -> bool:
        return self.coverage() >= self.threshold

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Grasp the ``sponge``, then wipe relative to the ``stain``."""
        sponge = scene.body_pose("sponge")
        arm = min(
            scene.arms, key=lambda a: float(np.linalg.norm(scene.ee_pose(a)[:2] - sponge[:2]))
        )
        return [Subtask("grasp", "sponge", "grasped", arm), Subtask("wipe", "stain", None, arm)]

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        d = scene.data
        sponge = scene.body_pose("sponge")
        arm = min(
            scene.arms, key=lambda a: float(np.linalg.norm(scene.ee_pose(a)[:2] - sponge[:2]))
        )
        # fingertips rest on the pad's top face (the ledge around the grip): EE height for that
        ledge = scene.workspace()[2] + 2 * self._half[2] + _tip_offset(scene, arm)
        grasp_z = ledge + 0.004  # close the fingers 4 mm above the ledge
        wz = ledge - rng.uniform(0.003, 0.006)  # press the tips this far into the ledge [m]
        s_yaw = _yaw(sponge[3:])
        s_yaw = (s_yaw + np.pi / 2) % np.pi - np.pi / 2  # grasp across the short side, mod 180°
        c = d.mocap_pos[self._mocap][:2]
        w_yaw = _yaw(d.mocap_quat[self._mocap])
        ax, ay = np.array([np.cos(w_yaw), np.sin(w_yaw)]), np.array([-np.sin(w_yaw), np.cos(w_yaw)])

        def at(xy: np.ndarray, z: float, yaw: float) -> np.ndarray:
            return np.concatenate([xy, [z], yaw_quat(yaw)])

        def stain_xy(u: float, v: float) -> np.ndarray:  # stain frame (u, v) -> world xy
            return c + u * ax + v * ay

        up = rng.uniform(0.08, 0.11)
        g = sponge[:2] + rng.normal(0, 0.002, 2)
        wps = [
            Waypoint(at(g, grasp_z + up, s_yaw), 1.2, 1.0, "approach", "sponge"),
            Waypoint(at(g, grasp_z, s_yaw), 0.7, 1.0, "reach", "sponge"),
            Waypoint(at(g, grasp_z, s_yaw), 0.5, 0.0, "grasp", "sponge", True),
            Waypoint(at(g, grasp_z + 0.04, s_yaw), 0.5, 0.0, "lift", "sponge"),
        ]
        # boustrophedon: strokes along the stain's y axis, rows stepping along its x axis
        v_end = STAIN_HALF[1] - self._half[1] + 0.015
        rows = np.array([-1.0, 0.0, 1.0]) * (STAIN_HALF[0] - self._half[0] + 0.01)
        v = v_end * rng.choice([-1.0, 1.0])  # start side of the first stroke
        start = stain_xy(rows[0] + rng.normal(0, 0.003), v)
        wps += [
            Waypoint(at(start, grasp_z + 0.03, w_yaw), 1.0, 0.0, "move", "stain"),
            Waypoint(at(start, wz, w_yaw), 0.5, 0.0, "press", "stain"),
        ]
        for k, u in enumerate(rows):
            if k > 0:  # step to the next row on the same side
                wps.append(Waypoint(at(stain_xy(u, v), wz, w_yaw), 0.4, 0.0, "wipe", "stain"))
            v = -v
            u_end = u + rng.normal(0, 0.003)
            wps.append(Waypoint(at(stain_xy(u_end, v), wz, w_yaw), 1.1, 0.0, "wipe", "stain"))
        last = wps[-1].pose[:2]
        wps += [
            Waypoint(at(last, grasp_z + 0.04, w_yaw), 0.5, 0.0, "lift", "stain"),
            Waypoint(at(last, grasp_z + 0.04, w_yaw), 0.4, 1.0, "release", "stain", True),
            Waypoint(at(last, grasp_z + up, w_yaw), 0.6, 1.0, "retreat", "stain"),
        ]
        return Plan().add(arm, *wps)


def _yaw(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _tip_offset(scene: Scene, arm: str) -> float:
    """How far the arm's colliding hand geoms reach beyond its EE site along the EE's -z [m].

    Read from the model at the current pose (finger pads of a parallel gripper, or a hand's
    fingertips), so the grasp height fits any robot: EE height = fingertip height + offset.
    """
    m, d = scene.model, scene.data
    sid = scene.ee_site[arm]
    rot, origin = d.site_xmat[sid].reshape(3, 3), d.site_xpos[sid]
    reach = 0.0
    for g in np.flatnonzero(np.isin(m.geom_bodyid, scene.hand_bodies[arm])):
        if not (m.geom_contype[g] or m.geom_conaffinity[g]):
            continue
        gr = d.geom_xmat[g].reshape(3, 3)
        if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
            signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
            pts = d.geom_xpos[g] + (signs * m.geom_size[g]) @ gr.T
        else:
            pts = d.geom_xpos[g] + np.array([[0, 0, -m.geom_rbound[g]]]) @ rot.T
        reach = max(reach, float(np.max(-(pts - origin) @ rot[:, 2])))
    return reach
