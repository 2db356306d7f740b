"""Twin-as-hardware: a generated stack_blocks episode replayed through the bridge succeeds."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.bridge.backends import load_backend
from sim.bridge.client import BridgeClient
from sim.bridge.config import ServeConfig
from sim.bridge.process import ServerProcess
from sim.bridge.record import replay_episode
from sim.bridge.safety import SafetyLayer
from sim.bridge.twin import TwinConfig, TwinDriver
from sim.cli.bridge import hardware_from_dict
from sim.paths import conf_dir


@pytest.fixture(scope="module")
def episode():
    from sim.control.ik import ArmIK
    from sim.rollout import run_scripted
    from sim.tasks import build_scene

    scene = build_scene("demoforge_humanoid", "stack_blocks")
    ep = run_scripted(scene, ArmIK.for_scene(scene), seed=1, level="D0")
    assert ep.meta.success, "the scripted demonstrator failed; nothing to replay"
    return ep


def _hw():
    d = yaml.safe_load((Path(conf_dir()) / "hardware" / "twin.yaml").read_text())
    d["endpoint"] = "tcp://127.0.0.1:*"
    return hardware_from_dict(d)


@pytest.mark.timing
def test_generated_stack_blocks_episode_succeeds_on_the_twin_as_hardware(episode, tmp_path):
    hw = _hw()
    initial = {k: v[0] for k, v in episode.objects.items()}
    # dry run on a lockstep twin behind the same safety limits
    dry_twin = TwinDriver(load_backend(hw.robot, 1 / hw.fps), TwinConfig(realtime=False))
    dry = SafetyLayer(dry_twin, hw.safety_cfg, fk=dry_twin.fk)
    dry.connect()
    dry.reset_driver(seed=episode.meta.seed, level="D0", objects=initial, qpos=episode.qpos[0])
    with ServerProcess(ServeConfig(hardware=hw), dir=tmp_path) as robot:
        c = BridgeClient(robot.endpoint, timeout_s=0.5)
        c.connect()
        try:
            obs = c.reset(seed=episode.meta.seed, level="D0", objects=initial, qpos=episode.qpos[0])
            # the real-time twin keeps stepping after the reset: the block settles (< 0.1 mm)
            np.testing.assert_allclose(obs["objects.block_a"], initial["block_a"], atol=1e-3)
            res = replay_episode(c, episode, dry_run=dry, max_dry_run_clamp=0.6)
            time.sleep(0.3)  # let the released block settle
            final = c.get_observation()
            status = c.heartbeat()
        finally:
            c.disconnect()
    assert res.dry_run is not None and res.dry_run.success
    assert res.jitter["rate_hz"] == pytest.approx(episode.meta.fps, rel=0.05)
    assert max(res.tracking_rms.values()) < 0.02, res.tracking_rms
    assert final["success"] == 1.0, "block_a is not resting on block_b after the replay"
    assert status["estop"] is None and status["stats"]["rejected_nonfinite"] == 0
