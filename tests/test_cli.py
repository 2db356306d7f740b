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
    return subprocess.run(CLI + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_compose_defaults_and_overrides():
    with initialize_config_dir(version_base=None, config_dir=str(conf_dir())):
        cfg = compose("config", overrides=["episodes=3", "seed=7", "level=D1", "cameras.height=32"])
        g = to_generate_config(cfg)
        assert (g.task.name, g.robot["name"], g.episodes, g.seed, g.level) == (
            "stack_blocks",
            "demoforge_humanoid",
            3,
            7,
            "D1",
        )
        assert g.cameras.height == 32
        assert g.output.dir.endswith("stack_blocks_demoforge_humanoid_D1_seed7")
        with pytest.raises(ConfigCompositionException, match="epsiodes"):
            compose("config", overrides=["epsiodes=3"])  # typo: not in the schema
        with pytest.raises(ConfigCompositionException, match="episodes"):
            compose("config", overrides=["episodes=many"])  # wrong type
        assert OmegaConf.select(cfg, "robot.arms.left.ee_site") == "left_ee"


def test_cli_subprocess_two_episodes(tmp_path):
    out = tmp_path / "ds"
    r = _run(
        [
            "episodes=2",
            f"output.dir={out}",
            "cameras.height=32",
            "cameras.width=32",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote 2 successful episodes" in r.stdout and str(out) in r.stdout
    eps = read_lerobot(out)
    assert len(eps) == 2 and all(e.meta.success for e in eps)
    assert (tmp_path / "hydra" / ".hydra" / "config.yaml").exists()


def test_cli_multirun_two_seeds(tmp_path):
    r = _run(
        [
            "-m",
            "seed=0,1",
            "episodes=1",
            "cameras.names=[]",
            f"output.dir={tmp_path}/ds_${{seed}}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        tmp_path,
    )
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


# (arguments, text the one error line must contain: the key and what was expected)
BAD_CLI = [
    (["epsiodes=3"], "epsiodes"),
    (["episodes=many"], "episodes"),
    (["episodes=0"], "episodes must be >= 1"),
    (["episodes=-3"], "episodes must be >= 1"),
    (["seed=-1"], "seed must be >= 0"),
    (["seed=abc"], "seed"),
    (["level=D7"], "unknown level 'D7'"),
    (["task=stack_blokcs"], "stack_blokcs"),
    (["task.name=blocks"], "unknown task 'blocks'"),
    (["+task.params.foo=1"], "task 'stack_blocks': bad config"),
    (["robot=robbie"], "robbie"),
    (["workers=0"], "workers must be >= 1"),
    (["workers=1000"], "workers must be >= 1 and <= 256"),
    (["workers=two"], "workers"),
    (["control_hz=0"], "control_hz must be a number > 0"),
    (["control_hz=-20"], "control_hz must be a number > 0"),
    (["control_hz=7"], "control_hz=7"),
    (["control_hz=fast"], "control_hz"),
    (["max_attempts=0"], "max_attempts must be >= 1"),
    (["max_attempts=-1"], "max_attempts must be >= 1"),
    (["max_attempts=lots"], "max_attempts"),
    (["cameras.height=0"], "cameras.height and cameras.width must be > 0"),
    (["cameras.width=-5"], "cameras.height and cameras.width must be > 0"),
    (["cameras.heigth=3"], "cameras.heigth"),
    (["cameras.quality=ultra"], "unknown cameras.quality 'ultra'"),
    (["cameras.names=[nose]"], "unknown cameras.names entry 'nose'"),
    (["cameras.names=[head,head]"], "cameras.names has duplicates"),
    (["output.format=zarr"], "unknown output format 'zarr'"),
    (["output.dri=x"], "output.dri"),
    (["output.overwrite=maybe"], "output.overwrite"),
    (["executor=slurm"], "unknown executor 'slurm'"),
    (["augment=nope"], "augment/nope"),
    (["augment.noise=-1"], "augment.noise must be >= 0"),
    (["augment.noise=abc"], "augment.noise"),
    (["augment.randomize=nope"], "unknown randomize preset 'nope'"),
    (["+augment.randomize.physics.frction=[0.5,1.5]"], "randomize.physics.frction"),
    (["stability.max_joint_speed=0"], "stability.max_joint_speed must be > 0"),
    (["source=no/such/dataset"], "source 'no/such/dataset' is neither a plan source"),
]


def test_bad_cli_corpus_one_clear_error_and_nothing_on_disk(tmp_path):
    """>= 35 bad command lines: each exits non-zero with one error naming the key, no
    traceback, and leaves neither the dataset nor its .partial staging folder behind."""
    runs = [
        args
        + [
            f"output.dir={tmp_path / f'ds{i}'}",
            f"hydra.run.dir={tmp_path / 'h'}",
            "hydra.output_subdir=null",
        ]
        for i, (args, _) in enumerate(BAD_CLI)
    ]
    driver = Path(__file__).with_name("cli_corpus.py")
    r = subprocess.run(
        [sys.executable, str(driver), json.dumps(runs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(BAD_CLI) >= 35, r.stderr[-3000:]
    bad = []
    for i, ((args, want), res) in enumerate(zip(BAD_CLI, results, strict=True)):
        err = res["stderr"]
        ok = (
            res["code"] not in (0, -1)
            and want in err
            and "Traceback" not in err
            and not (tmp_path / f"ds{i}").exists()
            and not (tmp_path / f"ds{i}.partial").exists()
        )
        if not ok:
            bad.append((args, res["code"], err[-400:]))
    assert not bad, "\n".join(map(str, bad))
