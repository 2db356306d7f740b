"""`demoforge-generate`: Hydra config -> :class:`sim.generate.GenerateConfig` -> generate().

The typed schema *is* the frozen dataclass (``OmegaConf.structured(GenerateConfig)``): a typo or
a wrong type fails at composition naming the key; :func:`sim.generate.validate` checks values
before anything touches the disk.
"""

from __future__ import annotations

import logging

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from sim.cli.common import fail, quiet_logs, structured
from sim.errors import SimError
from sim.generate import GenerateConfig
from sim.paths import conf_dir

log = logging.getLogger("demoforge")

ConfigStore.instance().store(name="generate_schema", node=structured(GenerateConfig))


def to_generate_config(cfg: DictConfig) -> GenerateConfig:
    """Composed Hydra config -> frozen GenerateConfig (Hydra's own ``hydra`` key dropped)."""
    c = OmegaConf.to_object(cfg)
    assert isinstance(c, GenerateConfig)
    return c


def summary(result, task: str) -> str:
    fails = ", ".join(f"{k}={v}" for k, v in result.failures.items()) or "none"
    return (
        f"demoforge: wrote {result.episodes} successful episodes of {task!r} "
        f"({result.attempts} attempts, success rate {result.success_rate:.0%}, failures: {fails}) "
        f"in {result.seconds:.1f} s ({result.episodes_per_min:.1f} episodes/min)\n"
        f"demoforge: dataset: {result.path}"
    )


@hydra.main(version_base=None, config_path=str(conf_dir()), config_name="config")
def generate_main(cfg: DictConfig) -> None:
    """`demoforge-generate`: plan source -> physics-verified dataset."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from sim.generate import generate

    quiet_logs()
    try:
        gcfg = to_generate_config(cfg)
        result = generate(gcfg)
    except SimError as e:
        log.error("%s", e)  # also lands in the job's log under a sweep
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra records this job as failed and runs the others
        fail(e)
        return
    print(summary(result, gcfg.task.name))
