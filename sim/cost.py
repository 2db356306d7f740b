"""Human vs sim cost per successful episode: pure functions, no files, no plots.

Human side: a teleoperation station (operator + robot + floor space) run in shifts; every
parameter is a :class:`HumanParams` field with its documented default and public source in
``conf/cost/default.yaml``. Sim side: *measured* CPU- and GPU-seconds per successful episode,
read from generation reports (:mod:`sim.report`), priced per CPU/GPU hour, plus the fixed cost
of what the generated data is made from (the human source demos and the engineering time of a
new task), amortized over the volume generated.

Money is in ``currency`` units (USD by default); volumes are counts of successful episodes.

Totals for ``V`` successful episodes::

    human(V) = V * h                          h: cost of one accepted human demo
    sim(V)   = F + V * c                      c: compute per successful episode
    F        = source_demos * h + engineering_hours * engineer_wage_per_hour
    break-even V* = F / (h - c)               (sim is cheaper for every V > V*)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sim.errors import ConfigError

#: Where the documented defaults live (every field of HumanParams/SimParams, with sources).
DEFAULTS_NAME = "default.yaml"


@dataclass(frozen=True)
class HumanParams:
    """One teleoperation station (one operator at one robot) collecting demos in shifts.

    Attributes:
        operator_wage_per_hour: operator's paid wage [currency/h].
        hours_per_shift: paid hours per shift [h].
        setup_hours_per_shift: hours per shift without collection: calibration, scene changes,
            breaks, uploads [h]; must be < ``hours_per_shift``.
        demos_per_hour: demo attempts per hour of hands-on teleoperation, resets excluded [1/h].
        reset_seconds: scene reset between two attempts (objects put back) [s].
        rejected_share: share of attempts rejected (failed or failing QA) in [0, 1).
        qa_overhead: QA/review labour as a share of operator labour [-].
        robot_amortization_per_hour: robot + teleop rig purchase and upkeep per station hour
            [currency/h].
        facility_per_hour: floor space, power and support per station hour [currency/h].
    """

    operator_wage_per_hour: float
    hours_per_shift: float
    setup_hours_per_shift: float
    demos_per_hour: float
    reset_seconds: float
    rejected_share: float
    qa_overhead: float
    robot_amortization_per_hour: float
    facility_per_hour: float


@dataclass(frozen=True)
class SimParams:
    """Prices of the sim side; what a run used is measured (:class:`SimMeasure`).

    Attributes:
        cpu_price_per_hour: price of one CPU core for one hour [currency/(core h)].
        gpu_price_per_hour: price of one GPU for one hour [currency/(GPU h)].
        engineering_hours: engineer time to build what the run needs that does not exist yet
            (room MJCF, task file, scripted demonstrator) [h]; 0 for a task already built.
        engineer_wage_per_hour: engineer's wage [currency/h].
        source_demos: human source demos the generated data is made from; ``None`` = the
            reports' ``source_episodes`` (0 for scripted runs).
    """

    cpu_price_per_hour: float
    gpu_price_per_hour: float
    engineering_hours: float
    engineer_wage_per_hour: float
    source_demos: int | None = None


@dataclass(frozen=True)
class CostParams:
    """Everything the cost model is parameterized by."""

    human: HumanParams
    sim: SimParams
    currency: str = "USD"


@dataclass(frozen=True)
class SimMeasure:
    """What generation runs measured (summed over runs).

    Attributes:
        episodes: successful episodes written.
        attempts: attempts made.
        cpu_seconds: CPU time of the runs and their workers [s].
        gpu_seconds: GPU time [s].
        wall_seconds: wall-clock time [s].
        source_episodes: human/source demos the runs drew from (max over runs: runs of one
            sweep share their source).
        runs: where the numbers come from (report paths).
    """

    episodes: int
    attempts: int
    cpu_seconds: float
    gpu_seconds: float
    wall_seconds: float
    source_episodes: int = 0
    runs: tuple[str, ...] = ()

    @property
    def cpu_seconds_per_episode(self) -> float:
        return self.cpu_seconds / self.episodes

    @property
    def gpu_seconds_per_episode(self) -> float:
        return self.gpu_seconds / self.episodes


@dataclass(frozen=True)
class HumanCost:
    """Cost of one accepted human demo, split by where the money goes [currency/demo]."""

    labour: float
    qa: float
    robot: float
    facility: float
    accepted_per_shift: float
    attempts_per_shift: float

    @property
    def per_demo(self) -> float:
        return self.labour + self.qa + self.robot + self.facility


@dataclass(frozen=True)
class SimCost:
    """Cost of one successful sim episode at ``volume`` [currency/episode]."""

    cpu: float
    gpu: float
    source_demos: float
    engineering: float
    volume: float
    fixed: float

    @property
    def compute(self) -> float:
        """Marginal cost of one more episode (CPU + GPU)."""
        return self.cpu + self.gpu

    @property
    def per_episode(self) -> float:
        return self.cpu + self.gpu + self.source_demos + self.engineering


@dataclass(frozen=True)
class CostSummary:
    """Human vs sim at one planned volume."""

    params: CostParams
    measure: SimMeasure
    volume: float
    human: HumanCost
    sim: SimCost
    break_even: float  # successful episodes; inf when sim never gets cheaper

    @property
    def ratio(self) -> float:
        """Human cost per episode / sim cost per episode at ``volume``."""
        return self.human.per_demo / self.sim.per_episode


# ------------------------------------------------------------------ parameters
_NONNEG = "must be a number >= 0"


def check_params(p: CostParams) -> CostParams:
    """Refuse negative, non-finite or inconsistent values, naming the ``cost.*`` key."""
    for group, obj in (("human", p.human), ("sim", p.sim)):
        for f in fields(obj):
            v = getattr(obj, f.name)
            if f.name == "source_demos" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"cost.{group}.{f.name} {_NONNEG}, got {v!r}")
            if v < 0:
                raise ConfigError(f"cost.{group}.{f.name} {_NONNEG}, got {v!r}")
    h = p.human
    for key in ("hours_per_shift", "demos_per_hour"):
        if getattr(h, key) <= 0:
            raise ConfigError(f"cost.human.{key} must be > 0, got {getattr(h, key)!r}")
    if h.setup_hours_per_shift >= h.hours_per_shift:
        raise ConfigError(
            f"cost.human.setup_hours_per_shift ({h.setup_hours_per_shift}) must be less than "
            f"cost.human.hours_per_shift ({h.hours_per_shift})"
        )
    if h.rejected_share >= 1:
        raise ConfigError(f"cost.human.rejected_share must be in [0, 1), got {h.rejected_share}")
    if p.sim.source_demos is not None and int(p.sim.source_demos) != p.sim.source_demos:
        raise ConfigError(f"cost.sim.source_demos must be an integer, got {p.sim.source_demos!r}")
    return p


def _group(cls, d: Any, where: str):
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where} must be a mapping of {cls.__name__} fields, got {d!r}")
    names = [f.name for f in fields(cls)]
    required = [n for n in names if n != "source_demos"]
    missing = [n for n in required if n not in d]
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(f'{where}.{m}' for m in missing)}")
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]}; expected one of: {', '.join(names)}")
    for k, v in d.items():
        if v is None and k != "source_demos":
            raise ConfigError(f"{where}.{k} is missing (null); it {_NONNEG}")
    return cls(**dict(d))


def params_from_dict(d: Mapping[str, Any], where: str = "cost") -> CostParams:
    """``{"human": {...}, "sim": {...}, "currency": ...}`` -> checked :class:`CostParams`.

    Raises:
        ConfigError: a missing, unknown, negative or inconsistent value (the key is named).
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'human' and 'sim', got {d!r}")
    for k in ("human", "sim"):
        if k not in d:
            raise ConfigError(f"{where} lacks {where}.{k}")
    unknown = sorted(set(d) - {"human", "sim", "currency"})
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]}; expected human, sim, currency")
    return check_params(
        CostParams(
            human=_group(HumanParams, d["human"], f"{where}.human"),
            sim=_group(SimParams, d["sim"], f"{where}.sim"),
            currency=str(d.get("currency", "USD")),
        )
    )


def default_params_path() -> Path:
    from sim.paths import conf_dir

    return conf_dir() / "cost" / DEFAULTS_NAME


def load_params(path: str | Path | None = None) -> CostParams:
    """Read cost parameters from a ``conf/cost/*.yaml`` file (default: the shipped defaults)."""
    import yaml

    p = Path(path) if path is not None else default_params_path()
    try:
        d = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{p}: cannot read cost parameters ({e})") from e
    try:
        return params_from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from e


# ------------------------------------------------------------------ measurements
def measure(reports: Iterable[Any]) -> SimMeasure:
    """Sum what generation reports (:class:`sim.report.GenerationReport`) measured.

    Raises:
        ConfigError: no report, or no successful episode in them.
    """
    reps = list(reports)
    if not reps:
        raise ConfigError("no generation report given (report=<dataset dir or report file>)")
    episodes = sum(int(r.episodes) for r in reps)
    if episodes <= 0:
        raise ConfigError(
            f"the reports of {[r.path for r in reps]} count 0 successful episodes; "
            "cost per successful episode is undefined"
        )
    return SimMeasure(
        episodes=episodes,
        attempts=sum(int(r.attempts) for r in reps),
        cpu_seconds=float(sum(r.cpu_seconds for r in reps)),
        gpu_seconds=float(sum(r.gpu_seconds for r in reps)),
        wall_seconds=float(sum(r.wall_seconds for r in reps)),
        source_episodes=max(int(r.source_episodes) for r in reps),
        runs=tuple(str(r.path) for r in reps),
    )


# ------------------------------------------------------------------ the model
def human_cost(h: HumanParams) -> HumanCost:
    """Cost of one accepted human demo at a station run in shifts."""
    productive_s = (h.hours_per_shift - h.setup_hours_per_shift) * 3600.0
    attempt_s = 3600.0 / h.demos_per_hour + h.reset_seconds
    attempts = productive_s / attempt_s
    accepted = attempts * (1.0 - h.rejected_share)
    per_shift = h.hours_per_shift / accepted  # paid station hours per accepted demo
    return HumanCost(
        labour=h.operator_wage_per_hour * per_shift,
        qa=h.operator_wage_per_hour * h.qa_overhead * per_shift,
        robot=h.robot_amortization_per_hour * per_shift,
        facility=h.facility_per_hour * per_shift,
        accepted_per_shift=accepted,
        attempts_per_shift=attempts,
    )


def source_demos(p: CostParams, m: SimMeasure) -> int:
    return int(m.source_episodes if p.sim.source_demos is None else p.sim.source_demos)


def fixed_cost(p: CostParams, m: SimMeasure, human_per_demo: float | None = None) -> float:
    """Sim cost that does not grow with volume: source demos + engineering [currency]."""
    h = human_cost(p.human).per_demo if human_per_demo is None else human_per_demo
    return source_demos(p, m) * h + p.sim.engineering_hours * p.sim.engineer_wage_per_hour


def sim_cost(p: CostParams, m: SimMeasure, volume: float) -> SimCost:
    """Cost of one successful sim episode when ``volume`` episodes are generated."""
    if not volume > 0:
        raise ConfigError(f"volume must be > 0 successful episodes, got {volume!r}")
    h = human_cost(p.human).per_demo
    return SimCost(
        cpu=m.cpu_seconds_per_episode / 3600.0 * p.sim.cpu_price_per_hour,
        gpu=m.gpu_seconds_per_episode / 3600.0 * p.sim.gpu_price_per_hour,
        source_demos=source_demos(p, m) * h / volume,
        engineering=p.sim.engineering_hours * p.sim.engineer_wage_per_hour / volume,
        volume=float(volume),
        fixed=fixed_cost(p, m, h),
    )


def break_even(p: CostParams, m: SimMeasure) -> float:
    """Volume above which generating is cheaper than recording [successful episodes].

    ``inf`` when one generated episode costs at least as much compute as a human demo.
    """
    h = human_cost(p.human).per_demo
    c = sim_cost(p, m, 1.0).compute
    if c >= h:
        return math.inf
    return fixed_cost(p, m, h) / (h - c)


def summarize(p: CostParams, m: SimMeasure, volume: float | None = None) -> CostSummary:
    """Human vs sim at ``volume`` (default: the volume the reports generated)."""
    v = float(m.episodes if volume is None else volume)
    return CostSummary(
        params=p,
        measure=m,
        volume=v,
        human=human_cost(p.human),
        sim=sim_cost(p, m, v),
        break_even=break_even(p, m),
    )


def cost_curves(p: CostParams, m: SimMeasure, volumes: Sequence[float]) -> dict[str, list[float]]:
    """Total and per-episode cost of ``volumes`` successful episodes, human and sim."""
    h = human_cost(p.human).per_demo
    s1 = sim_cost(p, m, 1.0)
    human_total = [h * v for v in volumes]
    sim_total = [s1.fixed + s1.compute * v for v in volumes]
    return {
        "volume": [float(v) for v in volumes],
        "human_total": human_total,
        "sim_total": sim_total,
        "human_per_episode": [h for _ in volumes],
        "sim_per_episode": [t / v for t, v in zip(sim_total, volumes, strict=True)],
    }


# ------------------------------------------------------------------ sensitivity
@dataclass(frozen=True)
class Swing:
    """One bar of a tornado: ``metric`` with one input at its low and high value."""

    name: str
    low_input: float
    high_input: float
    low: float
    high: float
    base: float

    @property
    def width(self) -> float:
        vals = [v for v in (self.low, self.high) if math.isfinite(v)]
        if len(vals) < 2:
            return math.inf
        return abs(self.high - self.low)


def _varied(p: CostParams, m: SimMeasure, name: str, value: float):
    group, key = name.split(".", 1)
    if group == "human":
        return replace(p, human=replace(p.human, **{key: value})), m
    if group == "sim":
        return replace(p, sim=replace(p.sim, **{key: value})), m
    # measured: scale the run's own totals
    scale = value / getattr(m, key)
    base_key = key.removesuffix("_per_episode")
    return p, replace(m, **{base_key: getattr(m, base_key) * scale})


def sensitivity_inputs(p: CostParams, m: SimMeasure) -> dict[str, float]:
    """Every input the tornado varies, with its base value (zeros are skipped)."""
    out: dict[str, float] = {}
    for group, obj in (("human", p.human), ("sim", p.sim)):
        for f in fields(obj):
            v = getattr(obj, f.name)
            if v is None or v == 0:
                continue
            if (f.name == "cpu_price_per_hour" and m.cpu_seconds == 0) or (
                f.name == "gpu_price_per_hour" and m.gpu_seconds == 0
            ):
                continue  # no effect: nothing of that kind was used
            out[f"{group}.{f.name}"] = float(v)
    for key in ("cpu_seconds_per_episode", "gpu_seconds_per_episode"):
        v = getattr(m, key)
        if v > 0:
            out[f"measured.{key}"] = float(v)
    return out


def sensitivity(
    p: CostParams,
    m: SimMeasure,
    metric: Callable[[CostParams, SimMeasure], float],
    spread: float = 0.5,
) -> list[Swing]:
    """Vary each input by ``±spread`` (relative) alone; bars sorted widest first.

    Values that would be invalid are clipped: shares stay below 1, setup below the shift,
    counts stay integers.
    """
    if not 0 < spread < 1:
        raise ConfigError(f"spread must be in (0, 1), got {spread!r}")
    base = metric(p, m)
    out = []
    for name, v in sensitivity_inputs(p, m).items():
        lo, hi = v * (1 - spread), v * (1 + spread)
        if name == "human.rejected_share":
            hi = min(hi, 0.95)
        if name == "human.setup_hours_per_shift":
            hi = min(hi, 0.9 * p.human.hours_per_shift)
        if name == "human.hours_per_shift":
            lo = max(lo, p.human.setup_hours_per_shift / 0.9)
        if name == "sim.source_demos":
            lo, hi = float(math.floor(lo)), float(math.ceil(hi))
        vals = []
        for x in (lo, hi):
            pv, mv = _varied(p, m, name, int(x) if name == "sim.source_demos" else x)
            vals.append(metric(check_params(pv), mv))
        out.append(Swing(name, lo, hi, vals[0], vals[1], base))
    out.sort(key=lambda s: (-s.width if math.isfinite(s.width) else -math.inf, s.name))
    return out


def metric_human_per_demo(p: CostParams, m: SimMeasure) -> float:
    return human_cost(p.human).per_demo


def metric_break_even(p: CostParams, m: SimMeasure) -> float:
    return break_even(p, m)


def metric_sim_per_episode(volume: float) -> Callable[[CostParams, SimMeasure], float]:
    def f(p: CostParams, m: SimMeasure) -> float:
        return sim_cost(p, m, volume).per_episode

    return f
