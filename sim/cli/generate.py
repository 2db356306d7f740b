"""`demoforge-generate`: Hydra config -> typed GenerateConfig -> :func:`sim.generate.generate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sim.cli.common import fail as _fail
from sim.errors import SimError
from sim.paths import conf_dir

log = logging.getLogger("demoforge")


@dataclass
class CamerasSchema:
    names: list[str] = field(default_factory=lambda: ["head", "right_wrist"])
    height: int = 84
    width: int = 84
    quality: str = "fast"


@dataclass
class OutputSchema:
    dir: str = MISSING
    format: str = "lerobot"
    overwrite: bool = False
    resume: bool = False


@dataclass
class TaskSchema:
    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerateSchema:
    robot: Any = MISSING
    task: TaskSchema = field(default_factory=TaskSchema)
    episodes: int = 10
    seed: int = 0
    level: str = "D0"
    workers: int = 1
    control_hz: float = 20.0
    max_attempts: int | None = None
    progress: bool = True
    cameras: CamerasSchema = field(default_factory=CamerasSchema)
    output: OutputSchema = field(default_factory=OutputSchema)


ConfigStore.instance().store(name="generate_schema", node=GenerateSchema)


def to_generate_config(cfg: DictConfig):
    """Hydra config -> frozen GenerateConfig."""
    from sim.generate import GenerateConfig
    from sim.render import CameraConfig

    c = OmegaConf.to_container(cfg, resolve=True)
    return GenerateConfig(
        task=c["task"]["name"],
        task_params=dict(c["task"].get("params") or {}),
        robot=c["robot"],
        episodes=c["episodes"],
        seed=c["seed"],
        level=c["level"],
        workers=c["workers"],
        control_hz=c["control_hz"],
        max_attempts=c["max_attempts"],
        cameras=CameraConfig(names=tuple(c["cameras"]["names"]), height=c["cameras"]["height"],
                             width=c["cameras"]["width"], quality=c["cameras"]["quality"]),
        output=c["output"]["dir"],
        format=c["output"]["format"],
        overwrite=c["output"]["overwrite"],
        resume=c["output"]["resume"],
    )


@hydra.main(version_base=None, config_path=str(conf_dir()), config_name="config")
def generate_main(cfg: DictConfig) -> None:
    """`demoforge-generate`: scripted demos -> physics-verified dataset."""
    from sim.generate import generate

    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL's INFO chatter
    try:
        gcfg = to_generate_config(cfg)
        result = generate(gcfg, progress=cfg.progress)
    except SimError as e:
        _fail(e)
        return
    fails = ", ".join(f"{k}={v}" for k, v in result.failures.items()) or "none"
    print(
        f"demoforge: wrote {result.episodes} successful episodes of {gcfg.task!r} "
        f"({result.attempts} attempts, success rate {result.success_rate:.0%}, failures: {fails}) "
        f"in {result.seconds:.1f} s ({result.episodes_per_min:.1f} episodes/min)\n"
        f"demoforge: dataset: {result.path}"
    )
