"""Domain randomization: each part writes only its arrays, restore is exact, seeds reproduce,
bad ranges name their key, physics stays solvable, distractors park/unpark without recompiling."""

from __future__ import annotations

import json
from dataclasses import replace

import mujoco
import numpy as np
import pytest

from sim.augment.randomize import (
    DISTRACTOR_PREFIX,
    CameraJitterConfig,
    DistractorConfig,
    PhysicsConfig,
    RandomizeConfig,
    Randomizer,
    VisualConfig,
    build_randomized_scene,
    known_presets,
    load_preset,
    randomize_config,
    targets_from_scene,
)
from sim.errors import ConfigError
from sim.model.contacts import subtree_bodies
from sim.tasks import build_scene, known_tasks


def _arrays(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    """Copies of every numpy array of the model, plus the headlight (what randomizers touch)."""
    out = {}
    for name in dir(model):
        if name.startswith("_"):
            continue
        v = getattr(model, name)
        if isinstance(v, np.ndarray):
            out[name] = v.copy()
    out["vis.headlight.ambient"] = model.vis.headlight.ambient.copy()
    out["vis.headlight.diffuse"] = model.vis.headlight.diffuse.copy()
    return out


def _changed(before: dict[str, np.ndarray], model: mujoco.MjModel) -> set[str]:
    after = _arrays(model)
    return {k for k, v in before.items() if not np.array_equal(v, after[k])}


@pytest.fixture(scope="module")
def stack():
    return build_scene("demoforge_humanoid", "stack_blocks")


@pytest.fixture(scope="module")
def stack_distractors():
    return build_randomized_scene("demoforge_humanoid", "stack_blocks", load_preset("full"))


PARTS = {
    "physics": (
        RandomizeConfig(physics=PhysicsConfig(enabled=True)),
        {
            "geom_friction",
            "body_mass",
            "body_inertia",
            "dof_damping",
            "actuator_gainprm",
            "actuator_biasprm",
        },
    ),
    "visual": (
        RandomizeConfig(visual=VisualConfig(enabled=True)),
        {
            "geom_rgba",
            "light_pos",
            "light_dir",
            "light_diffuse",
            "vis.headlight.ambient",
            "vis.headlight.diffuse",
        },
    ),
    "camera": (
        RandomizeConfig(camera=CameraJitterConfig(enabled=True, fovy=(-2.0, 2.0))),
        {"cam_pos", "cam_quat", "cam_fovy"},
    ),
}


@pytest.mark.parametrize("part", list(PARTS))
def test_part_changes_only_its_arrays_and_restore_is_exact(stack, part):
    cfg, expected = PARTS[part]
    m = stack.model
    stack.reset(np.random.default_rng(0))
    before = _arrays(m)
    r = Randomizer.from_scene(stack, cfg)
    assert set(r.arrays) == expected
    values = r.apply(m, stack.data, np.random.default_rng(7))
    assert set(values) == {part}
    json.dumps(values)  # provenance must be JSON-able
    assert _changed(before, m) == expected
    r.restore(m)
    assert _changed(before, m) == set()
    for k, v in _arrays(m).items():
        assert np.array_equal(v, before[k]), k


def test_physics_touches_exactly_the_targets(stack):
    m = stack.model
    cfg = PARTS["physics"][0]
    r = Randomizer.from_scene(stack, cfg)
    before = _arrays(m)
    values = r.apply(m, stack.data, np.random.default_rng(1))["physics"]
    try:
        blocks = [m.body(n).id for n in ("block_a", "block_b", "block_c")]
        table_top = m.geom("table_top").id
        fr_rows = set(np.flatnonzero(np.any(m.geom_friction != before["geom_friction"], axis=1)))
        assert fr_rows == set(np.flatnonzero(np.isin(m.geom_bodyid, blocks))) | {table_top}
        assert np.array_equal(m.geom_friction[:, 1:], before["geom_friction"][:, 1:])
        assert set(np.flatnonzero(m.body_mass != before["body_mass"])) == set(blocks)
        for n, b in zip(("block_a", "block_b", "block_c"), blocks, strict=True):
            s = values["mass"][n]
            assert m.body_mass[b] == pytest.approx(before["body_mass"][b] * s)
            assert np.allclose(m.body_inertia[b], before["body_inertia"][b] * s)
        assert m.geom_friction[table_top, 0] == pytest.approx(
            before["geom_friction"][table_top, 0] * values["friction"]["table_top"]
        )
        # position servos stay consistent: bias = -kp
        acts = [m.actuator(n).id for n in values["actuator_gain"]]
        assert len(acts) == 16  # 14 arm joints + 2 grippers of the humanoid
        assert np.array_equal(m.actuator_biasprm[acts, 1], -m.actuator_gainprm[acts, 0])
        assert set(values["damping"]) == set(stack.joint_names)
        assert np.array_equal(
            m.dof_damping[~np.isin(np.arange(m.nv), stack.dof_adr)],
            before["dof_damping"][~np.isin(np.arange(m.nv), stack.dof_adr)],
        )
    finally:
        r.restore(m)


def test_visual_recolours_props_table_walls_not_robot(stack):
    m = stack.model
    r = Randomizer.from_scene(stack, PARTS["visual"][0])
    before = _arrays(m)
    values = r.apply(m, stack.data, np.random.default_rng(2))["visual"]
    try:
        changed = set(np.flatnonzero(np.any(m.geom_rgba != before["geom_rgba"], axis=1)))
        robot = set(np.flatnonzero(np.isin(m.geom_bodyid, subtree_bodies(m, stack.robot_root))))
        assert not changed & robot
        names = {m.geom(g).name for g in changed}
        assert {"block_a", "block_b", "block_c", "table_top", "wall_back", "wall_left"} <= names
        assert "floor" not in names and "kettle" not in names
        assert {"block_a/block_red", "table/table_top", "wall/wall_back"} <= set(
            values["rgb_offset"]
        )
        # a block keeps its identity (red stays red) and its material's alpha
        a = m.geom("block_a").id
        assert m.geom_rgba[a, 0] > 0.6 and m.geom_rgba[a, 1] < 0.4 and m.geom_rgba[a, 3] == 1.0
        assert np.allclose(np.linalg.norm(m.light_dir, axis=1), 1.0)
    finally:
        r.restore(m)


def test_visual_changes_the_rendered_image(stack):
    from sim.render import CameraRig

    m = stack.model
    r = Randomizer.from_scene(stack, RandomizeConfig(visual=VisualConfig(enabled=True)))
    rig = CameraRig(m, {"head": "head_cam"}, 32, 32)
    try:
        stack.reset(np.random.default_rng(0))
        nominal = rig.render(stack.data)["head"].astype(int)
        r.apply(m, stack.data, np.random.default_rng(3))
        randomized = rig.render(stack.data)["head"].astype(int)
        r.restore(m)
        mujoco.mj_forward(m, stack.data)
        again = rig.render(stack.data)["head"].astype(int)
    finally:
        rig.close()
        r.restore(m)
    assert np.abs(randomized - nominal).mean() > 2.0
    assert np.array_equal(again, nominal)


def test_same_seed_same_values_and_arrays(stack):
    m = stack.model
    cfg = load_preset("default")
    r = Randomizer.from_scene(stack, cfg)
    v1 = r.apply(m, stack.data, np.random.default_rng(11))
    a1 = _arrays(m)
    v2 = r.apply(m, stack.data, np.random.default_rng(12))
    assert v2 != v1
    v3 = r.apply(m, stack.data, np.random.default_rng(11))  # apply starts from nominal
    a3 = _arrays(m)
    r.restore(m)
    assert v3 == v1 and json.dumps(v1) == json.dumps(v3)
    assert all(np.array_equal(a1[k], a3[k]) for k in a1)
    # a freshly built scene with the same seed gets the same values
    other = build_scene("demoforge_humanoid", "stack_blocks")
    v4 = Randomizer.from_scene(other, cfg).apply(other.model, other.data, np.random.default_rng(11))
    assert v4 == v1


def test_parts_draw_from_independent_streams(stack):
    m = stack.model
    phys = Randomizer.from_scene(stack, RandomizeConfig(physics=PhysicsConfig(enabled=True)))
    both = Randomizer.from_scene(
        stack,
        RandomizeConfig(physics=PhysicsConfig(enabled=True), visual=VisualConfig(enabled=True)),
    )
    p1 = phys.apply(m, stack.data, np.random.default_rng(5))["physics"]
    phys.restore(m)
    p2 = both.apply(m, stack.data, np.random.default_rng(5))["physics"]
    both.restore(m)
    assert p1 == p2


@pytest.mark.parametrize(
    "section,key,value",
    [
        ("physics", "friction", [1.2, 0.8]),
        ("physics", "actuator_gain", [1.1, 0.9]),
        ("visual", "light_pos", [0.3, -0.3]),
        ("camera", "rot", [2.0, -2.0]),
        ("distractors", "x", [0.2, -0.2]),
        ("distractors", "count", [3, 1]),
    ],
)
def test_lo_greater_than_hi_names_the_key(section, key, value):
    with pytest.raises(ConfigError, match=rf"randomize\.{section}\.{key}: range lo > hi"):
        randomize_config({section: {"enabled": True, key: value}})


def test_bad_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"randomize\.physics\.frction: unknown key"):
        randomize_config({"physics": {"frction": [0.9, 1.1]}})
    with pytest.raises(ConfigError, match=r"randomize\.lighting: unknown key"):
        randomize_config({"lighting": {}})
    with pytest.raises(ConfigError, match=r"randomize\.physics\.mass: a scale factor range"):
        PhysicsConfig(mass=(-0.5, 1.0))
    with pytest.raises(ConfigError, match=r"randomize\.distractors\.count: hi 5 > max_count 4"):
        DistractorConfig(count=(1, 5))
    with pytest.raises(ConfigError, match=r"randomize\.camera\.pos: expected a range"):
        CameraJitterConfig(pos=(0.1,))
    bad = tmp_path / "bad.yaml"
    bad.write_text("visual: {enabled: true, table_rgb: [0.2, -0.2]}\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: randomize\.visual\.table_rgb: range lo > hi"
    ):
        load_preset(bad)


def test_presets_load():
    assert {"none", "default", "physics", "visual", "camera", "full"} <= set(known_presets())
    assert not load_preset("none").enabled
    d = load_preset("default")
    assert d.physics.enabled and d.visual.enabled and d.camera.enabled
    assert not d.distractors.enabled
    assert load_preset("full").distractors.enabled


def test_none_preset_changes_nothing(stack):
    r = Randomizer.from_scene(stack, load_preset("none"))
    before = _arrays(stack.model)
    assert r.apply(stack.model, stack.data, np.random.default_rng(0)) == {}
    assert _changed(before, stack.model) == set()


def test_unknown_camera_and_missing_distractors_raise(stack):
    cfg = RandomizeConfig(camera=CameraJitterConfig(enabled=True, cameras=("belly_cam",)))
    with pytest.raises(ConfigError, match=r"randomize\.camera\.cameras: camera 'belly_cam'"):
        Randomizer.from_scene(stack, cfg)
    with pytest.raises(ConfigError, match=r"randomize\.distractors: .*edit_spec"):
        Randomizer.from_scene(stack, RandomizeConfig(distractors=DistractorConfig(enabled=True)))


def test_default_preset_keeps_stack_blocks_solvable(stack):
    from sim.control.ik import ArmIK
    from sim.rollout import run_scripted

    m = stack.model
    r = Randomizer.from_scene(stack, load_preset("default"))
    nominal_friction = m.geom_friction.copy()
    r.apply(m, stack.data, np.random.default_rng(21))
    try:
        ep = run_scripted(stack, ArmIK.for_scene(stack), seed=0)  # its reset keeps our model values
        assert not np.array_equal(m.geom_friction, nominal_friction)
    finally:
        r.restore(m)
    assert ep.meta.success
    assert np.all(np.isfinite(ep.qpos))


def test_distractors_park_and_unpark_without_recompiling(stack_distractors):
    s = stack_distractors
    m, model_id = s.model, id(s.model)
    cfg = load_preset("full")
    bodies = [
        m.body(b).name for b in range(m.nbody) if m.body(b).name.startswith(DISTRACTOR_PREFIX)
    ]
    assert len(bodies) == cfg.distractors.max_count
    # the targets ignore distractors: the table is still found under the workspace
    assert targets_from_scene(s).table_geom == "table_top"
    s.reset(np.random.default_rng(0))
    nominal = _arrays(m)
    parked_z = {n: float(s.data.body(n).xpos[2]) for n in bodies}
    assert all(z < 0 for z in parked_z.values())
    assert all(m.geom(n).contype == 0 and m.geom(n).conaffinity == 0 for n in bodies)
    r = Randomizer.from_scene(s, cfg)
    top = s.workspace()[2]
    seen = []
    for seed in (1, 2, 3):
        s.reset(np.random.default_rng(seed))
        values = r.apply(m, s.data, np.random.default_rng(seed))["distractors"]
        placed = [p for p in values["placed"] if not p.get("parked")]
        assert values["count"] >= cfg.distractors.count[0] and placed
        for _ in range(10):
            s.step()  # 0.5 s of physics
        for p in placed:
            xpos = s.data.body(p["name"]).xpos
            assert abs(xpos[2] - (top + cfg.distractors.size)) < 0.005, p  # resting on the table
            for o in s.object_names():
                assert np.linalg.norm(xpos[:2] - s.data.body(o).xpos[:2]) > 0.05
        for n in bodies[len(values["placed"]) :]:
            assert s.data.body(n).xpos[2] == pytest.approx(parked_z[n], abs=1e-6)  # stays parked
        seen.append(json.dumps(values))
    assert len(set(seen)) == 3
    assert id(s.model) == model_id and s.model.nbody == m.nbody  # never recompiled
    r.restore(m, s.data)
    assert all(np.array_equal(v, _arrays(m)[k]) for k, v in nominal.items())
    assert all(s.data.body(n).xpos[2] == pytest.approx(parked_z[n]) for n in bodies)


def test_distractors_stay_on_a_small_table():
    """carry_tray's over-bed table is 48 x 56 cm: placement is clipped to its top."""
    cfg = load_preset("full")
    cfg = replace(cfg, distractors=replace(cfg.distractors, y=(-0.6, 0.6), x=(-0.4, 0.4)))
    s = build_randomized_scene("demoforge_humanoid", "carry_tray", cfg)
    r = Randomizer.from_scene(s, cfg)
    assert targets_from_scene(s).table == "overbed_table"
    g = s.model.geom("table_top").id
    s.reset(np.random.default_rng(0))
    lo = s.data.geom_xpos[g][:2] - s.model.geom_size[g][:2]
    hi = s.data.geom_xpos[g][:2] + s.model.geom_size[g][:2]
    for seed in range(3):
        s.reset(np.random.default_rng(seed))
        values = r.apply(s.model, s.data, np.random.default_rng(seed))["distractors"]
        for p in values["placed"]:
            if not p.get("parked"):
                assert np.all(np.array(p["pos"][:2]) >= lo) and np.all(np.array(p["pos"][:2]) <= hi)


@pytest.mark.parametrize("task", known_tasks())
def test_every_task_randomizes_steps_and_restores(task):
    """Targets are found in every room (table under the workspace), physics steps, exact restore."""
    cfg = load_preset("full")
    s = build_randomized_scene("demoforge_humanoid", task, cfg)
    s.reset(np.random.default_rng(0))
    before = _arrays(s.model)
    r = Randomizer.from_scene(s, cfg)
    assert targets_from_scene(s).table_geom in ("table_top", "bench_top")
    values = r.apply(s.model, s.data, np.random.default_rng(4))
    assert set(values) == {"physics", "visual", "camera", "distractors"}
    assert set(values["physics"]["mass"]) <= set(s.object_names())
    for _ in range(5):
        s.step()
    r.restore(s.model)
    assert _changed(before, s.model) == set()


def test_camera_jitter_stays_within_its_ranges(stack):
    from sim.transforms import quat_angle

    m = stack.model
    cfg = RandomizeConfig(camera=CameraJitterConfig(enabled=True, cameras=("head",)))
    r = Randomizer.from_scene(stack, cfg)
    head = m.camera("head_cam").id
    pos0, quat0 = m.cam_pos.copy(), m.cam_quat.copy()
    try:
        values = r.apply(m, stack.data, np.random.default_rng(9))["camera"]
        assert list(values) == ["head"]
        assert np.all(np.abs(m.cam_pos[head] - pos0[head]) <= 0.01)
        angle = float(quat_angle(m.cam_quat[head], quat0[head]))
        assert 0 < angle <= np.deg2rad(2.0) * np.sqrt(3) + 1e-9
        others = np.arange(m.ncam) != head  # wrist cameras not asked for: untouched
        assert np.array_equal(m.cam_pos[others], pos0[others])
        assert np.array_equal(m.cam_quat[others], quat0[others])
    finally:
        r.restore(m)


def test_robot_recoloured_only_when_asked(stack):
    m = stack.model
    robot = np.isin(m.geom_bodyid, subtree_bodies(m, stack.robot_root))
    cfg = RandomizeConfig(visual=VisualConfig(enabled=True, robot=True, robot_rgb=(0.1, 0.2)))
    r = Randomizer.from_scene(stack, cfg)
    rgba0 = m.geom_rgba.copy()
    try:
        r.apply(m, stack.data, np.random.default_rng(0))
        assert np.any(m.geom_rgba[robot] != rgba0[robot])
    finally:
        r.restore(m)
    assert np.array_equal(m.geom_rgba, rgba0)


def test_randomizer_refuses_another_model(stack, stack_distractors):
    r = Randomizer.from_scene(stack, load_preset("default"))
    with pytest.raises(ConfigError, match="made for another model"):
        r.apply(stack_distractors.model, stack_distractors.data, np.random.default_rng(0))
