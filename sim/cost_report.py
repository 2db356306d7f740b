"""Cost report files: tornado and cost-vs-volume plots, a table, markdown + HTML (plots embedded).

The numbers come from :mod:`sim.cost` (pure); this module only draws and writes. matplotlib
runs on the Agg backend (headless).
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sim.cost import (
    CostSummary,
    Swing,
    cost_curves,
    metric_break_even,
    metric_human_per_demo,
    metric_sim_per_episode,
    sensitivity,
    source_demos,
)


def _plt():
    """A pyplot-free figure factory: ``Figure`` objects need no backend and touch no global
    state (a notebook's inline backend stays as it is); ``savefig`` renders with Agg."""
    from matplotlib.figure import Figure

    class _Figures:
        @staticmethod
        def subplots(nrows: int = 1, ncols: int = 1, figsize=None):
            fig = Figure(figsize=figsize)
            return fig, fig.subplots(nrows, ncols)

        @staticmethod
        def close(fig) -> None:
            fig.clear()

    return _Figures


def money(x: float, currency: str = "USD") -> str:
    """``$1.17``, ``$0.0000118``, ``$2,544``: enough digits to show tiny compute costs."""
    sym = "$" if currency == "USD" else f"{currency} "
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return f"{sym}0"
    if abs(x) >= 100:
        return f"{sym}{x:,.0f}"
    if abs(x) >= 0.01:
        return f"{sym}{x:,.2f}"
    return f"{sym}{x:.3g}"


def count(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{math.ceil(x):,}"


# ------------------------------------------------------------------ plots
def plot_tornado(
    bars: dict[str, list[Swing]], path: Path, title: str, currency: str = "USD"
) -> Path:
    """One tornado panel per metric: horizontal bars from the low to the high input."""
    plt = _plt()
    n = max(len(b) for b in bars.values())
    fig, axes = plt.subplots(1, len(bars), figsize=(6.5 * len(bars), 0.45 * n + 1.8))
    axes = np.atleast_1d(axes)
    for ax, (label, swings) in zip(axes, bars.items(), strict=True):
        swings = [
            s
            for s in swings
            if math.isfinite(s.low)
            and math.isfinite(s.high)
            and abs(s.high - s.low) > 1e-6 * max(abs(s.base), 1e-12)
        ]  # no-effect inputs
        swings = swings[::-1]  # widest on top
        base = swings[0].base if swings else 0.0
        y = np.arange(len(swings))
        for i, s in enumerate(swings):
            ax.barh(i, s.low - base, left=base, color="#4c72b0", height=0.6)
            ax.barh(i, s.high - base, left=base, color="#dd8452", height=0.6)
        ax.axvline(base, color="k", lw=1)
        ax.set_yticks(y, [s.name for s in swings], fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title + "  (blue: input -50%, orange: input +50%)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_volume(s: CostSummary, path: Path) -> Path:
    """Total cost and cost per episode vs volume (log-log), break-even marked."""
    plt = _plt()
    hi = max(1e6, 10 * (s.break_even if math.isfinite(s.break_even) else 1), 10 * s.volume)
    vols = np.logspace(0, math.log10(hi), 200)
    c = cost_curves(s.params, s.measure, vols)
    cur = s.params.currency
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.loglog(c["volume"], c["human_total"], label="human (teleoperation)", color="#dd8452")
    a.loglog(c["volume"], c["sim_total"], label="sim (demoforge)", color="#4c72b0")
    a.set_xlabel("successful episodes")
    a.set_ylabel(f"total cost [{cur}]")
    b.loglog(c["volume"], c["human_per_episode"], color="#dd8452", label="human")
    b.loglog(c["volume"], c["sim_per_episode"], color="#4c72b0", label="sim")
    b.set_xlabel("successful episodes")
    b.set_ylabel(f"cost per successful episode [{cur}]")
    for ax in (a, b):
        if math.isfinite(s.break_even) and s.break_even > 0:
            ax.axvline(
                s.break_even, color="k", ls="--", lw=1, label=f"break-even {count(s.break_even)}"
            )
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("cost vs volume", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ table and notes
def table_rows(s: CostSummary) -> list[tuple[str, str, str]]:
    """(item, human, sim) rows, per successful episode; sim at the summary's volume."""
    cur = s.params.currency
    h, m = s.human, s.sim
    return [
        ("operator labour", money(h.labour, cur), ""),
        ("QA / review", money(h.qa, cur), ""),
        ("robot + rig amortization", money(h.robot, cur), ""),
        ("facility", money(h.facility, cur), ""),
        ("compute: CPU (measured)", "", money(m.cpu, cur)),
        ("compute: GPU (measured)", "", money(m.gpu, cur)),
        ("human source demos, amortized", "", money(m.source_demos, cur)),
        ("engineering, amortized", "", money(m.engineering, cur)),
        (
            "**per successful episode**",
            f"**{money(h.per_demo, cur)}**",
            f"**{money(m.per_episode, cur)}**",
        ),
    ]


def closing_note(s: CostSummary) -> str:
    """The one-paragraph answer; says whether the shipped default parameters were used."""
    from sim.cost import ConfigError, load_params

    try:
        which = "the default parameters" if s.params == load_params() else "these parameters"
    except ConfigError:
        which = "these parameters"
    cur = s.params.currency
    me = s.measure
    n_src = source_demos(s.params, me)
    return (
        f"With {which}, one accepted human demo costs "
        f"{money(s.human.per_demo, cur)} ({s.human.accepted_per_shift:.0f} accepted per "
        f"{s.params.human.hours_per_shift:g}-h shift); one generated episode costs "
        f"{money(s.sim.compute, cur)} of compute (measured: "
        f"{me.cpu_seconds_per_episode:.3g} CPU-s and {me.gpu_seconds_per_episode:.3g} GPU-s per "
        f"successful episode over {me.episodes} episodes) and "
        f"{money(s.sim.per_episode, cur)} all-in at {count(s.volume)} episodes "
        f"(fixed: {n_src} source demos + {s.params.sim.engineering_hours:g} engineering hours "
        f"= {money(s.sim.fixed, cur)}). Break-even volume: {count(s.break_even)} successful "
        f"episodes."
    )


def summary_dict(s: CostSummary, swings: dict[str, list[Swing]] | None = None) -> dict:
    d = {
        "currency": s.params.currency,
        "volume": s.volume,
        "break_even": s.break_even if math.isfinite(s.break_even) else None,
        "human": {**asdict(s.human), "per_demo": s.human.per_demo},
        "sim": {**asdict(s.sim), "compute": s.sim.compute, "per_episode": s.sim.per_episode},
        "measured": {
            **asdict(s.measure),
            "cpu_seconds_per_episode": s.measure.cpu_seconds_per_episode,
            "gpu_seconds_per_episode": s.measure.gpu_seconds_per_episode,
        },
        "params": asdict(s.params),
        "note": closing_note(s),
    }
    if swings:
        d["sensitivity"] = {k: [asdict(b) for b in v] for k, v in swings.items()}
    return d


def markdown(s: CostSummary, images: dict[str, str]) -> str:
    rows = table_rows(s)
    lines = [
        "# demoforge cost report",
        "",
        f"Runs: {', '.join(f'`{r}`' for r in s.measure.runs) or '(none)'}  ",
        f"Volume: {count(s.volume)} successful episodes; currency: {s.params.currency}",
        "",
        "| per successful episode | human | sim |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        f"Break-even volume: **{count(s.break_even)}** successful episodes.",
        "",
        closing_note(s),
        "",
    ]
    for title, name in images.items():
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    return "\n".join(lines)


def html_page(md_title: str, s: CostSummary | None, body_md: str, images: dict[str, Path]) -> str:
    """A self-contained HTML page: the markdown's text and table, plots as data URIs."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(md_title)}"
        "</title><style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "td{text-align:right}td:first-child{text-align:left}img{max-width:100%}</style>"
        "</head><body>"
    ]
    table: list[str] = []
    for line in body_md.splitlines():
        if line.startswith("|"):
            if set(line.replace("|", "").strip()) <= {"-", ":"}:
                continue
            cells = [c.strip().replace("**", "") for c in line.strip("|").split("|")]
            tag = "th" if not table else "td"
            table.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
            )
            continue
        if table:
            parts.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("!["):
            continue
        if line.startswith("# "):
            parts.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line.strip().replace('**', '').replace('`', ''))}</p>")
    if table:
        parts.append("<table>" + "".join(table) + "</table>")
    for title, p in images.items():
        b64 = base64.b64encode(Path(p).read_bytes()).decode("ascii")
        parts.append(
            f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{b64}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_cost_report(s: CostSummary, out: str | Path, spread: float = 0.5) -> dict[str, Path]:
    """Write ``cost.md``, ``cost.html`` (plots embedded), ``cost.json`` and the two PNGs.

    Returns:
        name -> path of every file written.
    """
    from sim.io.atomic import atomic_write_json, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cur = s.params.currency
    swings = {
        f"human cost per demo [{cur}]": sensitivity(
            s.params, s.measure, metric_human_per_demo, spread
        ),
        "break-even volume [episodes]": sensitivity(s.params, s.measure, metric_break_even, spread),
        f"sim cost per episode at {count(s.volume)} [{cur}]": sensitivity(
            s.params, s.measure, metric_sim_per_episode(s.volume), spread
        ),
    }
    files = {
        "tornado": plot_tornado(swings, out / "cost_tornado.png", "sensitivity", cur),
        "volume": plot_volume(s, out / "cost_volume.png"),
    }
    images = {"Sensitivity (tornado)": files["tornado"], "Cost vs volume": files["volume"]}
    md = markdown(s, {k: v.name for k, v in images.items()})
    atomic_write_text(out / "cost.md", md)
    atomic_write_text(out / "cost.html", html_page("demoforge cost report", s, md, images))
    atomic_write_json(out / "cost.json", finite(summary_dict(s, swings)))
    files.update(md=out / "cost.md", html=out / "cost.html", json=out / "cost.json")
    return files


def finite(o):
    """JSON-safe copy: non-finite floats (an unreachable break-even) become ``None``."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    return o
