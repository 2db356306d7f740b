"""demoforge-generate through Hydra: compose, a real subprocess run, multirun, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import sim.cli.generate  # noqa: F401  (registers the typed schema)
from sim.cli.generate import to_generate_config
from sim.io.lerobot import read_lerobot
from sim.paths import conf_dir

CLI = [sys.executable, "-c", "from sim.cli import generate_main; generate_main()"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(CLI + args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_compose_defaults_and_overrides():
    with initialize_config_dir(version_base=None, config_dir=str(conf_dir())):
        cfg = compose("config", overrides=["episodes=3", "seed=7", "level=D1",
                                           "cameras.height=32"])
        g = to_generate_config(cfg)
        assert (g.task, g.robot["name"], g.episodes, g.seed, g.level) == (
            "stack_blocks", "demoforge_humanoid", 3, 7, "D1")
        assert g.cameras.height == 32
        assert g.output.endswith("stack_blocks_demoforge_humanoid_D1_seed7")
        with pytest.raises(ConfigCompositionException, match="epsiodes"):
            compose("config", overrides=["epsiodes=3"])  # typo: not in the schema
        with pytest.raises(ConfigCompositionException, match="episodes"):
            compose("config", overrides=["episodes=many"])  # wrong type
        assert OmegaConf.select(cfg, "robot.arms.left.ee_site") == "left_ee"


def test_cli_subprocess_two_episodes(tmp_path):
    out = tmp_path / "ds"
    r = _run(["episodes=2", f"output.dir={out}", "cameras.height=32", "cameras.width=32",
              f"hydra.run.dir={tmp_path / 'hydra'}"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote 2 successful episodes" in r.stdout and str(out) in r.stdout
    eps = read_lerobot(out)
    assert len(eps) == 2 and all(e.meta.success for e in eps)
    assert (tmp_path / "hydra" / ".hydra" / "config.yaml").exists()


def test_cli_multirun_two_seeds(tmp_path):
    r = _run(["-m", "seed=0,1", "episodes=1", "cameras.names=[]",
              f"output.dir={tmp_path}/ds_${{seed}}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
             tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    for seed in (0, 1):
        info = json.loads((tmp_path / f"ds_{seed}" / "meta" / "info.json").read_text())
        assert info["total_episodes"] == 1
    assert (tmp_path / "sweep" / "multirun.yaml").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["task=stack_blokcs"], "stack_blokcs"),
        (["robot=robbie"], "robbie"),
        (["cameras.height=0"], "cameras.height and cameras.width must be > 0"),
    ],
)
def test_cli_bad_input_one_clear_error(tmp_path, args, message):
    r = _run(args + [f"output.dir={tmp_path / 'x'}", f"hydra.run.dir={tmp_path / 'h'}"], tmp_path)
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


def test_cli_existing_output(tmp_path):
    (tmp_path / "x").mkdir()
    r = _run([f"output.dir={tmp_path / 'x'}", f"hydra.run.dir={tmp_path / 'h'}"], tmp_path)
    assert r.returncode == 2 and "already exists" in r.stderr and "output.overwrite" in r.stderr
