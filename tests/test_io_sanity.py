"""Sanity checks on readers' output: each check names file, episode, row and field; limits are
configurable; nothing is repaired."""

from __future__ import annotations

import numpy as np
import pytest

from sim.episode import Episode, EpisodeMeta
from sim.io import SanityError, SanityLimits, check_episode

T = 20


def episode() -> Episode:
    t = np.arange(T) / 20.0
    pose = np.c_[0.3 + 0.01 * np.arange(T), np.zeros((T, 2)), np.ones(T), np.zeros((T, 3))]
    return Episode(
        meta=EpisodeMeta(
            task="t",
            robot="r",
            fps=20.0,
            source="/data/demo.hdf5#demo_3",
            provenance={"joint_limits": {"j0": [-1.0, 1.0]}},
        ),
        time=t,
        joint_names=["j0", "j1"],
        qpos=np.c_[0.5 * np.sin(t), np.cos(t)],
        qvel=np.zeros((T, 2)),
        ee={"right": pose.copy()},
        gripper={"right": np.linspace(0, 1, T)},
        objects={"cube": pose.copy()},
        target={"right": pose.copy()},
        gripper_cmd={"right": np.ones(T)},
    )


def damage(fn):
    ep = episode()
    fn(ep)
    return ep


CASES = [
    (lambda e: e.time.__setitem__(7, 0.1), "monotonic", 7, "'time'"),
    (lambda e: e.qpos.__setitem__((4, 1), np.inf), "finite", 4, "'qpos'"),
    (lambda e: e.ee["right"].__setitem__((9, 2), 3e7), "magnitude", 9, "ee['right']"),
    (
        lambda e: e.objects["cube"].__setitem__((5, slice(3, 7)), [2, 0, 0, 0]),
        "unit_quat",
        5,
        "objects['cube']",
    ),
    (lambda e: e.objects["cube"].__setitem__((11, 0), 12.0), "bounds", 11, "objects['cube']"),
    (lambda e: e.target["right"].__setitem__((12, 1), 2.0), "speed", 12, "target['right']"),
    (lambda e: e.qpos.__setitem__((6, 0), 1.2), "joint_limits", 6, "qpos['j0']"),
    (lambda e: e.qpos.__setitem__((8, 1), 4.0), "joint_speed", 8, "qpos['j1']"),
    (lambda e: e.qvel.__setitem__((3, 0), 80.0), "joint_speed", 3, "qvel['j0']"),
    (lambda e: e.gripper_cmd["right"].__setitem__(2, 1.5), "range", 2, "gripper_cmd['right']"),
    (
        lambda e: e.ee["right"].__setitem__((10, slice(3, 7)), [0, 1, 0, 0]),
        "angular_speed",
        10,
        "ee['right']",
    ),
]


@pytest.mark.parametrize("fn, check, row, field", CASES)
def test_each_check_names_file_episode_row_field(fn, check, row, field):
    ep = damage(fn)
    with pytest.raises(SanityError) as e:
        check_episode(ep)
    err = e.value
    assert (err.check, err.row, err.field) == (check, row, field)
    assert str(e.value).startswith(f"/data/demo.hdf5: episode demo_3: field {field} at row {row}:")


def test_clean_episode_passes_unchanged_and_limits_are_configurable():
    ep = episode()
    before = {k: v.copy() for k, v in ep.ee.items()}
    assert check_episode(ep) is ep
    np.testing.assert_array_equal(ep.ee["right"], before["right"])
    far = damage(lambda e: e.objects["cube"].__setitem__((11, 0), 12.0))
    check_episode(far, SanityLimits(bounds=((-20, -20, -20), (20, 20, 20)), max_lin_speed=1e3))
    over = damage(lambda e: e.qpos.__setitem__((6, 0), 1.2))
    check_episode(over, joint_limits={})  # no model known: joint limits not checked
    check_episode(over, SanityLimits(joint_margin=0.5))


def test_read_options_are_checked_before_reading(tmp_path):
    from sim.errors import ConfigError
    from sim.io import read_episodes
    from sim.io.teleop_log import write_teleop_log

    ep = episode()
    log = write_teleop_log(Episode(meta=ep.meta, time=ep.time, ee=ep.ee), tmp_path / "t.csv")
    with pytest.raises(
        ConfigError,
        match=r"read option\(s\) \['epsiodes'\] not understood by "
        r"the teleop reader",
    ):
        read_episodes(log, epsiodes=[0])
    with pytest.raises(ConfigError, match="on_bad_episode='ignore'"):
        read_episodes(log, on_bad_episode="ignore")
    assert len(read_episodes(log, fps=20.0)) == 1
