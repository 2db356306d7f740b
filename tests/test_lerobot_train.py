"""A demoforge dataset trains with LeRobot's own trainer (``lerobot-train`` from lerobot 0.6.1).

Uses the cached Python 3.12 venv of tests/test_lerobot_compat.py (created there with
``DEMOFORGE_LEROBOT_COMPAT=1``; ``lerobot-train`` also needs the ``training`` extra, installed
here into that venv when missing and the opt-in is set). Skipped with the reason otherwise.
Runs a few CPU steps of a tiny ACT policy on the dataset's low-dimensional features with
LeRobot's defaults (no ``--policy.input_features``: every ``observation.*`` column is an input
its normalizer must take, the 0/1 subtask signals included), offline (``HF_HUB_OFFLINE=1``),
and checks the trainer logged every step and saved a loadable checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_lerobot_compat import LEROBOT, OPT_IN, _venv_python  # noqa: E402

pytestmark = pytest.mark.slow
STEPS = 5


def _trainer(py: Path) -> None:
    """Make sure the venv has lerobot's training extra (accelerate, ...)."""
    ok = subprocess.run([str(py), "-c", "import accelerate"], capture_output=True)
    if ok.returncode == 0:
        return
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(f"the lerobot venv lacks the 'training' extra; set {OPT_IN}=1 to add it")
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", LEROBOT.replace("dataset", "training")],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        pytest.skip(f"pip install lerobot[training] failed (no network?): {pip.stderr[-800:]}")


def lerobot_train_args(root: Path, out: Path, steps: int = STEPS) -> list[str]:
    """``lerobot-train`` arguments: tiny ACT on CPU, local dataset, no hub, no wandb."""
    return [
        "--dataset.repo_id=local/demoforge",
        f"--dataset.root={root}",
        "--policy.type=act",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        "--policy.dim_model=32",
        "--policy.n_heads=2",
        "--policy.dim_feedforward=64",
        "--policy.n_encoder_layers=1",
        "--policy.n_decoder_layers=1",
        "--policy.chunk_size=8",
        "--policy.n_action_steps=8",
        "--policy.use_vae=false",
        f"--output_dir={out}",
        f"--steps={steps}",
        "--batch_size=4",
        "--num_workers=0",
        "--save_checkpoint=true",
        f"--save_freq={steps}",
        "--env_eval_freq=0",
        "--log_freq=1",
        "--wandb.enable=false",
    ]


def test_lerobot_train_act_on_generated_dataset(tmp_path):
    py = _venv_python()
    _trainer(py)
    from sim.generate import GenerateConfig, generate
    from sim.render import CameraConfig

    root = tmp_path / "sb4"
    generate(
        GenerateConfig(
            task="stack_blocks",
            episodes=4,
            cameras=CameraConfig(names=()),
            output=str(root),
            progress=False,
        )
    )
    out = tmp_path / "train"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
    }
    proc = subprocess.run(
        [str(py), "-m", "lerobot.scripts.lerobot_train", *lerobot_train_args(root, out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    (tmp_path / "lerobot_train.log").write_text(log)
    assert proc.returncode == 0, log[-4000:]
    steps = [int(s) for s in re.findall(r"step:(\d+)", log)]
    assert steps and max(steps) == STEPS, log[-3000:]
    assert "loss:" in log
    ckpt = out / "checkpoints" / f"{STEPS:06d}" / "pretrained_model"
    assert (ckpt / "model.safetensors").is_file(), sorted(p.name for p in out.rglob("*"))
    config = json.loads((ckpt / "config.json").read_text())
    assert "observation.subtask.grasped" in config["input_features"], config["input_features"]
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["type"] == "act"
    assert set(cfg["input_features"]) >= {"observation.state", "observation.environment_state"}
    assert cfg["output_features"]["action"]["shape"] == [16]
