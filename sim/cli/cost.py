"""`demoforge-cost`: generation reports + ``conf/cost/`` -> human vs sim cost report.

demoforge-cost data/stack_blocks_demoforge_humanoid_D0_seed0
demoforge-cost report=[runA,runB] volume=100000 cost.human.operator_wage_per_hour=20
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import typing
from dataclasses import dataclass, field
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from sim.cli.common import fail as _fail
from sim.cost import HumanParams, SimParams
from sim.errors import ConfigError, SimError
from sim.paths import conf_dir

log = logging.getLogger("demoforge")


def schema_of(cls: type, name: str) -> type:
    """A mutable structured-config twin of a frozen dataclass: same fields and types, every
    required field ``MISSING`` (so a cost YAML that leaves one out fails, naming it)."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        default = MISSING if f.default is dataclasses.MISSING else f.default
        specs.append((f.name, hints[f.name], field(default=default)))
    return dataclasses.make_dataclass(name, specs)


HumanSchema = schema_of(HumanParams, "HumanSchema")
SimSchema = schema_of(SimParams, "SimSchema")


@dataclass
class CostGroupSchema:
    currency: str = "USD"
    human: Any = field(default_factory=HumanSchema)
    sim: Any = field(default_factory=SimSchema)


@dataclass
class CostSchema:
    report: Any = MISSING  # dataset dir / report file, or a list of them
    out: str = "cost_report"
    volume: float | None = None
    spread: float = 0.5
    cost: CostGroupSchema = field(default_factory=CostGroupSchema)


ConfigStore.instance().store(name="cost_schema", node=CostSchema)


def positional_to_override(argv: list[str], key: str) -> list[str]:
    """``cmd PATH k=v`` -> ``cmd key=PATH k=v`` (Hydra takes only ``k=v`` arguments)."""
    with_value = {
        "--config-name",
        "--config-path",
        "--config-dir",
        "-cn",
        "-cp",
        "-cd",
        "--package",
        "-p",
        "--info",
        "-i",
        "--cfg",
        "-c",
        "--experimental-rerun",
    }
    out = list(argv)
    i = 1
    while i < len(out):
        a = out[i]
        if a.startswith("-"):
            i += 2 if a in with_value else 1
            continue
        if "=" not in a and not a.startswith(("~", "+")):
            out[i] = f"{key}={a}"
        break
    return out


def cost_params(cfg: DictConfig):
    """The ``cost`` node -> checked :class:`sim.cost.CostParams` (missing keys named)."""
    from sim.cost import params_from_dict

    try:
        d = OmegaConf.to_container(cfg.cost, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        raise ConfigError(f"missing value for cost.{e.full_key} (conf/cost/*.yaml)") from e
    return params_from_dict(d)


def report_paths(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def run_cost(cfg: DictConfig) -> dict:
    """Load the reports, compute, write the report files, print the table and note."""
    from sim.cost import measure, summarize
    from sim.cost_report import closing_note, count, table_rows, write_cost_report
    from sim.report import load_report

    params = cost_params(cfg)
    try:
        paths = report_paths(
            OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)["report"]
        )
    except MissingMandatoryValue as e:
        raise ConfigError(
            "missing report: give a dataset directory or report file "
            "(demoforge-cost <dataset> or report=<path>)"
        ) from e
    reports = [load_report(p) for p in paths]
    m = measure(reports)
    s = summarize(params, m, cfg.volume)
    files = write_cost_report(s, cfg.out, spread=cfg.spread)
    w = max(len(r[0].replace("*", "")) for r in table_rows(s))
    print(f"{'per successful episode':<{w}}  {'human':>12}  {'sim':>12}")
    for a, b, c in table_rows(s):
        print(f"{a.replace('*', ''):<{w}}  {b.replace('*', ''):>12}  {c.replace('*', ''):>12}")
    print(f"break-even volume: {count(s.break_even)} successful episodes")
    print(closing_note(s))
    print(f"demoforge: cost report: {files['md']} ({files['html'].name}, plots, cost.json)")
    return {"summary": s, "files": files}


@hydra.main(version_base=None, config_path=str(conf_dir()), config_name="cost")
def _main(cfg: DictConfig) -> None:
    try:
        run_cost(cfg)
    except SimError as e:
        _fail(e)


def cost_main() -> None:
    """`demoforge-cost`."""
    sys.argv = positional_to_override(sys.argv, "report")
    _main()
