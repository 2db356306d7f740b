"""Every registered task: builds, resets at each level, steps, is not solved at reset."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import ConfigError, UnknownNameError
from sim.paths import conf_dir
from sim.tasks import LEVELS, Task, build_scene, known_tasks, make_task


@pytest.mark.parametrize("task", known_tasks())
def test_build_reset_step_every_level(task, scene_ik):
    scene, _ = scene_ik(task)
    assert isinstance(scene.task, Task)
    for level in LEVELS:
        scene.reset(np.random.default_rng(0), level)
        assert not scene.task.success(scene), f"{task} solved at reset ({level})"
        sig = scene.task.subtasks(scene)
        assert sig and all(isinstance(v, (bool, np.bool_)) for v in sig.values())
        obs0 = scene.observe()
        scene.set_action(scene.current_action())
        for _ in range(5):
            scene.step()
        assert np.all(np.isfinite(scene.joint_qpos()))
        assert set(obs0["objects"]) == set(scene.task.objects)


@pytest.mark.parametrize("task", known_tasks())
def test_reset_is_seeded(task, scene_ik):
    scene, _ = scene_ik(task)
    poses = []
    for _ in range(2):
        scene.reset(np.random.default_rng(123), "D1")
        poses.append({o: scene.body_pose(o) for o in scene.task.objects})
    for o in scene.task.objects:
        np.testing.assert_array_equal(poses[0][o], poses[1][o])


@pytest.mark.parametrize("task", known_tasks())
def test_levels_widen_the_reset_distribution(task, scene_ik):
    """D2 spreads the manipulated object (objects[0]) more than D0, for the same seeds."""
    scene, _ = scene_ik(task)
    spread = {}
    for level in ("D0", "D2"):
        xy = []
        for seed in range(12):
            scene.reset(np.random.default_rng(seed), level)
            xy.append(scene.body_pose(scene.task.objects[0])[:2])
        spread[level] = np.ptp(np.array(xy), axis=0).max()
    assert spread["D2"] > 1.5 * spread["D0"] > 0, spread


@pytest.mark.parametrize("task", known_tasks())
def test_every_task_has_a_hydra_yaml(task):
    assert (conf_dir() / "task" / f"{task}.yaml").exists()


def test_unknown_task_and_level_named():
    with pytest.raises(UnknownNameError, match="unknown task 'stack_blokcs'.*stack_blocks"):
        make_task("stack_blokcs")
    scene = build_scene(task="stack_blocks")
    with pytest.raises(UnknownNameError, match="unknown level 'D9'.*D0, D1, D2"):
        scene.reset(np.random.default_rng(0), "D9")


def test_unknown_task_config_key_named():
    with pytest.raises(ConfigError, match="stack_blocks.*bad config.*colour"):
        make_task("stack_blocks", colour="red")


@pytest.mark.slow
@pytest.mark.parametrize("task", known_tasks())
def test_scripted_rollout_every_task(task, scene_ik):
    from sim.rollout import run_scripted

    scene, ik = scene_ik(task)
    ok = [run_scripted(scene, ik, seed, "D0").meta.success for seed in range(3)]
    assert sum(ok) >= 2, f"{task}: scripted demo succeeded on {sum(ok)}/3 seeds"
