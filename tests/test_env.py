"""Gymnasium envs: one per registered task, passing gymnasium's env checker."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.env import env_id, register_all
from sim.tasks import known_tasks


@pytest.mark.parametrize("task", known_tasks())
def test_env_checker(task):
    env = gym.make(env_id(task))
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_ids_and_images():
    assert env_id("stack_blocks") == "demoforge/StackBlocks-v0"
    assert set(register_all()) == {env_id(t) for t in known_tasks()}
    env = gym.make(
        "demoforge/StackBlocks-v0",
        cameras=("head", "right_wrist"),
        image_size=(32, 40),
        render_mode="rgb_array",
    )
    obs, info = env.reset(seed=3)
    assert obs["images"]["head"].shape == (32, 40, 3)
    assert info["action_names"][-1] == "right_gripper"
    assert env.render().shape == (240, 320, 3)
    # holding the current targets keeps the robot still and the task unsolved
    hold = env.unwrapped.scene.current_action()
    obs2, reward, terminated, truncated, info = env.step(hold.astype(np.float32))
    assert reward == 0.0 and not terminated and not info["success"]
    np.testing.assert_allclose(obs2["qpos"], obs["qpos"], atol=2e-2)
    env.close()


def test_same_seed_same_reset():
    a = gym.make("demoforge/StackBlocks-v0")
    b = gym.make("demoforge/StackBlocks-v0")
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    for k in oa["objects"]:
        np.testing.assert_array_equal(oa["objects"][k], ob["objects"][k])
