"""Real Unitree G1 teleoperation (joints + images only) made augmentable: EE by G1 forward
kinematics, the hand's grasp from its finger joints, the bottle's frame inferred at gripper
closure (recorded in provenance), segmented by the demos source without subtask signals, and
planned onto pick_bottle with robot=unitree_g1 and onto our humanoid (tool frames mapped)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sim.errors import SchemaError
from sim.transforms import pose_inv, pose_mul, quat_to_mat

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "g1_pick_bottle"
G1_XML = SHARED / "robots" / "unitree_g1" / "g1_29dof.xml"
pytestmark = [
    pytest.mark.skipif(
        not (DATA / "meta" / "info.json").is_file(),
        reason=f"G1 teleoperation data not found at {DATA}",
    ),
    pytest.mark.skipif(not G1_XML.is_file(), reason=f"Unitree G1 MJCF not found at {G1_XML}"),
]
N = 5


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def g1(request):
    import sim.tasks.pick_bottle  # noqa: F401  (registered even if discovery changes)
    from sim.tasks import build_scene

    mp = pytest.MonkeyPatch()
    mp.delenv("DEMOFORGE_G1_MJCF", raising=False)
    request.addfinalizer(mp.undo)
    return build_scene("unitree_g1", "pick_bottle")


@pytest.fixture(scope="module")
def sources(g1):
    return _bench("g1_real").ingest(list(range(N)), g1)


def test_ingest_fk_grasp_and_inferred_objects(sources):
    from sim.tasks.pick_bottle import COASTER_HALF_T, HALF_H

    assert len(sources) == N
    for ep in sources:
        ep.validate()
        prov = ep.meta.provenance
        assert ep.meta.fps == 20.0 and prov["ingest"]["from_fps"] == 30.0
        assert prov["ingest"]["joint_map"]["kRightElbow"] == "right_elbow_joint"
        inf = prov["inferred_objects"]["bottle"]
        assert inf["method"] == "ee_at_gripper_closure" and inf["arm"] == "right"
        c, r = inf["close_step"], inf["release_step"]
        assert 0 < c < r < len(ep)
        cmd = ep.gripper_cmd["right"]
        assert np.all(cmd[c:r] == 0) and cmd[c - 1] == 1 and cmd[r] == 1
        assert np.all(ep.gripper_cmd["left"] == 1)  # the idle left hand never grasps
        bottle = ep.objects["bottle"]
        np.testing.assert_allclose(bottle[:c], np.broadcast_to(bottle[0], bottle[:c].shape))
        rel = pose_mul(pose_inv(ep.ee["right"][c:r]), bottle[c:r])  # rigid in the hand
        np.testing.assert_allclose(rel, np.broadcast_to(rel[0], rel.shape), atol=1e-6)
        assert np.linalg.norm(bottle[0, :3] - ep.ee["right"][c, :3]) < 0.02  # at the palm
        coaster = ep.objects["coaster"][0]
        np.testing.assert_allclose(coaster[:3], bottle[r - 1, :3] - [0, 0, HALF_H + COASTER_HALF_T])
        assert prov["inferred_objects"]["coaster"]["method"] == "held_object_at_release"
        assert prov["tool_frame"]["right"]["closing"] == [1.0, 0.0, 0.0]


def test_hand_that_never_closes_has_no_grasp(g1):
    from sim.augment.infer import HeldObject, ingest_joint_episode
    from sim.io import read_episodes

    ep = read_episodes(DATA, episodes=[0])[0]
    ep.qpos = np.array(ep.qpos)
    ep.qpos[:, 20:26] = 0.9  # right hand held open the whole episode
    hands = _bench("g1_real").HANDS
    with pytest.raises(SchemaError, match="no grasp event"):
        ingest_joint_episode(ep, g1, hands, [HeldObject("bottle", "right")])


def test_demos_source_segments_and_plans_on_the_g1(g1, sources):
    from sim.sources import make_source

    params, how = _bench("cross_robot").source_params(
        g1, sources, sources[0].meta.provenance["tool_frame"], trim=("bottle", 0.15)
    )
    src = make_source("demos", g1, **params)
    spec = src._spec(g1)
    assert src.usable(spec) == list(range(N))  # all five segment without subtask signals
    for i in range(N):
        segs = src.segments(i, spec)
        assert [s.label for s in segs] == ["grasp", "place"]
        assert segs[0].how == "heuristic"
    g1.reset(np.random.default_rng(0), "D0")
    targets = src.plan(g1, np.random.default_rng(1))
    assert set(targets.pose) == {"right"} and len(targets) > 100
    used = {d["source_id"] for d in targets.provenance["segments"]}
    assert used <= {ep.meta.source for ep in sources}
    # the grasp happens at the new bottle: the closing step's target is at the bottle's side
    k = int(np.argmax(targets.gripper["right"] < 0.5))
    assert np.linalg.norm(targets.pose["right"][k, :3] - g1.body_pose("bottle")[:3]) < 0.03


def test_g1_palm_grasp_maps_to_jaws_across_the_bottle_on_the_humanoid(g1):
    """Through the tool frames (G1: palm normal -z, fingers closing along x), the G1's side
    grasp becomes, on the humanoid, a horizontal approach with jaws closing horizontally."""
    from sim.sources import make_source
    from sim.tasks import build_scene

    srcs = _bench("g1_real").ingest([1, 4], g1, heading=np.pi / 2)
    hum = build_scene("demoforge_humanoid", "pick_bottle")
    params, _ = _bench("cross_robot").source_params(
        hum, srcs, srcs[0].meta.provenance["tool_frame"], trim=("bottle", 0.15)
    )
    hum.reset(np.random.default_rng(0), "D0")
    targets = make_source("demos", hum, **params).plan(hum, np.random.default_rng(0))
    k = int(np.argmax(targets.gripper["right"] < 0.5))
    R = quat_to_mat(targets.pose["right"][k, 3:])  # humanoid site = canonical frame
    approach, closing = -R[:, 2], R[:, 1]
    assert abs(closing[2]) < 0.5  # jaws close across the bottle (the real hand is tilted ~22 deg)
    assert abs(approach[2]) < 0.5 and approach[1] > 0.7  # from the right, at heading ~90 deg
    # copied as-is, the G1 site's y axis (the humanoid's closing axis) would be near vertical:
    # jaws pinching the upright bottle top to bottom
    c = srcs[0].meta.provenance["inferred_objects"]["bottle"]["close_step"]
    assert abs(quat_to_mat(srcs[0].ee["right"][c, 3:])[2, 1]) > 0.8


@pytest.mark.slow
def test_g1_augmented_episodes_succeed_in_physics(g1, sources):
    from sim.control.ik import ArmIK
    from sim.rollout import track
    from sim.sources import attempt_streams, make_source

    params, _ = _bench("cross_robot").source_params(
        g1, sources, sources[0].meta.provenance["tool_frame"], trim=("bottle", 0.15)
    )
    src = make_source("demos", g1, **params)
    ik = ArmIK.for_scene(g1)
    ok = 0
    for attempt in range(3):
        st = attempt_streams(0, attempt)
        g1.reset(st.reset, "D0")
        track(g1, ik, src.plan(g1, st.source))
        ok += bool(g1.task.success(g1))
    assert ok >= 2
