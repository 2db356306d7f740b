"""Segmentation of source episodes: signals, heuristics, annotation override, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.augment.annotations import check_annotation, load_annotations
from sim.augment.segment import segment_episode
from sim.episode import Episode, EpisodeMeta
from sim.errors import FormatError, PlanError
from sim.tasks.base import Subtask

FPS = 20.0
A = np.array([0.5, -0.1, 0.8, 1, 0, 0, 0.0])  # object a (grasped)
B = np.array([0.5, 0.1, 0.8, 1, 0, 0, 0.0])  # object b (place target)
SPEC = [Subtask("grasp", "a", "grasped", "right"), Subtask("place", "b", None, "right")]


def pick_place(close_at: int = 30, open_at: int = 70, T: int = 90, signals: bool = True):
    """A synthetic pick-and-place: descend onto a, close at ``close_at``, lift, carry, open."""
    t = np.arange(T)
    pos = np.empty((T, 3))
    for i in t:
        if i <= close_at:  # approach from 10 cm above, arriving at the grasp at close_at - 5
            s = min(1.0, i / (close_at - 5))
            pos[i] = A[:3] + [0, 0, 0.1 * (1 - s)]
        elif i <= close_at + 15:  # hold 5 steps, then lift 8 cm over 10 steps
            s = np.clip((i - close_at - 5) / 10, 0, 1)
            pos[i] = A[:3] + [0, 0, 0.08 * (3 * s**2 - 2 * s**3)]
        elif i <= open_at:  # carry over b and descend
            s = np.clip((i - close_at - 15) / (open_at - close_at - 20), 0, 1)
            pos[i] = A[:3] + s * (B[:3] + [0, 0, 0.05] - A[:3]) + [0, 0, 0.08 * (1 - s)]
        else:
            pos[i] = pos[i - 1] + [0, 0, 0.004]
    ee = np.concatenate([pos, np.tile([1.0, 0, 0, 0], (T, 1))], axis=1)
    cmd = np.where((t >= close_at) & (t < open_at), 0.0, 1.0)
    meas = np.clip(1.0 - np.clip(t - close_at, 0, 4) / 4 * 0.6, 0.4, 1.0)
    meas[t >= open_at] = 1.0
    subtasks = {}
    if signals:
        subtasks = {"grasped": (t >= close_at + 3) & (t < open_at)}
    return Episode(
        meta=EpisodeMeta(task="t", robot="r", fps=FPS, source="synthetic#0"),
        time=t / FPS,
        action_names=["right_gripper"],
        action=cmd[:, None],
        ee={"right": ee},
        gripper={"right": meas},
        objects={"a": np.tile(A, (T, 1)), "b": np.tile(B, (T, 1))},
        subtasks=subtasks,
    )


def seg(ep, **kw):
    return segment_episode(ep, SPEC, {"right": "right"}, {"a": "a", "b": "b"}, **kw)


def test_segments_from_signals_end_after_the_lift():
    s = seg(pick_place())
    assert [x.label for x in s] == ["grasp", "place"]
    assert s[0].how == "signal" and s[1].how == "end"
    assert 33 + 5 < s[0].stop <= 46  # after the grasp signal (33) and the 2 cm of lift
    assert s[1].start == s[0].stop and s[1].stop == 90


def test_segments_from_heuristics_without_signals():
    with_sig, without = seg(pick_place()), seg(pick_place(signals=False))
    assert without[0].how == "heuristic"
    assert abs(without[0].stop - with_sig[0].stop) <= 3
    shifted = seg(pick_place(close_at=40, signals=False))
    assert shifted[0].stop > without[0].stop + 5  # follows the gripper event


def test_annotation_overrides_signals_and_heuristics():
    s = seg(pick_place(), annotation={"grasp": 50})
    assert s[0].stop == 50 and s[0].how == "annotation" and s[1].start == 50
    s = seg(pick_place(signals=False), annotation={"right:grasp": 44})
    assert s[0].stop == 44


def test_no_grasp_event_is_a_clear_error():
    ep = pick_place(signals=False)
    ep.action[:] = 1.0  # the gripper never closes
    with pytest.raises(PlanError, match="no gripper close event") as e:
        seg(ep)
    assert e.value.cause == "no_grasp"
    ep = pick_place()
    ep.subtasks["grasped"][:] = False  # a failed source: the signal never turns true
    with pytest.raises(PlanError, match="'grasped' of subtask 'grasp' never turns true"):
        seg(ep)


def test_missing_source_object_is_named():
    ep = pick_place()
    del ep.objects["b"]
    with pytest.raises(PlanError, match="reference object 'b' of subtask 'place'") as e:
        seg(ep)
    assert e.value.cause == "object_mismatch"


def test_annotation_file_round_trip_and_range_errors(tmp_path):
    f = tmp_path / "ann.json"
    f.write_text(json.dumps({"episodes": {"0": {"grasp": 44}}}))
    marks = load_annotations(f)
    assert marks == {0: {"grasp": 44}}
    check_annotation(marks[0], 90, f"annotation file {f} episode 0", {"grasp", "place"})
    with pytest.raises(PlanError, match=r"ann.json episode 0: key 'grasp' frame 120 is out of"):
        check_annotation({"grasp": 120}, 90, f"annotation file {f} episode 0", {"grasp"})
    with pytest.raises(PlanError, match="names no subtask"):
        check_annotation({"pour": 3}, 90, "x", {"grasp"})
    f.write_text(json.dumps({"episodes": {"0": {"grasp": "late"}}}))
    with pytest.raises(FormatError, match=r"episodes\['0'\]\['grasp'\] must be an integer"):
        load_annotations(f)
    f.write_text("{not json")
    with pytest.raises(FormatError, match="ann.json: not valid"):
        load_annotations(f)


def test_clear_transit_goes_over_obstacles_and_only_when_needed():
    from sim.augment.stitch import clear_transit, transit

    start = np.array([0.0, 0.0, 0.10, 1, 0, 0, 0])
    goal = np.array([0.4, 0.0, 0.10, 0, 0, 0, 1])
    block = (np.array([0.2, 0.0, 0.08]), 0.04)
    path, hit = clear_transit(start, goal, 30, [block], clearance=0.03)
    assert hit == [0] and path.shape == (30, 7)
    np.testing.assert_allclose(path[-1], goal, atol=1e-12)
    dist = np.linalg.norm(path[:, :3] - block[0], axis=1)
    assert dist.min() >= 0.04 + 0.03 - 1e-9  # never inside sphere + clearance
    assert path[:, 2].max() == pytest.approx(0.08 + 0.04 + 0.03)
    far = (np.array([0.2, 0.5, 0.08]), 0.04)
    straight, none = clear_transit(start, goal, 30, [far], clearance=0.03)
    assert none == [] and np.array_equal(straight, transit(start, goal, 30))
