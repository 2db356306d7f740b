"""The ``demos`` plan source end to end: scripted sources -> augmented attempts in physics."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sim.control.ik import ArmIK
from sim.errors import ConfigError, PlanError
from sim.sources import make_source
from sim.sources.scripted import run_attempt
from sim.tasks import build_scene


@pytest.fixture(scope="module")
def stack():
    scene = build_scene("demoforge_humanoid", "stack_blocks", control_hz=20)
    ik = ArmIK.for_scene(scene)
    scripted = make_source("scripted", scene)
    sources = [run_attempt(scene, ik, scripted, 1000 + i, "D0") for i in range(3)]
    assert all(e.meta.success for e in sources)
    return scene, ik, sources


def schema_1_0(ep):
    """The episode as an older dataset has it: no commanded targets, segments or signals."""
    return dataclasses.replace(
        ep, target={}, gripper_cmd={}, segment={}, segment_ref={}, subtasks={}
    )


def test_demos_source_succeeds_in_physics_without_the_planner(stack, monkeypatch):
    scene, ik, sources = stack
    demos = make_source("demos", scene, episodes=sources)

    def no_planner(*a, **k):
        raise AssertionError("the demos source called the task's planner")

    monkeypatch.setattr(scene.task, "demo", no_planner)
    eps = [run_attempt(scene, ik, demos, 5000 + k, "D0") for k in range(2)]
    assert [e.meta.success for e in eps] == [True, True]
    prov = eps[0].meta.provenance
    assert prov["source"] == "demos" and prov["select"] == "nearest"
    segs = prov["segments"]
    assert [s["label"] for s in segs] == ["grasp", "place"]
    assert [s["ref"] for s in segs] == ["block_a", "block_b"]
    assert all(0 <= s["episode"] < 3 and np.asarray(s["transform"]).shape == (4, 4) for s in segs)
    assert segs[0]["stop"] == segs[1]["start"] or segs[0]["episode"] != segs[1]["episode"]
    json.dumps(prov)  # provenance is JSON-able
    seg = eps[0].segment["right"]
    assert "grasp" in set(seg) and "place" in set(seg) and "transit" in set(seg)
    # gripper closes at a realistic speed: no one-frame jumps in the command
    g = eps[0].gripper_cmd["right"]
    assert np.max(np.abs(np.diff(g))) <= scene.control_dt / 0.3 + 1e-9


def test_same_seed_same_targets_and_schema_1_0_sources(stack):
    scene, _, sources = stack
    demos = make_source("demos", scene, episodes=sources)
    plans = []
    for _ in range(2):
        scene.reset(np.random.default_rng(7), "D1")
        plans.append(demos.plan(scene, np.random.default_rng(7)))
    assert np.array_equal(plans[0].pose["right"], plans[1].pose["right"])
    old = make_source("demos", scene, episodes=[schema_1_0(e) for e in sources])
    scene.reset(np.random.default_rng(7), "D0")
    t = old.plan(scene, np.random.default_rng(7))
    assert {s["boundary"] for s in t.provenance["segments"]} == {"heuristic", "end"}


def test_bad_sources_give_one_clear_error(stack, tmp_path):
    scene, _, sources = stack
    no_b = [
        dataclasses.replace(e, objects={k: v for k, v in e.objects.items() if k != "block_b"})
        for e in sources
    ]
    for e in no_b:  # rename so no default pairing by order can stand in for block_b
        e.objects = {"cube_a": e.objects["block_a"]}
    with pytest.raises(PlanError, match="'block_b' is missing from the source") as err:
        make_source("demos", scene, episodes=no_b, object_map={"cube_a": "block_a"})
    assert err.value.cause == "object_mismatch"
    with pytest.raises(PlanError, match=r"source object\(s\) \['cubeX'\]"):
        make_source("demos", scene, episodes=sources, object_map={"cubeX": "block_a"})
    never = []
    for e in sources:
        e = schema_1_0(e)
        e.action = e.action.copy()
        e.action[:, e.action_names.index("right_gripper")] = 1.0  # never closes
        never.append(e)
    demos = make_source("demos", scene, episodes=never)
    scene.reset(np.random.default_rng(0), "D0")
    with pytest.raises(PlanError, match="no gripper close event") as err:
        demos.plan(scene, np.random.default_rng(0))
    assert err.value.cause == "no_grasp"
    f = tmp_path / "ann.json"
    f.write_text(json.dumps({"episodes": {"1": {"grasp": 10_000}}}))
    demos = make_source("demos", scene, episodes=sources, annotations=str(f))
    with pytest.raises(PlanError, match=r"ann.json episode 1: key 'grasp' frame 10000 is out"):
        demos.plan(scene, np.random.default_rng(0))
    f.write_text(json.dumps({"episodes": {"9": {"grasp": 40}}}))
    with pytest.raises(PlanError, match="episode 9 out of range"):
        make_source("demos", scene, episodes=sources, annotations=str(f))
    with pytest.raises(ConfigError, match="exactly one of 'path'"):
        make_source("demos", scene)
    with pytest.raises(ConfigError, match="source.select"):
        make_source("demos", scene, episodes=sources, select="best")


def test_annotation_file_sets_the_boundaries(stack, tmp_path):
    scene, _, sources = stack
    f = tmp_path / "ann.json"
    f.write_text(json.dumps({"episodes": {str(i): {"grasp": 60} for i in range(3)}}))
    demos = make_source("demos", scene, episodes=sources, annotations=str(f))
    scene.reset(np.random.default_rng(3), "D0")
    segs = demos.plan(scene, np.random.default_rng(3)).provenance["segments"]
    assert segs[0]["stop"] == 60 and segs[0]["boundary"] == "annotation"


def test_synchronized_arms_share_one_transform():
    scene = build_scene("demoforge_humanoid", "carry_tray", control_hz=20)
    ik = ArmIK.for_scene(scene)
    src = [run_attempt(scene, ik, make_source("scripted", scene), 1000, "D0")]
    demos = make_source("demos", scene, episodes=src)
    scene.reset(np.random.default_rng(1), "D1")
    t = demos.plan(scene, np.random.default_rng(1))
    segs = t.provenance["segments"]
    by = {(s["target_arm"], s["label"]): s for s in segs}
    for label in ("grasp", "carry"):
        left, right = by[("left", label)], by[("right", label)]
        assert left["transform"] == right["transform"]
        assert (left["step_start"], left["step_stop"]) == (right["step_start"], right["step_stop"])
    assert len(t.pose["left"]) == len(t.pose["right"])
    indep = make_source("demos", scene, episodes=src, coordination="independent")
    scene.reset(np.random.default_rng(1), "D1")
    assert indep.plan(scene, np.random.default_rng(1)).provenance["coordination"] == "independent"


@pytest.mark.slow
def test_stack_blocks_ten_sources_ten_new_scenes():
    scene = build_scene("demoforge_humanoid", "stack_blocks", control_hz=20)
    ik = ArmIK.for_scene(scene)
    scripted = make_source("scripted", scene)
    sources = [run_attempt(scene, ik, scripted, 1000 + i, "D0") for i in range(10)]
    demos = make_source("demos", scene, episodes=sources)
    ok = [run_attempt(scene, ik, demos, 5000 + k, "D0").meta.success for k in range(10)]
    assert sum(ok) >= 8, f"demos source succeeded on {sum(ok)}/10 new D0 scenes"


def test_sources_read_from_a_dataset_path(stack, tmp_path):
    from sim.io.lerobot import write_lerobot

    scene, ik, sources = stack
    root = write_lerobot(sources, tmp_path / "src")
    demos = make_source("demos", scene, path=str(root))
    assert len(demos.episodes) == 3 and demos.dataset == str(root)
    ep = run_attempt(scene, ik, demos, 5100, "D0")
    assert ep.meta.success
    assert ep.meta.provenance["dataset"] == str(root)


def test_same_reference_subtasks_continue_one_segment():
    scene = build_scene("demoforge_humanoid", "open_drawer", control_hz=20)
    ik = ArmIK.for_scene(scene)
    scripted = make_source("scripted", scene)
    src = [run_attempt(scene, ik, scripted, 1000 + i, "D0") for i in range(2)]
    demos = make_source("demos", scene, episodes=src, select="random")
    for seed in range(4):  # whatever episode the grasp comes from, the pull continues it
        scene.reset(np.random.default_rng(seed), "D0")
        grasp, pull = demos.plan(scene, np.random.default_rng(seed)).provenance["segments"]
        assert (grasp["label"], pull["label"]) == ("grasp", "pull")
        assert pull["episode"] == grasp["episode"] and pull["transform"] == grasp["transform"]
        assert pull["transit_steps"] == 0 and pull["start"] == grasp["stop"]


def test_time_warp_noise_and_retime_caps_act(stack):
    scene, _, sources = stack

    def plan(**kw):
        demos = make_source("demos", scene, episodes=sources, select="random", **kw)
        scene.reset(np.random.default_rng(11), "D0")
        return demos.plan(scene, np.random.default_rng(11))

    base = plan()
    slow = plan(time_warp=(1.3, 1.3))
    assert len(slow) > 1.2 * len(base)
    noisy, clean = plan(noise=0.003, retime=False), plan(retime=False)
    d = noisy.pose["right"][:, :3] - clean.pose["right"][:, :3]
    assert 0.001 < np.std(d) < 0.006
    capped = plan(max_speed=0.15)
    v = np.linalg.norm(np.diff(capped.pose["right"][:, :3], axis=0), axis=1) / scene.control_dt
    assert (
        v.max()
        <= 0.15 + 1e-6
        < np.max(
            np.linalg.norm(np.diff(base.pose["right"][:, :3], axis=0), axis=1) / scene.control_dt
        )
    )
    assert len(capped) > len(base)
