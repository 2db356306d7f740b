"""Generation throughput vs raw MuJoCo on the same model, in the same run.

Usage: python benchmarks/generate.py [--episodes 30] [--size 84] [--workers 1 2]
                                     [--source scripted|demos] [--breakdown]

Runs the full pipeline (reset -> plan source -> IK -> physics -> 2 cameras -> LeRobot v3
dataset with mp4s) for stack_blocks at 20 Hz and prints episodes/min (also normalised to
100-control-step episodes, the MimicGen-style reference), physics steps/s, frames/s, and the
ratios to raw ``mj_step`` and to a raw ``mujoco.Renderer`` on the same model **with the same
visual flags** as the pipeline's ``fast`` preset (no shadows/reflections/skybox, no MSAA).
The raw references run in as many processes at once as the pipeline has workers (workers=2 is
compared with two cores of bare MuJoCo, not one). The raw renderer draws the states recorded in
the generated episodes (the same arm poses and views as the pipeline) and the whole scene for
each camera; the pipeline draws only the geoms in each camera's view frustum (same pixels,
``sim/frustum.py``), so its image path can beat it. A camera cell is also compared with
bare MuJoCo doing the same work: replaying the episodes' actions with ``mj_step`` and drawing
both cameras with a plain renderer at every control step ("raw replay+render").
``--source demos`` first records 10 scripted source demos, then times augmentation from them
(the task's planner is not called while timing). ``--breakdown`` adds one-worker runs without and
with cameras, timers around each stage (render, physics, IK, recording, writer): where a control
step's time goes, what limits the rate, the physics share of the no-camera wall (the ratio to
raw replay measured inside one run, immune to the machine's drift) and the image path's own
rate, also against the raw renderer in alternating blocks (drift-free).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from sim.generate import GenerateConfig, generate  # noqa: E402
from sim.io import read_episodes  # noqa: E402
from sim.render import CameraConfig, model_quality, set_scene_flags  # noqa: E402
from sim.tasks import build_scene  # noqa: E402

CAMS = ("head", "right_wrist")


def raw_mj_step(model: mujoco.MjModel, data: mujoco.MjData, n: int = 20000) -> float:
    """Physics steps/s of bare mj_step on the scene (robot holding home, blocks resting)."""
    t = time.perf_counter()
    for _ in range(n):
        mujoco.mj_step(model, data)
    return n / (time.perf_counter() - t)


def _raw_scene():
    scene = build_scene("demoforge_humanoid", "stack_blocks")
    scene.reset(np.random.default_rng(0), "D0")
    return scene


def _raw_one(kind: str, arg, size: int, barrier=None) -> float:
    """One process's raw rate: "step" (static mj_step), "replay" (``arg`` = dataset path) or
    "render" (frames/s over the benchmark cameras, drawing the states of the episodes in
    dataset ``arg`` if given, else the reset scene); the clock starts after ``barrier``."""
    if kind == "replay":
        return raw_replay(arg, barrier=barrier)
    if kind == "replay_render":
        return raw_replay(arg, barrier=barrier, size=size)
    scene = _raw_scene()
    if kind == "render":
        cams = [scene.robot.cameras[c] for c in CAMS]
        states = _states(arg) if arg else None
        return raw_renderer(scene.model, scene.data, size, cams, barrier=barrier, states=states)
    if barrier is not None:
        barrier.wait()
    return raw_mj_step(scene.model, scene.data)


def _raw_worker(kind, arg, size, barrier, out) -> None:
    out.put(_raw_one(kind, arg, size, barrier))


def raw_parallel(workers: int, kind: str = "step", arg=None, size: int = 84) -> float:
    """Total raw rate (see :func:`_raw_one`) of ``workers`` processes at once, so a pipeline
    with that many workers is compared with as many busy cores running bare MuJoCo: each does
    the same work, so the total is ``workers`` x the slowest one's rate."""
    if workers == 1:
        return _raw_one(kind, arg, size)
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    args = (kind, arg, size, barrier, out)
    procs = [ctx.Process(target=_raw_worker, args=args) for _ in range(workers)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return workers * min(rates)


def raw_replay(path: str, n_episodes: int = 5, barrier=None, size: int | None = None) -> float:
    """Physics steps/s of bare ``mj_step`` replaying generated episodes' actions (same model,
    same contacts as in the pipeline: grasps, pushes, stacking), from each one's first state;
    timing starts after ``barrier`` (other processes replaying at once), if given. With
    ``size``, a plain ``mujoco.Renderer`` (same flags) also draws the benchmark cameras at every
    control step, as a bare MuJoCo loop that records images would (the pixels are kept)."""
    eps = list(read_episodes(path))[:n_episodes]
    scene = build_scene("demoforge_humanoid", "stack_blocks")
    m, d = scene.model, scene.data
    r = plain_renderer(m, size) if size else None
    cams = [scene.robot.cameras[c] for c in CAMS]
    if barrier is not None:
        barrier.wait()
    steps, t = 0, 0.0
    for ep in eps:
        mujoco.mj_setState(m, d, np.asarray(ep.state[0], np.float64), int(ep.state_spec))
        actions = np.asarray(ep.action, np.float64)
        frames = []
        t0 = time.perf_counter()
        for a in actions:
            if r is not None:
                for c in cams:
                    r.update_scene(d, camera=c)
                    frames.append(r.render())
            scene.set_action(a)
            mujoco.mj_step(m, d, nstep=scene.n_substeps)
        t += time.perf_counter() - t0
        steps += len(actions) * scene.n_substeps
    if r is not None:
        r.close()
    return steps / t


def plain_renderer(model: mujoco.MjModel, size: int, quality: str = "fast") -> mujoco.Renderer:
    """A plain mujoco.Renderer with the MSAA, tessellation and scene flags of ``quality``."""
    with model_quality(model, quality):  # the same MSAA and tessellation as the pipeline
        r = mujoco.Renderer(model, size, size)
    set_scene_flags(r.scene, quality)
    return r


def raw_renderer(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    size: int,
    cams,
    n: int = 1000,
    quality: str = "fast",
    barrier=None,
    states: tuple[np.ndarray, int] | None = None,
):
    """Frames/s of a plain mujoco.Renderer with the visual flags of ``quality`` over the cameras
    (the clock starts after ``barrier``, if given). With ``states`` ((N, nstate) array, state
    spec), each step's cameras draw the next recorded state (restoring it is not timed), so the
    arm, blocks and views are those of the pipeline's episodes."""
    r = plain_renderer(model, size, quality)
    for i in range(10):  # warm-up (shader compilation)
        r.update_scene(data, camera=cams[i % len(cams)])
        r.render()
    if barrier is not None:
        barrier.wait()
    spent = 0.0
    for i in range(n):
        if states is not None and i % len(cams) == 0:
            arr, spec = states
            mujoco.mj_setState(model, data, arr[(i // len(cams)) % len(arr)], spec)
            mujoco.mj_forward(model, data)
        t = time.perf_counter()
        r.update_scene(data, camera=cams[i % len(cams)])
        r.render()
        spent += time.perf_counter() - t
    r.close()
    return n / spent


def render_interleaved(
    path: str, size: int, blocks: int = 10, steps: int = 160
) -> dict[str, list[float]]:
    """Frames/s ratios to a raw mujoco.Renderer (same flags, same cameras) drawing the same
    recorded states, in alternating blocks in one process: each block triple sees the same
    machine speed, so the ratios carry no drift. "render": the pipeline's CameraRig alone;
    "image path": CameraRig plus the worker's mp4 encoding and image stats of the block as one
    episode (:class:`VideoStream`, what a kept attempt costs beyond physics)."""
    from sim.io.lerobot.stream import VideoStream
    from sim.render import CameraRig

    scene = _raw_scene()
    m, d = scene.model, scene.data
    arr, spec = _states(path)
    cams = {c: scene.robot.cameras[c] for c in CAMS}
    rig = CameraRig(m, cams, size, size)
    raw = plain_renderer(m, size)
    scratch = tempfile.mkdtemp(prefix="demoforge_bench_video_")
    fps = round(1 / scene.control_dt)

    def block(k: int, draw, done=None) -> float:
        spent = 0.0
        for i in range(steps):
            mujoco.mj_setState(m, d, arr[(k * steps + i) % len(arr)], spec)
            mujoco.mj_forward(m, d)
            t = time.perf_counter()
            draw()
            spent += time.perf_counter() - t
        if done is not None:
            t = time.perf_counter()
            done()
            spent += time.perf_counter() - t
        return steps * len(cams) / spent

    def draw_raw() -> None:
        for c in cams.values():
            raw.update_scene(d, camera=c)
            raw.render()

    stream = VideoStream(scratch, "bench", fps)
    block(0, draw_raw), block(0, lambda: rig.render(d))  # warm-up
    block(0, lambda: stream.push(rig.render(d)), stream.finish)
    out: dict[str, list[float]] = {"render": [], "image path": []}
    for k in range(blocks):
        r = block(k, draw_raw)
        out["render"].append(block(k, lambda: rig.render(d)) / r)
        out["image path"].append(block(k, lambda: stream.push(rig.render(d)), stream.finish) / r)
    raw.close()
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    return out


def _states(path: str, n_episodes: int = 5) -> tuple[np.ndarray, int]:
    """The recorded MuJoCo states of a dataset's first episodes, (N, nstate), and their spec."""
    eps = list(read_episodes(path))[:n_episodes]
    return np.concatenate([np.asarray(e.state, np.float64) for e in eps]), int(eps[0].state_spec)


def refs(workers: int, size: int, replay_path: str | None, cams: bool = False) -> dict:
    """The raw references on ``workers`` processes: static mj_step, renderer, and the replay
    of generated episodes once there are some (None before), with ``cams`` also rendering the
    cameras at every control step (the like-for-like reference of a camera cell)."""
    return {
        "step": raw_parallel(workers),
        "render": raw_parallel(workers, "render", replay_path, size=size),
        "replay": raw_parallel(workers, "replay", replay_path) if replay_path else None,
        "replay_render": raw_parallel(workers, "replay_render", replay_path, size=size)
        if replay_path and cams
        else None,
    }


def _mean(a: float | None, b: float | None) -> float | None:
    vals = [v for v in (a, b) if v]
    return sum(vals) / len(vals) if vals else None


def _pair(before: dict, after: dict, key: str) -> str:
    return "/".join("-" if d[key] is None else f"{d[key]:,.0f}" for d in (before, after))


def record_sources(tmp: Path, n: int = 10) -> str:
    """n scripted stack_blocks demos (no cameras) as the source dataset for ``--source demos``."""
    cfg = GenerateConfig(episodes=n, output=str(tmp / "sources"), cameras=CameraConfig(names=()))
    return generate(cfg, progress=False).path


def run(
    tmp: Path, label: str, episodes: int, workers: int, cams, size: int, source: str, params: dict
) -> tuple:
    cfg = GenerateConfig(
        episodes=episodes,
        workers=workers,
        output=str(tmp / label),
        source=source,
        source_params=params,
        cameras=CameraConfig(names=cams, height=size, width=size),
    )
    t = time.perf_counter()
    res = generate(cfg, progress=False)
    wall = time.perf_counter() - t
    info = json.loads((Path(res.path) / "meta" / "info.json").read_text())
    return res, wall, info["total_frames"]


def breakdown(
    tmp: Path, episodes: int, size: int, source: str, params: dict, cams=CAMS
) -> tuple[dict[str, float], float, int]:
    """One in-process run with wall-clock timers around each stage; prints ms per control step
    and returns (seconds per stage, wall [s], control steps)."""
    import sim.control.ik as ik_mod
    import sim.io.lerobot.stream as stream_mod
    import sim.io.lerobot.writer as writer_mod
    import sim.model.scene as scene_mod
    import sim.render as render_mod
    import sim.rollout as rollout_mod

    spent: dict[str, float] = {}
    targets = {
        "render (2 cameras)": (render_mod.CameraRig, "render"),
        "video encode (mp4, in the worker)": (stream_mod.VideoStream, "finish"),
        "physics (mj_step)": (scene_mod.Scene, "step"),
        "IK": (ik_mod.ArmIK, "solve"),
        "record (obs, subtasks, state)": (rollout_mod.Recorder, "add"),
        "writer (parquet, stats, mp4 move)": (writer_mod.LeRobotWriter, "add"),
    }
    originals = {}
    for label, (cls, name) in targets.items():
        fn = getattr(cls, name)
        originals[label] = fn

        def timed(*a, _fn=fn, _label=label, **kw):
            t = time.perf_counter()
            try:
                return _fn(*a, **kw)
            finally:
                spent[_label] = spent.get(_label, 0.0) + time.perf_counter() - t

        setattr(cls, name, timed)
    what = f"{len(cams)} cameras" if cams else "no cameras"
    try:
        r, wall, frames = run(
            tmp, f"breakdown_{len(cams)}", episodes, 1, cams, size, source, params
        )
    finally:
        for label, (cls, name) in targets.items():
            setattr(cls, name, originals[label])
    print(f"breakdown (workers=1, {what}, {frames} control steps, {wall:.1f} s wall):")
    rest = wall - sum(spent.values())
    for label, sec in [*spent.items(), ("everything else (plan, reset, report, ...)", rest)]:
        print(f"  {label:42s} {1000 * sec / frames:6.2f} ms/step  {100 * sec / wall:5.1f} %")
    return spent, wall, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--size", type=int, default=84)
    ap.add_argument("--workers", type=int, nargs="+", default=[1])
    ap.add_argument("--source", default="scripted", choices=("scripted", "demos"))
    ap.add_argument("--breakdown", action="store_true", help="time each stage (one worker)")
    args = ap.parse_args()

    scene = _raw_scene()
    print(
        f"model: nq={scene.model.nq} nbody={scene.model.nbody} ngeom={scene.model.ngeom}; "
        f"source={args.source}, {args.episodes} episodes, {len(CAMS)} cameras "
        f"{args.size}x{args.size} (fast preset)"
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        params = {"path": record_sources(tmp)} if args.source == "demos" else {}
        replay_path = None
        base = base_raw = None
        print(
            "(raw rates are measured right before and right after each cell and the ratios use"
            " their mean: this machine's speed drifts)"
        )
        for w in args.workers:
            for label, cams in (("no cameras", ()), ("2 cameras", CAMS)):
                # raw references on as many processes as the pipeline has workers, measured
                # before and after the cell; the ratios use the mean of the two
                before = refs(w, args.size, replay_path, bool(cams))
                r, wall, frames = run(
                    tmp, f"{label}_w{w}", args.episodes, w, cams, args.size, args.source, params
                )
                replay_path = replay_path or (r.path if not cams else None)
                after = refs(w, args.size, replay_path, bool(cams))
                step_rate, render_fps, replay_rate, with_cams = (
                    _mean(before[k], after[k])
                    for k in ("step", "render", "replay", "replay_render")
                )
                steps = frames * scene.n_substeps
                epm = 60 * r.episodes / wall
                per100 = epm * (frames / r.episodes) / 100
                raw = f"raw before/after: mj_step {_pair(before, after, 'step')}/s"
                if replay_rate:
                    raw += f", replay {_pair(before, after, 'replay')}/s"
                if with_cams:
                    raw += f", replay+render {_pair(before, after, 'replay_render')}/s"
                vs = (
                    f"x{steps / wall / with_cams:.2f} raw replay+render"
                    if with_cams
                    else f"x{steps / wall / replay_rate:.2f} raw replay"
                    if replay_rate
                    else ""
                )
                line = (
                    f"workers={w} {label:10s} {epm:6.1f} episodes/min ({per100:6.1f} per "
                    f"100-step episode), {steps / wall:8,.0f} physics steps/s "
                    f"(x{steps / wall / step_rate:.2f} raw mj_step"
                    + (f", {vs}" if vs else "")
                    + f"), DGR {r.episodes}/{r.attempts}"
                )
                if cams:
                    fps = frames * len(CAMS) / wall
                    line += f", {fps:,.0f} frames/s (x{fps / render_fps:.2f} raw renderer)"
                    raw += f", renderer {_pair(before, after, 'render')} frames/s"
                    if base is None:
                        base, base_raw = per100, with_cams
                    else:
                        line += f", x{per100 / base:.2f} vs workers={args.workers[0]}"
                        if with_cams and base_raw:  # what the machine itself scales by
                            line += f" (bare MuJoCo replay+render: x{with_cams / base_raw:.2f})"
                print(line + f"  [{raw}]", flush=True)
        if args.breakdown:
            # no cameras: the physics share of the wall is the ratio to raw replay that a
            # drift-free machine would show (mj_step inside the pipeline runs the same contacts)
            spent, wall, _ = breakdown(tmp, args.episodes, args.size, args.source, params, ())
            share = spent.get("physics (mj_step)", 0.0) / wall
            print(f"physics share of the no-camera wall: x{share:.2f} (same-run ratio to replay)")
            # 2 cameras: the image path against the raw renderer measured before and after
            before = raw_parallel(1, "render", replay_path, size=args.size)
            spent, wall, frames = breakdown(tmp, args.episodes, args.size, args.source, params)
            render_fps = _mean(before, raw_parallel(1, "render", replay_path, size=args.size))
            image = sum(
                spent.get(k, 0.0)
                for k in ("render (2 cameras)", "video encode (mp4, in the worker)")
            )
            fps = frames * len(CAMS) / image
            for what, ratios in render_interleaved(replay_path, args.size).items():
                print(
                    f"{what} vs raw renderer on the same states, interleaved blocks: median "
                    f"x{float(np.median(ratios)):.2f} (x{min(ratios):.2f}-x{max(ratios):.2f})"
                )
            print(
                f"image path alone (render + readback + encode): {fps:,.0f} frames/s "
                f"(x{fps / render_fps:.2f} raw renderer at {render_fps:,.0f} frames/s, "
                "which neither batches cameras nor encodes)"
            )
    print("reference: MimicGen on robosuite 1.5.2 here: 5.3 episodes/min (100 steps, 2 cams 84x84)")


if __name__ == "__main__":
    main()
