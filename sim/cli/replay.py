"""`demoforge-replay`: Hydra config -> :class:`sim.replay.ReplayConfig` -> run_replay().

The schema is the frozen dataclass itself (``OmegaConf.structured(ReplayConfig)``): a typo or a
wrong type fails at composition naming the key. Map options take new keys as typed:
``arm_map.main=right object_map.cubeA=block_a`` (rewritten to Hydra's ``++key=value`` form,
because a plain override may not add a key to a structured config).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from sim.cli.common import fail, quiet_logs, structured
from sim.errors import SimError
from sim.paths import conf_dir
from sim.replay.config import ReplayConfig

#: ReplayConfig fields that are string -> string maps (new keys allowed from the command line).
MAP_KEYS = ("joint_map", "arm_map", "object_map")
_MAP_ARG = re.compile(rf"^(?:{'|'.join(MAP_KEYS)})\.[^=]+=")

ConfigStore.instance().store(name="replay_schema", node=structured(ReplayConfig))


def map_overrides(argv: Sequence[str]) -> list[str]:
    """``arm_map.main=right`` -> ``++arm_map.main=right`` (add or override a map key)."""
    return [f"++{a}" if _MAP_ARG.match(a) else a for a in argv]


def to_replay_config(cfg: DictConfig) -> ReplayConfig:
    """Composed Hydra config -> frozen ReplayConfig."""
    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    c.pop("hydra", None)
    return ReplayConfig.from_mapping(c)


@hydra.main(version_base=None, config_path=str(conf_dir()), config_name="replay")
def _main(cfg: DictConfig) -> None:
    from sim.replay.run import run_replay, summary

    quiet_logs()
    try:
        rcfg = to_replay_config(cfg)
        report = run_replay(rcfg)
    except SimError as e:
        fail(e)
        return
    print(f"demoforge: replay {summary(report)}\ndemoforge: report: {rcfg.output}/report.json")


def replay_main() -> None:
    """`demoforge-replay`: read a source episode and replay it (kinematic, joint or EE mode)."""
    sys.argv[1:] = map_overrides(sys.argv[1:])
    _main()
