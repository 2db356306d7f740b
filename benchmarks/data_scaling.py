"""Data-scaling experiment: BC success from source demos only vs 100 and 1,000 generated.

Reads conf/experiment/data_scaling.yaml (documented there), runs every missing part and writes
<output>/summary.json, summary.md (the table) and data_scaling.png (success with 95% Wilson
intervals per task and training set). Wall-clock time of each part is recorded; on a shared
machine read them as "measured under load".

    python benchmarks/data_scaling.py
    python benchmarks/data_scaling.py --tasks stack_blocks --seeds 0 --rollouts 50
    python benchmarks/data_scaling.py --quick --output /tmp/ds_quick   # plumbing check
    python benchmarks/data_scaling.py --summarize-only     # table from the finished cells

Cells run seed-major (every training set with seed 0, then seed 1, ...), so an interrupted run
already has every training set; finished cells are read back, not re-run.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "conf" / "experiment" / "data_scaling.yaml"
log = logging.getLogger("data_scaling")


def load_config(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    cfg = yaml.safe_load(path.read_text())
    if args.tasks:
        cfg["tasks"] = args.tasks
    if args.seeds:
        cfg["seeds"] = args.seeds
    if args.rollouts:
        cfg["eval"]["rollouts"] = args.rollouts
    if args.output:
        cfg["output"] = args.output
    if args.steps:
        cfg["learn_overrides"].setdefault("train", {})["steps"] = args.steps
    if args.quick:  # minutes, not hours: every stage runs, numbers mean nothing
        cfg["source"]["episodes"] = 3
        cfg["generate"]["episodes"] = 8
        cfg["arms"] = [
            {"name": "source_3", "data": "source", "episodes": 3},
            {"name": "generated_8", "data": "generated", "episodes": 8},
        ]
        cfg["seeds"] = cfg["seeds"][:1]
        cfg["learn_overrides"] = {
            "policy": {"hidden": 64, "layers": 2},
            "train": {"steps": 50, "batch_size": 64, "warmup": 5},
        }
        cfg["eval"].update(rollouts=3, video_rollouts=1)
    return cfg


def _timed(timings: dict[str, float], key: str, fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    timings[key] = round(time.perf_counter() - t, 1)
    return out


def datasets(cfg: dict[str, Any], task: str, timings: dict[str, float]) -> dict[str, Path]:
    """Source demos (scripted at the source level) and the generated set; cached on disk."""
    from sim.generate import AugmentConfig, GenerateConfig, generate
    from sim.render import CameraConfig

    data = Path(cfg["output"]) / "data"
    s, g = cfg["source"], cfg["generate"]
    src = data / f"{task}_source{s['episodes']}_{s['level']}_seed{s['seed']}"
    gen = data / f"{task}_generated{g['episodes']}_{g['level']}_seed{g['seed']}"
    none = CameraConfig(names=())
    cache = data / f"{task}_timings.json"  # generation times survive cached re-runs
    if cache.exists():
        timings.update(json.loads(cache.read_text()))
    if not src.exists():
        _timed(
            timings,
            "source_s",
            generate,
            GenerateConfig(
                task=task,
                robot=cfg["robot"],
                episodes=s["episodes"],
                seed=s["seed"],
                level=s["level"],
                control_hz=cfg["control_hz"],
                cameras=none,
                output=str(src),
                progress=False,
            ),
        )
    if not gen.exists():
        res = _timed(
            timings,
            "generate_s",
            generate,
            GenerateConfig(
                task=task,
                robot=cfg["robot"],
                episodes=g["episodes"],
                seed=g["seed"],
                level=g["level"],
                control_hz=cfg["control_hz"],
                cameras=none,
                output=str(gen),
                source=str(src),
                workers=g["workers"],
                max_attempts=g.get("max_attempts"),
                augment=AugmentConfig(noise=g["noise"]),
                progress=True,
            ),
        )
        timings["generate_success_rate"] = round(res.success_rate, 3)
        timings["generated_episodes"] = res.episodes
    cache.write_text(json.dumps(timings))
    return {"source": src, "generated": gen}


def learn_preset(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    preset = yaml.safe_load((ROOT / "conf" / "learn" / f"{cfg['learn']}.yaml").read_text())
    for group, values in (cfg.get("learn_overrides") or {}).items():
        preset.setdefault(group, {}).update(values)
    return preset


def cell_dir(cfg: dict[str, Any], task: str, arm: dict[str, Any], seed: int) -> Path:
    return Path(cfg["output"]) / "runs" / task / f"{arm['name']}_seed{seed}"


def run_cell(cfg, task, arm, seed, paths) -> dict[str, Any]:
    from sim.learn.policy import PolicyConfig
    from sim.learn.run import EvalConfig, TrainEvalConfig, train_eval
    from sim.learn.train import TrainConfig

    out = cell_dir(cfg, task, arm, seed)
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    preset = learn_preset(cfg)
    e = cfg["eval"]
    return train_eval(
        TrainEvalConfig(
            dataset=str(paths[arm["data"]]),
            output=str(out),
            task=task,
            episodes=arm["episodes"],
            policy=PolicyConfig(**preset["policy"]),
            train=TrainConfig(**{**preset["train"], "seed": seed}),
            eval=EvalConfig(
                rollouts=e["rollouts"],
                level=e["level"],
                seed=e["seed"],
                video_rollouts=e["video_rollouts"],
            ),
            overwrite=True,
        )
    )


def summarize(cfg: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    from sim.learn.evaluate import wilson_interval

    table = []
    for task in cfg["tasks"]:
        for arm in cfg["arms"]:
            cells = [r for r in rows if r["task"] == task and r["arm"] == arm["name"]]
            if not cells:
                continue
            k = sum(c["successes"] for c in cells)
            n = sum(c["rollouts"] for c in cells)
            lo, hi = wilson_interval(k, n)
            table.append(
                {
                    "task": task,
                    "arm": arm["name"],
                    "episodes": cells[0]["episodes"],
                    "success_rate": k / n,
                    "ci95": [lo, hi],
                    "successes": k,
                    "rollouts": n,
                    "per_seed": {c["seed"]: c["success_rate"] for c in cells},
                    "train_s": sum(c["train_s"] for c in cells),
                    "eval_s": sum(c["eval_s"] for c in cells),
                }
            )
    return {"table": table, "rows": rows}


def write_outputs(cfg: dict[str, Any], summary: dict[str, Any], timings: dict) -> None:
    out = Path(cfg["output"])
    out.mkdir(parents=True, exist_ok=True)
    summary = {**summary, "timings_s": timings, "config": cfg}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "| task | training set | episodes | success | 95% CI | rollouts | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["table"]:
        per = ", ".join(f"{v:.0%}" for v in r["per_seed"].values())
        lines.append(
            f"| {r['task']} | {r['arm']} | {r['episodes']} | {r['success_rate']:.1%} "
            f"| {r['ci95'][0]:.1%}-{r['ci95'][1]:.1%} | {r['rollouts']} | {per} |"
        )
    lines += ["", "| task | part | seconds |", "|---|---|---|"]
    for task, t in timings.items():
        for k, v in t.items():
            lines.append(f"| {task} | {k} | {v} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if summary["table"]:
        _plot(summary["table"], out / "data_scaling.png")


def _plot(table: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = list(dict.fromkeys(r["task"] for r in table))
    arms = list(dict.fromkeys(r["arm"] for r in table))
    fig, ax = plt.subplots(figsize=(1.8 + 2.2 * len(tasks), 3.4))
    w = 0.8 / max(len(arms), 1)
    for j, arm in enumerate(arms):
        xs, ys, err = [], [], [[], []]
        for i, task in enumerate(tasks):
            r = next((r for r in table if r["task"] == task and r["arm"] == arm), None)
            if r is None:
                continue
            xs.append(i + (j - (len(arms) - 1) / 2) * w)
            ys.append(r["success_rate"])
            err[0].append(r["success_rate"] - r["ci95"][0])
            err[1].append(r["ci95"][1] - r["success_rate"])
        ax.bar(xs, ys, w, yerr=np.array(err), capsize=3, label=arm)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set(
        ylabel="closed-loop success",
        ylim=(0, 1.05),
        title="BC success vs training data (95% Wilson intervals)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--tasks", nargs="+")
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--rollouts", type=int)
    p.add_argument("--steps", type=int, help="training steps per policy")
    p.add_argument("--output")
    p.add_argument("--quick", action="store_true", help="tiny everything: a plumbing check")
    p.add_argument(
        "--summarize-only",
        action="store_true",
        help="generate and train nothing: write the table from the cells already finished",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    cfg = load_config(args.config, args)
    rows: list[dict[str, Any]] = []
    timings: dict[str, dict[str, float]] = {}
    for task in cfg["tasks"]:
        t_task = time.perf_counter()
        tt = timings.setdefault(task, {})
        if args.summarize_only:
            cache = Path(cfg["output"]) / "data" / f"{task}_timings.json"
            tt.update(json.loads(cache.read_text()) if cache.exists() else {})
            paths = {}
        else:
            paths = datasets(cfg, task, tt)
        for seed in cfg["seeds"]:
            for arm in cfg["arms"]:
                done = cell_dir(cfg, task, arm, seed) / "metrics.json"
                if args.summarize_only and not done.exists():
                    continue
                m = run_cell(cfg, task, arm, seed, paths)
                ev = m["eval"]
                rows.append(
                    {
                        "task": task,
                        "arm": arm["name"],
                        "seed": seed,
                        "episodes": m["episodes"],
                        "successes": ev["successes"],
                        "rollouts": ev["rollouts"],
                        "success_rate": ev["success_rate"],
                        "ci95": ev["ci95"],
                        "train_s": m["timing_s"].get("train_s", 0.0),
                        "eval_s": m["timing_s"]["eval_s"],
                    }
                )
                log.info(
                    "%s %s seed %d: %d/%d", task, arm["name"], seed, ev["successes"], ev["rollouts"]
                )
                tt[f"{arm['name']}_seed{seed}_train_s"] = round(rows[-1]["train_s"], 1)
                tt[f"{arm['name']}_seed{seed}_eval_s"] = round(rows[-1]["eval_s"], 1)
        if not args.summarize_only:
            tt["task_total_s"] = round(time.perf_counter() - t_task, 1)
        write_outputs(cfg, summarize(cfg, rows), timings)  # after each task: partial table
    return summarize(cfg, rows)


if __name__ == "__main__":
    main()
