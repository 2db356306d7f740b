"""LeRobot adapter against a duck-typed fake SO-101-like robot (degrees, gripper 0..100)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sim.bridge.lerobot_adapter import LeRobotDriver, LeRobotMapping, make_lerobot_robot
from sim.bridge.protocol import Driver
from sim.bridge.record import record_episodes
from sim.bridge.safety import SafetyConfig, SafetyLayer
from sim.errors import BridgeError, ConfigError

MOTORS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


class FakeSO101:
    """Shaped like lerobot's SO101Follower: flat features, degrees, max_relative_target."""

    name = "so101_follower"

    def __init__(self, max_relative_target: float = 10.0) -> None:
        self.pos = {m: 0.0 for m in MOTORS}
        self.pos["gripper"] = 50.0
        self.max_rel = max_relative_target
        self.is_connected = False
        self.sent: list[dict[str, float]] = []

    @property
    def observation_features(self) -> dict:
        return {**{f"{m}.pos": float for m in MOTORS}, "front": (48, 64, 3)}

    @property
    def action_features(self) -> dict:
        return {f"{m}.pos": float for m in MOTORS}

    def connect(self, calibrate: bool = True) -> None:
        self.is_connected = True

    def disconnect(self) -> None:
        self.is_connected = False

    def get_observation(self) -> dict:
        if not self.is_connected:
            raise RuntimeError("not connected")
        return {
            **{f"{m}.pos": v for m, v in self.pos.items()},
            "front": np.full((48, 64, 3), 7, np.uint8),
        }

    def send_action(self, action: dict) -> dict:
        out = {}
        for key, goal in action.items():
            m = key[:-4]
            out[key] = float(np.clip(goal, self.pos[m] - self.max_rel, self.pos[m] + self.max_rel))
            self.pos[m] = out[key]
        self.sent.append(out)
        return out


def test_inferred_mapping_and_units():
    robot = FakeSO101()
    drv = LeRobotDriver(robot, fps=30)
    assert isinstance(drv, Driver)
    caps = drv.capabilities
    assert caps.robot == "so101_follower" and caps.driver == "lerobot"
    assert caps.action_names == MOTORS[:-1] + ["main_gripper"]
    assert drv.observation_features == {
        "qpos": (5,),
        "gripper.main": (),
        "images.front": (48, 64, 3),
    }
    drv.connect()
    obs = drv.get_observation()
    assert obs["gripper.main"] == pytest.approx(0.5) and obs["images.front"].dtype == np.uint8
    sent = drv.send_action(np.array([np.deg2rad(5.0), 0, 0, 0, np.deg2rad(30.0), 1.0]))
    # the robot's own max_relative_target clipped wrist_roll to 10 deg and the gripper to 60
    assert robot.sent[-1]["wrist_roll.pos"] == pytest.approx(10.0)
    np.testing.assert_allclose(sent, [np.deg2rad(5.0), 0, 0, 0, np.deg2rad(10.0), 0.6])
    drv.disconnect()
    assert not robot.is_connected


def test_lerobot_robot_behind_the_safety_layer_and_recorder():
    robot = FakeSO101(max_relative_target=100.0)
    drv = SafetyLayer(LeRobotDriver(robot, fps=30), SafetyConfig(max_step=0.05, max_velocity=None))
    drv.connect()
    sent = drv.send_action(np.array([1.0, 0, 0, 0, 0, 0.5]))
    assert sent[0] == pytest.approx(0.05)  # step-limited before it reached the motors
    assert robot.pos["shoulder_pan.pos"[:-4]] == pytest.approx(np.rad2deg(0.05))
    res = record_episodes(drv, 1, 5, fps=30, task="fake")
    ep = res.episodes[0]
    assert ep.qvel is None and ep.image("front").shape == (5, 48, 64, 3)
    assert ep.gripper["main"].shape == (5,) and ep.meta.robot == "so101_follower"


def test_mapping_errors_name_the_keys():
    with pytest.raises(ConfigError, match=r"mapping keys \['elbow.pos'"):
        LeRobotDriver(FakeSO101(), LeRobotMapping(joints={"elbow": "elbow.pos"}))
    drv = LeRobotDriver(FakeSO101())
    with pytest.raises(BridgeError, match="action lacks 'gripper.pos'"):
        drv.from_lerobot({f"{m}.pos": 0.0 for m in MOTORS[:-1]})


def test_make_lerobot_robot_without_lerobot(monkeypatch):
    monkeypatch.setitem(sys.modules, "lerobot", None)
    monkeypatch.setitem(sys.modules, "lerobot.robots", None)
    with pytest.raises(
        BridgeError,
        match=r"LeRobot robot 'so101_follower' needs the 'lerobot' "
        r"package \(pip install lerobot; Python >= 3.12\)",
    ):
        make_lerobot_robot("so101_follower", port="/dev/null")
