"""Cost model: formulas, parameter checks, the documented defaults, and `demoforge-cost` on a real
generation run's report."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sim.cost import (
    HumanParams,
    SimMeasure,
    break_even,
    cost_curves,
    human_cost,
    load_params,
    measure,
    metric_break_even,
    params_from_dict,
    sensitivity,
    sim_cost,
    summarize,
)
from sim.errors import ConfigError, FormatError

REPO = Path(__file__).resolve().parents[1]
COST = [sys.executable, "-c", "from sim.cli import cost_main; cost_main()"]


def real_report(out: Path):
    """A real 2-episode stack_blocks run (no cameras) and its generation report.

    Uses the run's own ``meta/demoforge_report.json`` when it has the current schema; an older
    generate writes no ``report_version``, then the report is built from the run's measured
    numbers (its CPU time measured here around the in-process run).
    """
    from sim.generate import GenerateConfig, generate
    from sim.render import CameraConfig
    from sim.report import REPORT_VERSION, GenerationReport, load_report

    t0 = time.process_time()
    res = generate(
        GenerateConfig(
            task="stack_blocks", episodes=2, seed=0, cameras=CameraConfig(names=()), output=str(out)
        ),
        progress=False,
    )
    cpu = time.process_time() - t0
    path = out / "meta" / "demoforge_report.json"
    if json.loads(path.read_text()).get("report_version") == REPORT_VERSION:
        return load_report(out)
    rep = GenerationReport(
        path=str(out),
        task="stack_blocks",
        robot="demoforge_humanoid",
        level="D0",
        source="scripted",
        episodes=res.episodes,
        attempts=res.attempts,
        failures=dict(res.failures),
        wall_seconds=res.seconds,
        cpu_seconds=cpu,
        episodes_per_min=res.episodes_per_min,
        success_rate=res.success_rate,
    )
    path.write_text(json.dumps(rep.to_dict()))
    return load_report(out)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cost") / "ds"
    return out, real_report(out)


# ------------------------------------------------------------------ formulas
def test_defaults_reproduce_the_anchor_throughput():
    p = load_params()
    hc = human_cost(p.human)
    # 7 productive hours / (36 s teleop + 20 s reset) = 450 attempts, 20 % rejected
    assert hc.attempts_per_shift == pytest.approx(7 * 3600 / 56)
    assert hc.accepted_per_shift == pytest.approx(0.8 * 7 * 3600 / 56)
    # a station costs (wage * (1 + qa) + robot + facility) per paid hour
    per_hour = 36.63 * 1.1 + 5.33 + 7.25
    assert hc.per_demo == pytest.approx(per_hour * 8 / hc.accepted_per_shift)
    # "hundreds of times a day" per trainer (training-center anchor)
    assert 100 <= hc.accepted_per_shift <= 1000


def test_break_even_is_where_totals_cross():
    p = load_params()
    m = SimMeasure(
        episodes=10,
        attempts=12,
        cpu_seconds=30.0,
        gpu_seconds=2.0,
        wall_seconds=20.0,
        source_episodes=10,
    )
    v = break_even(p, m)
    h = human_cost(p.human).per_demo
    c = cost_curves(p, m, [v])
    assert c["sim_total"][0] == pytest.approx(c["human_total"][0])
    # fixed = 10 human source demos + 40 engineer hours; marginal = CPU + GPU
    fixed = 10 * h + 40 * 63.59
    marginal = 3.0 / 3600 * 0.0425 + 0.2 / 3600 * 1.006
    assert v == pytest.approx(fixed / (h - marginal))
    # more source demos -> later break-even; per-episode cost falls with volume
    assert break_even(replace(p, sim=replace(p.sim, source_demos=100)), m) > v
    assert sim_cost(p, m, 1e5).per_episode < sim_cost(p, m, 1e3).per_episode
    # compute dearer than a human demo -> never
    dear = replace(p, sim=replace(p.sim, cpu_price_per_hour=1e6))
    assert math.isinf(break_even(dear, m))


def test_sensitivity_sorted_and_brackets_the_base():
    p = load_params()
    m = SimMeasure(episodes=10, attempts=10, cpu_seconds=10.0, gpu_seconds=0.0, wall_seconds=10.0)
    bars = sensitivity(p, m, metric_break_even, spread=0.5)
    names = [b.name for b in bars]
    assert "sim.gpu_price_per_hour" not in names  # no GPU used: no effect, not shown
    widths = [b.width for b in bars]
    assert widths == sorted(widths, reverse=True)
    for b in bars:
        assert min(b.low, b.high) <= b.base + 1e-9 <= max(b.low, b.high) + 2e-9
    top = bars[0]
    assert top.name in ("sim.engineering_hours", "sim.engineer_wage_per_hour")


# ------------------------------------------------------------------ bad input
def _valid() -> dict:
    import yaml

    return yaml.safe_load((REPO / "conf" / "cost" / "default.yaml").read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["human"].pop("reset_seconds"), "cost.human lacks cost.human.reset_seconds"),
        (
            lambda d: d["human"].update(operator_wage_per_hour=-3),
            "cost.human.operator_wage_per_hour must be a number >= 0, got -3",
        ),
        (
            lambda d: d["sim"].update(cpu_price_per_hour=None),
            "cost.sim.cpu_price_per_hour is missing",
        ),
        (
            lambda d: d["human"].update(rejected_share=1.0),
            "cost.human.rejected_share must be in [0, 1)",
        ),
        (lambda d: d["human"].update(setup_hours_per_shift=9), "setup_hours_per_shift (9)"),
        (lambda d: d["sim"].update(cpu_prize=1), "unknown key cost.sim.cpu_prize"),
        (lambda d: d.pop("sim"), "cost lacks cost.sim"),
    ],
)
def test_bad_parameters_name_the_key(edit, message):
    d = _valid()
    edit(d)
    with pytest.raises(ConfigError, match=re.escape(message)):
        params_from_dict(d)


def test_every_default_is_documented_with_a_source():
    """Each human/sim key in conf/cost/default.yaml has a comment block right above it."""
    lines = (REPO / "conf" / "cost" / "default.yaml").read_text().splitlines()
    keys = set(HumanParams.__dataclass_fields__) | {
        "cpu_price_per_hour",
        "gpu_price_per_hour",
        "engineering_hours",
        "engineer_wage_per_hour",
        "source_demos",
    }
    seen = set()
    for i, line in enumerate(lines):
        m = re.match(r"^  (\w+):", line)
        if m and m.group(1) in keys:
            seen.add(m.group(1))
            assert lines[i - 1].strip().startswith("#"), f"{m.group(1)} has no source comment"
    assert seen == keys


def test_measure_refuses_empty_and_zero_episodes(run):
    _, rep = run
    with pytest.raises(ConfigError, match="no generation report"):
        measure([])
    with pytest.raises(ConfigError, match="0 successful episodes"):
        measure([replace(rep, episodes=0)])


# ------------------------------------------------------------------ the command, real report
def test_cost_command_on_a_real_run(run, tmp_path):
    ds, rep = run
    assert rep.episodes == 2 and rep.cpu_seconds > 0
    out = tmp_path / "cost"
    r = subprocess.run(
        [*COST, str(ds), f"out={out}"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "break-even volume:" in r.stdout and "per successful episode" in r.stdout
    s = summarize(load_params(), measure([rep]), 10000)
    assert f"{math.ceil(s.break_even):,}" in r.stdout
    for name in ("cost.md", "cost.html", "cost.json", "cost_tornado.png", "cost_volume.png"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "cost.md").read_text()
    assert "![Sensitivity (tornado)](cost_tornado.png)" in md and "| human | sim |" in md
    page = (out / "cost.html").read_text()
    assert page.count("src='data:image/png;base64,") == 2 and "<table>" in page
    d = json.loads((out / "cost.json").read_text())
    assert d["measured"]["cpu_seconds"] == pytest.approx(rep.cpu_seconds)
    assert d["break_even"] == pytest.approx(s.break_even)
    assert d["human"]["per_demo"] == pytest.approx(s.human.per_demo)
    with (out / "cost_tornado.png").open("rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cost_command_bad_input(run, tmp_path):
    ds, _ = run
    base = [*COST, str(ds), f"out={tmp_path / 'c'}"]
    r = subprocess.run(
        [*base, "cost.human.demos_per_hour=-5"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 2
    assert "cost.human.demos_per_hour must be a number >= 0, got -5" in r.stderr
    # a site file that leaves a value out
    site = tmp_path / "conf" / "cost"
    site.mkdir(parents=True)
    d = _valid()
    d["human"].pop("qa_overhead")
    import yaml

    (site / "site.yaml").write_text(yaml.safe_dump(d))
    r = subprocess.run(
        [
            *COST,
            "--config-dir",
            str(tmp_path / "conf"),
            str(ds),
            f"out={tmp_path / 'c'}",
            "cost=site",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 2 and "cost.human.qa_overhead" in r.stderr, r.stderr
    # a report of another schema version names the file
    old = tmp_path / "old_report.json"
    old.write_text(json.dumps({"report_version": 1, "episodes": 3}))
    r = subprocess.run(
        [*COST, str(old), f"out={tmp_path / 'c'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 2 and str(old) in r.stderr and "report_version is 1" in r.stderr


def test_load_report_errors_are_format_errors(tmp_path):
    from sim.report import load_report

    with pytest.raises(FormatError, match="no generation report"):
        load_report(tmp_path)
