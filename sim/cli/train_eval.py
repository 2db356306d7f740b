"""`demoforge-train-eval`: Hydra config -> TrainEvalConfig -> :func:`sim.learn.run.train_eval`.

demoforge-train-eval dataset=data/stack_blocks_1000 output=runs/sb1000
demoforge-train-eval dataset=data/sb learn=smoke eval.rollouts=5
demoforge-train-eval checkpoint=runs/sb1000/checkpoint.pt output=runs/sb1000_eval
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sim.cli.common import fail as _fail
from sim.errors import ConfigError, SimError
from sim.paths import conf_dir

log = logging.getLogger("demoforge")


@dataclass
class PolicySchema:
    kind: str = "mlp"
    hidden: int = 512
    layers: int = 3
    chunk: int = 10
    execute: int = 5
    history: int = 4
    dropout: float = 0.0
    image_features: int = 64
    relative: bool = True
    ensemble: float = 0.0
    action_space: str = "ee"
    ee_reference: str = "reset"
    obs_std_floor: float = 0.01


@dataclass
class TrainSchema:
    steps: int = 5000
    epochs: float = 0.0
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    loss: str = "l1"
    obs_noise: float = 0.0
    seed: int = 0
    threads: int = 1
    log_every: int = 500


@dataclass
class LearnSchema:
    policy: PolicySchema = field(default_factory=PolicySchema)
    train: TrainSchema = field(default_factory=TrainSchema)


@dataclass
class EvalSchema:
    rollouts: int = 50
    seed: int = 0
    level: str | None = None
    max_steps: int | None = None
    curve_every: int = 0
    curve_rollouts: int = 10
    video_rollouts: int = 3
    video_size: list[int] = field(default_factory=lambda: [240, 320])
    video_camera: str = "head"


@dataclass
class TrainEvalSchema:
    dataset: str | None = MISSING
    output: str = MISSING
    task: str | None = None
    obs: list[str] = field(
        default_factory=lambda: [
            "derived.poses",
            "derived.relative",
            "derived.gripper",
            "derived.time",
        ]
    )
    cameras: list[str] = field(default_factory=list)
    image_size: list[int] = field(default_factory=lambda: [84, 84])
    episodes: int | None = None
    checkpoint: str | None = None
    overwrite: bool = False
    learn: LearnSchema = field(default_factory=LearnSchema)
    eval: EvalSchema = field(default_factory=EvalSchema)


ConfigStore.instance().store(name="train_eval_schema", node=TrainEvalSchema)


def _pair(v: Any, key: str) -> tuple[int, int]:
    if len(v) != 2:
        raise ConfigError(f"{key} must be [height, width], got {v}")
    return int(v[0]), int(v[1])


def to_train_eval_config(cfg: DictConfig):
    """Hydra config -> frozen TrainEvalConfig."""
    from sim.learn.policy import PolicyConfig
    from sim.learn.run import EvalConfig, TrainEvalConfig
    from sim.learn.train import TrainConfig

    c = OmegaConf.to_container(cfg, resolve=True)
    ev = dict(c["eval"])
    ev["video_size"] = _pair(ev["video_size"], "eval.video_size")
    return TrainEvalConfig(
        dataset=c["dataset"] or "",
        output=c["output"],
        task=c["task"],
        obs=tuple(c["obs"]),
        cameras=tuple(c["cameras"]),
        image_size=_pair(c["image_size"], "image_size"),
        episodes=c["episodes"],
        policy=PolicyConfig(**c["learn"]["policy"]),
        train=TrainConfig(**c["learn"]["train"]),
        eval=EvalConfig(**ev),
        checkpoint=c["checkpoint"],
        overwrite=c["overwrite"],
    )


def _positional(argv: list[str]) -> list[str]:
    """``demoforge-train-eval PATH k=v`` -> ``dataset=PATH k=v``."""
    out = list(argv)
    for i, a in enumerate(out[1:], start=1):
        if "=" not in a and not a.startswith("-") and Path(a).exists():
            out[i] = f"dataset={a}"
            break
    return out


@hydra.main(version_base=None, config_path=str(conf_dir()), config_name="train_eval")
def _main(cfg: DictConfig) -> None:
    from sim.learn.run import train_eval

    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    try:
        tcfg = to_train_eval_config(cfg)
        out = Path(tcfg.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        m = train_eval(tcfg)
    except SimError as e:
        _fail(e)
        return
    except ModuleNotFoundError as e:
        if e.name == "torch":
            _fail(ConfigError("demoforge-train-eval needs torch: pip install 'demoforge[learn]'"))
            return
        raise
    ev = m["eval"]
    lo, hi = ev["ci95"]
    print(
        f"demoforge: {m['task']}: success {ev['successes']}/{ev['rollouts']} = "
        f"{ev['success_rate']:.0%} (95% CI {lo:.0%}-{hi:.0%}) from {m['episodes']} episodes; "
        f"train {m['timing_s'].get('train_s', 0):.0f} s, eval {m['timing_s']['eval_s']:.0f} s\n"
        f"demoforge: run folder: {tcfg.output}"
    )


def train_eval_main() -> None:
    """`demoforge-train-eval`: train a BC policy on a dataset, evaluate it closed-loop."""
    sys.argv = _positional(sys.argv)
    _main()
