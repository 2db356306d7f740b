"""fold_cloth: flex cloth model, reset levels, physics-judged success on hand-set states, demo."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from sim.control.ik import ArmIK
from sim.errors import UnknownNameError
from sim.model.scene import Scene
from sim.rollout import run_scripted
from sim.tasks import build_scene
from sim.tasks.fold_cloth import hull_area


@pytest.fixture(scope="module")
def scene() -> Scene:
    return build_scene(task="fold_cloth")


def _set_cloth(scene: Scene, xyz: np.ndarray) -> None:
    """Place every cloth vertex at world positions ``xyz`` (N, 3) [m], at rest."""
    task = scene.task
    for k in range(3):
        scene.data.qpos[task.qadr + k] = xyz[:, k] - task.rest[:, k]
    scene.data.qvel[:] = 0.0
    mujoco.mj_forward(scene.model, scene.data)


def _folded(scene: Scene, corners: str = "both") -> np.ndarray:
    """Vertex positions of the reset cloth folded along its y axis (near half on top) [m]."""
    task = scene.task
    flat = task.verts(scene).copy()
    local = task.local
    c, s = np.cos(task.pose[2]), np.sin(task.pose[2])
    fold = local[:, 0] < -1e-9
    if corners == "right":  # only the right half of the near half is folded
        fold &= local[:, 1] < 0
    out = flat.copy()
    mirrored = local.copy()
    mirrored[:, 0] = -mirrored[:, 0]
    rot = np.array([[c, s], [-s, c]])
    out[fold, :2] = scene.workspace()[:2] + task.pose[:2] + mirrored[fold] @ rot
    out[fold, 2] = flat[fold, 2] + 0.006  # one cloth thickness above the bottom layer
    return out


def test_cloth_is_a_flex_grid_with_two_beads(scene: Scene) -> None:
    m = scene.model
    assert m.nflex == 1 and m.flex_dim[0] == 2 and m.nflexvert == 64
    assert m.flex_edgeequality[0], "cloth edges must be inextensible (edge equality)"
    for corner in ("near_right", "near_left"):
        g = m.geom(f"cloth_bead_{corner}")
        assert m.geom_bodyid[g.id] == m.body(f"cloth_{corner}").id
        assert m.geom_contype[g.id] and m.geom_conaffinity[g.id]  # pinched by the pads
    side = scene.task.side
    assert side == pytest.approx(0.21, abs=1e-6)


@pytest.mark.parametrize("level", ["D0", "D1", "D2"])
def test_reset_levels_start_flat_and_unsolved(scene: Scene, level: str) -> None:
    for seed in range(3):
        scene.reset(np.random.default_rng(seed), level)
        v = scene.task.verts(scene)
        assert np.allclose(v[:, 2], v[0, 2]), "cloth starts flat on the table"
        assert v[0, 2] == pytest.approx(scene.workspace()[2] + 0.003, abs=1e-6)
        assert hull_area(v[:, :2]) == pytest.approx(scene.task.side**2, rel=1e-6)
        assert not scene.task.success(scene)
        assert not any(scene.task.subtasks(scene).values())


def test_reset_ranges_grow_with_level(scene: Scene) -> None:
    spread = {}
    for level in ("D0", "D2"):
        poses = []
        for seed in range(20):
            scene.reset(np.random.default_rng(seed), level)
            poses.append(scene.task.pose.copy())
        spread[level] = np.ptp(np.array(poses), axis=0)
    assert np.all(spread["D2"] > spread["D0"])


def test_bead_follows_cloth_yaw(scene: Scene) -> None:
    for seed in range(5):
        scene.reset(np.random.default_rng(seed), "D2")
        task = scene.task
        v = task.verts(scene)
        for corner, sy in (("near_right", -1.0), ("near_left", 1.0)):
            bead = scene.data.geom_xpos[task.beads[corner]]
            out = bead[:2] - v[task.corner[corner], :2]
            yaw = task.pose[2]
            side_dir = sy * np.array([-np.sin(yaw), np.cos(yaw)])  # outward along the side edge
            assert out @ side_dir == pytest.approx(np.linalg.norm(out), rel=1e-6)


def test_unknown_level_is_named(scene: Scene) -> None:
    with pytest.raises(UnknownNameError, match="level 'D9'"):
        scene.reset(np.random.default_rng(0), "D9")


def test_success_on_hand_set_states(scene: Scene) -> None:
    for level, seed in (("D0", 0), ("D2", 4)):
        scene.reset(np.random.default_rng(seed), level)
        assert not scene.task.success(scene)  # flat
        _set_cloth(scene, _folded(scene, "right"))
        assert not scene.task.success(scene)  # one corner folded only
        _set_cloth(scene, _folded(scene))
        assert scene.task.success(scene)
        assert scene.task.subtasks(scene)["folded"]
        ratio = hull_area(scene.task.verts(scene)[:, :2]) / scene.task.side**2
        assert 0.4 < ratio < 0.5  # the fold line runs between two vertex columns
        scene.data.qvel[scene.model.jnt_dofadr[scene.model.body_jntadr[scene.task.vbody]]] = 0.3
        assert not scene.task.success(scene), "a moving cloth is not a finished fold"


def test_crumpled_cloth_is_not_folded(scene: Scene) -> None:
    """Corners over each other but the cloth bunched up: footprint far below half."""
    scene.reset(np.random.default_rng(0), "D0")
    v = _folded(scene)
    centre = v[:, :2].mean(axis=0)
    v[:, :2] = centre + 0.4 * (v[:, :2] - centre)
    _set_cloth(scene, v)
    assert not scene.task.success(scene)


def test_hull_area() -> None:
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.2, 0.9]], float)
    assert hull_area(square) == pytest.approx(1.0)
    assert hull_area(square[:2]) == 0.0


def test_flat_cloth_is_stable(scene: Scene) -> None:
    scene.reset(np.random.default_rng(0), "D1")
    before = scene.task.verts(scene).copy()
    scene.step(500)  # 1 s at 2 ms; raises PhysicsError on NaN / bad qacc
    after = scene.task.verts(scene)
    assert np.abs(after - before).max() < 0.003


@pytest.mark.slow
def test_scripted_fold_succeeds(scene: Scene) -> None:
    ep = run_scripted(scene, ArmIK.for_scene(scene), seed=1, level="D0")
    assert ep.meta.success
    sub = ep.subtasks
    first = {k: int(np.argmax(v)) for k, v in sub.items()}
    assert all(v.any() for v in sub.values())
    assert first["corners_grasped"] < first["lifted"] < first["folded"]
    assert not sub["corners_grasped"][-1], "the hands let go at the end"
