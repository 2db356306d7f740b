"""fold_cloth (home, bimanual): fold a square cloth in half, near edge onto far edge.

The cloth is a MuJoCo flex (``scenes/props/fold_cloth.xml``): an 8x8 grid of vertex bodies with
three slide joints each, inextensible edges (edge equality constraints) and self-collision; it
collides with the table, itself and the finger pads. A 12 mm-gap parallel gripper cannot pinch a
6 mm cloth lying flat, so a wooden bead hangs on a short loop off each near corner (added by
:meth:`FoldCloth.edit_spec`); the hands pinch the beads by friction, carry them in an arc about
the fold line (turning the pads so they never press on the cloth) and lay them on the far
corners. Success is judged on vertex positions, velocities and contacts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import mujoco
import numpy as np

from sim.control.plan import Plan, Waypoint
from sim.model.scene import Scene
from sim.tasks.base import Subtask, Task, check_level, register_task
from sim.transforms import quat_mul, quat_to_mat, yaw_quat

# Reset ranges per level: half-widths of the cloth centre offset (x, y) [m] and yaw [rad]; they
# are bounded by the table edge (beads at x >= 0.215 m) and the arms' reach (placing x <= ~0.5 m).
LEVEL_RANGES = {
    "D0": {"x": 0.005, "y": 0.01, "yaw": 0.05},
    "D1": {"x": 0.01, "y": 0.03, "yaw": 0.15},
    "D2": {"x": 0.01, "y": 0.06, "yaw": 0.25},
}
NOMINAL = (0.005, 0.0)  # cloth centre relative to the workspace site [m]
CORNERS = ("near_right", "near_left", "far_right", "far_left")
SIGNS = {"near_right": (-1, -1), "near_left": (-1, 1), "far_right": (1, -1), "far_left": (1, 1)}
BEAD_LOOP = 0.027  # bead centre to its corner vertex, along the side edge [m]: pads clear cloth
PAD_TIP = 0.015  # finger-pad tips below the EE site [m]
ARC_RADIUS = 0.094  # bead path about the fold line while folding [m]
INSET = 0.008  # hands this much inside the cloth's width while carrying: slack near edge [m]
RELEASE = 0.45  # gripper opening on release
DURATIONS = {
    "approach": 1.2,
    "descend": 0.7,
    "close": 0.5,
    "fold": 1.0,
    "place": 0.5,
    "release": 0.4,
    "retreat": 0.6,
}  # [s], scaled by one random factor per episode
# Bead path about the fold line: (angle [deg], pads' turn 0..1, pitch [rad], duration [x fold]).
ARC = (
    (150, 0.0, 0.0, 0.7),
    (115, 0.25, -0.1, 0.5),
    (85, 0.5, -0.25, 0.5),
    (55, 0.75, -0.35, 0.5),
    (30, 1.0, -0.45, 0.5),
    (12, 1.0, -0.5, 0.5),
)


def _corner_index(local: np.ndarray) -> dict[str, int]:
    """Indices of the four corners of vertex positions ``local`` (N, 2) in the cloth frame."""
    return {c: int(np.argmax(local @ np.array(s, float))) for c, s in SIGNS.items()}


def hull_area(xy: np.ndarray) -> float:
    """Area [m^2] of the convex hull of 2-D points ``xy`` (N, 2) (monotone chain)."""
    pts = sorted(set(map(tuple, np.round(np.asarray(xy, float), 9).tolist())))
    if len(pts) < 3:
        return 0.0

    def half(seq: list) -> list:
        out: list = []
        for px, py in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (py - ay) - (by - ay) * (px - ax) > 0:
                    break
                out.pop()
            out.append((px, py))
        return out[:-1]

    h = np.array(half(pts) + half(pts[::-1]))
    x, y = h[:, 0], h[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@register_task("fold_cloth")
@dataclass
class FoldCloth(Task):
    """Fold the cloth in half: both near corners onto the far corners (bimanual)."""

    room: str = "home"
    props: str = "props/fold_cloth.xml"
    objects: tuple[str, ...] = tuple(f"cloth_{c}" for c in CORNERS)
    arms: tuple[str, ...] = ("right", "left")
    instruction: str = "Fold the cloth in half, bringing the near edge onto the far edge."
    corner_tol: float = 0.03  # near corner to far corner, xy [m]
    half_area: tuple[float, float] = (0.35, 0.65)  # folded footprint / flat footprint
    levels: dict = field(default_factory=lambda: dict(LEVEL_RANGES))

    # ------------------------------------------------------------------ model hooks
    def edit_spec(self, spec: mujoco.MjSpec) -> None:
        """Name the corner vertex bodies ``cloth_<corner>`` and hang a bead (class
        ``cloth_bead``, on a ``cloth_loop``) off each near corner, outward along the side edge,
        resting on the table. Vertex bodies only translate, so :meth:`reset` turns the offsets
        with the cloth's yaw."""
        flex = next(f for f in spec.flexes if f.name == "cloth")
        names = list(flex.vertbody)
        local = np.array([spec.body(n).pos[:2] for n in names])
        bead, loop = spec.find_default("cloth_bead"), spec.find_default("cloth_loop")
        for corner, i in _corner_index(local - local.mean(axis=0)).items():
            body = spec.body(names[i])
            body.name = names[i] = f"cloth_{corner}"
            if corner.startswith("near"):
                off = [0.0, SIGNS[corner][1] * BEAD_LOOP, bead.geom.size[0] - flex.radius]
                body.add_geom(name=f"cloth_bead_{corner}", default=bead, pos=off)
                body.add_geom(name=f"cloth_loop_{corner}", default=loop, fromto=[0, 0, 0, *off])
        flex.vertbody = names

    def bind(self, scene: Scene) -> None:
        """Cache vertex bodies, their slide-joint addresses and the corner vertices."""
        m = scene.model
        f = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_FLEX, "cloth")
        a, n = m.flex_vertadr[f], m.flex_vertnum[f]
        self.vbody = m.flex_vertbodyid[a : a + n].copy()
        self.qadr = m.jnt_qposadr[m.body_jntadr[self.vbody]]  # x, y, z slides follow
        self.rest = m.body_pos[self.vbody].copy()  # world position at qpos = 0 [m]
        self.local = self.rest[:, :2] - self.rest[:, :2].mean(axis=0)
        self.side = float(np.ptp(self.local[:, 0]))
        self.corner = _corner_index(self.local)
        self.beads = {c: m.geom(f"cloth_bead_{c}").id for c in ("near_right", "near_left")}
        self.hang = [m.geom(f"cloth_{k}_{c}").id for k in ("bead", "loop") for c in self.beads]
        self.hang_pose = (m.geom_pos[self.hang].copy(), m.geom_quat[self.hang].copy())
        self.table_z = float(scene.workspace()[2])
        self.pose = np.zeros(3)

    # ------------------------------------------------------------------ reset
    def reset(self, scene: Scene, rng: np.random.Generator, level: str) -> None:
        r = self.levels[check_level(level)]
        half = np.array([r["x"], r["y"], r["yaw"]])
        self.pose = np.array([*NOMINAL, 0.0]) + rng.uniform(-half, half)
        target = self.rest.copy()
        target[:, :2] = scene.workspace()[:2] + self.to_world(self.local)
        for k in range(3):
            scene.data.qpos[self.qadr + k] = target[:, k] - self.rest[:, k]
        pos, quat = self.hang_pose
        scene.model.geom_pos[self.hang, :2] = self.to_world(pos[:, :2]) - self.pose[:2]
        scene.model.geom_quat[self.hang] = quat_mul(yaw_quat(self.pose[2]), quat)

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Cloth-frame xy (..., 2) -> world xy offset from the workspace site [m] at reset pose."""
        c, s = np.cos(self.pose[2]), np.sin(self.pose[2])
        return local @ np.array([[c, s], [-s, c]]) + self.pose[:2]

    # ------------------------------------------------------------------ physics-judged signals
    def verts(self, scene: Scene) -> np.ndarray:
        """Vertex positions (N, 3) in the world frame [m]."""
        return scene.data.xpos[self.vbody]

    def _pinched(self, scene: Scene, corner: str) -> bool:
        """A bead held between two distinct finger pads of one hand."""
        d, g = scene.data, self.beads[corner]
        g1, g2 = d.contact.geom1[: d.ncon], d.contact.geom2[: d.ncon]
        other = np.concatenate([g2[g1 == g], g1[g2 == g]])
        other = other[other >= 0]
        bodies = scene.model.geom_bodyid[other]
        return any(
            len(set(other[np.isin(bodies, hand)])) >= 2 for hand in scene.hand_bodies.values()
        )

    def _folded(self, scene: Scene) -> bool:
        v = self.verts(scene)
        c = self.corner
        close = all(
            np.linalg.norm(v[c[f"near_{s}"], :2] - v[c[f"far_{s}"], :2]) < self.corner_tol
            for s in ("right", "left")
        )
        ratio = hull_area(v[:, :2]) / self.side**2
        return bool(close and self.half_area[0] < ratio < self.half_area[1])

    def _robot_touching(self, scene: Scene) -> bool:
        """Any finger pad touching the cloth (flex) or a bead."""
        m, d = scene.model, scene.data
        n = d.ncon
        if n == 0:
            return False
        robot = np.flatnonzero(m.body_rootid == scene.robot_root)
        geoms = np.stack([d.contact.geom1[:n], d.contact.geom2[:n]], axis=1)
        flex = np.stack([d.contact.flex[:n, 0], d.contact.flex[:n, 1]], axis=1)
        ours = (flex >= 0) | np.isin(geoms, list(self.beads.values()))
        theirs = (geoms >= 0) & np.isin(m.geom_bodyid[geoms], robot)
        return bool(np.any((ours[:, 0] & theirs[:, 1]) | (ours[:, 1] & theirs[:, 0])))

    def subtasks(self, scene: Scene) -> dict[str, bool]:
        v = self.verts(scene)
        near = [self.corner["near_right"], self.corner["near_left"]]
        return {
            "corners_grasped": all(self._pinched(scene, c) for c in self.beads),
            "lifted": bool(np.all(v[near, 2] > self.table_z + 0.04)),
            "folded": self._folded(scene),
        }

    def success(self, scene: Scene) -> bool:
        dof = scene.model.jnt_dofadr[scene.model.body_jntadr[self.vbody]]
        speed = np.abs(scene.data.qvel[np.concatenate([dof, dof + 1, dof + 2])])
        resting = float(np.max(speed)) < 0.05
        return bool(self._folded(scene) and resting and not self._robot_touching(scene))

    # ------------------------------------------------------------------ subtask spec (augmentation)
    def subtask_spec(self, scene: Scene) -> list[Subtask]:
        """Each hand pinches its near corner's bead (ends when both are pinched), then folds
        relative to its far corner; synchronized: one shared transform per subtask."""
        return [
            Subtask(label, f"cloth_{end}_{arm}", signal, arm, sync=label)
            for label, end, signal in (("grasp", "near", "corners_grasped"), ("fold", "far", None))
            for arm in ("right", "left")
        ]

    def ref_frame(self, ref: str, objects: Mapping[str, np.ndarray]) -> np.ndarray:
        """Frame of a cloth corner (vertex bodies only translate): at the corner vertex, x along
        the cloth from the near to the far edge, z up (the cloth's yaw from its vertices)."""
        side = ref.rsplit("_", 1)[-1]
        near, far = objects[f"cloth_near_{side}"][:3], objects[f"cloth_far_{side}"][:3]
        d = far[:2] - near[:2]
        return np.concatenate([objects[ref][:3], yaw_quat(float(np.arctan2(d[1], d[0])))])

    # ------------------------------------------------------------------ scripted demonstrator
    def demo(self, scene: Scene, rng: np.random.Generator) -> Plan:
        """Pinch both near beads, carry them in an arc about the fold line, lay them down on the
        far corners, let go and back off along the fingers."""
        ws, yaw, h = scene.workspace(), self.pose[2], self.side / 2
        bead_z = self.table_z + PAD_TIP + 0.002  # EE height that puts the pads around a bead
        dur = dict(DURATIONS)  # shared by both arms
        plan = Plan()
        for arm in ("right", "left"):  # each hand folds the corner on its own side
            sy = -1.0 if arm == "right" else 1.0

            def at(
                lx: float,
                inset: float,
                z: float,
                turn: float = 0.0,
                pitch: float = 0.0,
                sy: float = sy,
            ) -> np.ndarray:
                """EE pose over cloth-frame point (lx, bead's y - inset); the pads close across
                the corner's diagonal (turn 0: flat cloth, 1: folded layer), tipped by pitch."""
                xy = ws[:2] + self.to_world(np.array([lx, sy * (h + BEAD_LOOP - inset)]))
                grip_yaw = yaw + sy * np.pi * (0.75 - 0.5 * turn)  # turns through the x axis
                q = quat_mul(yaw_quat(grip_yaw), _pitch_quat(pitch))
                return np.concatenate([xy, [z], q])

            jit = rng.normal(0, 0.002)
            near, far = f"cloth_near_{arm}", f"cloth_far_{arm}"  # waypoint reference objects
            r = ARC_RADIUS * rng.uniform(0.97, 1.03)
            wps = [
                Waypoint(at(-h, 0, bead_z + 0.08), dur["approach"], 1.0, "approach", near),
                Waypoint(at(-h + jit, 0, bead_z), dur["descend"], 1.0, "grasp", near),
                Waypoint(at(-h + jit, 0, bead_z), dur["close"], 0.0, "grasp", near, True),
            ]
            for deg, turn, pitch, d in ARC:
                ang = np.radians(deg)
                pose = at(r * np.cos(ang), INSET, bead_z + r * np.sin(ang), turn, pitch)
                label, ref = ("lift", near) if deg > 140 else ("fold", far)
                wps.append(Waypoint(pose, d * dur["fold"], 0.0, label, ref))
            place = at(r + 0.01, 0.0, bead_z + 0.01, 1, -0.5)
            out = quat_to_mat(place[3:]) @ np.array([0.0, 0.0, 0.04])  # back along the fingers
            up = np.concatenate([place[:3] + out, place[3:]])
            back = at(h - 0.06, 0.02, bead_z + 0.1, 1, -0.3)
            wps += [
                Waypoint(place, dur["place"], 0.0, "place", far),
                Waypoint(place, dur["release"], RELEASE, "release", far, True),
                Waypoint(up, dur["release"], RELEASE, "retreat", far),
                Waypoint(back, dur["retreat"], RELEASE, "retreat", far),
            ]
            plan.add(arm, *wps)
        return plan


def _pitch_quat(pitch: float) -> np.ndarray:
    """Rotation about the hand's y (closing) axis by ``pitch`` [rad] (w,x,y,z)."""
    return np.array([np.cos(pitch / 2), 0.0, np.sin(pitch / 2), 0.0])
