"""Hardware-bridge benchmark over loopback: loop rate/jitter, round trips, watchdog and NaN hold
latency, fuzz throughput; with the twin's physics cost as a ratio of raw mj_step.

Usage: python benchmarks/bridge.py [--seconds 2] [--watchdog-trials 20] [--fuzz 10000]

The robot side (tiny_arm twin behind the safety layer) runs in its own process, as in
deployment; everything talks through the real client. The record-style loop runs twice: over
plain loopback TCP and over CURVE (authenticated + encrypted, allow-listed client key), and the
round trips are printed side by side with their ratio (both servers run at once and the loops
alternate in short blocks, so both links see the same load). Prints one JSON object per section
and a short summary table. Wall-clock numbers depend on machine load: on a shared machine,
report them as "measured under load".
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import mujoco
import numpy as np

from sim.bridge.backends import tiny_arm_spec
from sim.bridge.client import BridgeClient
from sim.bridge.config import ServeConfig
from sim.bridge.faults import flood, fuzz_frames
from sim.bridge.keys import CurveConfig, keygen, load_client_keys
from sim.bridge.loop import RateLoop
from sim.bridge.process import ServerProcess
from sim.cli.bridge import hardware_from_dict

WATCHDOG_S = 0.1


def bare_loop(fps: float, seconds: float) -> dict:
    """Empty RateLoop: the pacing precision alone."""
    loop = RateLoop(fps)
    for _ in range(int(fps * seconds)):
        loop.wait()
    return {"fps": fps, **loop.stats.summary()}


def client_loop(c: BridgeClient, fps: float, seconds: float) -> dict:
    """Record-style loop through the bridge: get_observation + send_action per tick."""
    loop = RateLoop(fps)
    c.stats.rtt_s.clear()
    hold = np.concatenate([c.get_observation()["qpos"], [0.5]])
    for _ in range(int(fps * seconds)):
        c.get_observation()
        c.send_action(hold)
        loop.wait()
    return {"fps": fps, **loop.stats.summary(), **c.stats.summary()}


def paired_rtt(plain: BridgeClient, curve: BridgeClient, fps: float, seconds: float) -> dict:
    """The record-style loop on two servers at once, plain and CURVE, in alternating short
    blocks (8 per link), so both see the same machine load; round trips per link."""
    rtt: dict[str, list[float]] = {"plain": [], "curve": []}
    blocks = 8
    for k in range(2 * blocks):
        name, c = ("plain", plain) if k % 2 == 0 else ("curve", curve)
        c.stats.rtt_s.clear()
        client_loop(c, fps, seconds / blocks)
        rtt[name] += c.stats.rtt_s
    out: dict = {"fps": fps}
    for name, r in rtt.items():
        a = np.asarray(r)
        out[name] = {
            "n": int(a.size),
            "p50_s": float(np.median(a)),
            "p99_s": float(np.percentile(a, 99)),
        }
    out["ratio_p50"] = out["curve"]["p50_s"] / out["plain"]["p50_s"]
    out["ratio_p99"] = out["curve"]["p99_s"] / out["plain"]["p99_s"]
    return out


def watchdog_latency(c: BridgeClient, trials: int) -> dict:
    """Time from the last command to the robot-side hold (deadline WATCHDOG_S)."""
    lat = []
    for _ in range(trials):
        c.send_action(np.concatenate([c.get_observation()["qpos"], [0.5]]))
        time.sleep(WATCHDOG_S * 1.6)
        lat.append(c.heartbeat()["stats"]["watchdog_latency_s"][-1])
    a = np.asarray(lat)
    return {
        "deadline_s": WATCHDOG_S,
        "n": len(a),
        "mean_s": float(a.mean()),
        "p99_s": float(np.percentile(a, 99)),
        "max_s": float(a.max()),
        "detection_delay_max_s": float(a.max() - WATCHDOG_S),
    }


def nan_hold(c: BridgeClient, trials: int) -> dict:
    """NaN command -> robot-side hold event, and -> arm at rest (|qvel| < 0.05 rad/s)."""
    to_hold, to_rest = [], []
    for _ in range(trials):
        c.reset_estop()
        q0 = c.get_observation()["qpos"]
        for k in range(15):  # move at the velocity limit
            c.send_action(np.concatenate([q0 + [0.06 * (k + 1), 0, 0], [0.5]]))
            time.sleep(0.02)
        t = time.monotonic()
        try:
            c.send_action(np.array([np.nan, 0, 0, 0.5]))
        except Exception:  # noqa: BLE001 - SafetyError expected
            pass
        to_hold.append(c.heartbeat()["stats"]["last_hold"]["t"] - t)
        while time.monotonic() - t < 1.0:
            if np.abs(c.get_observation()["qvel"]).max() < 0.05:
                break
        to_rest.append(time.monotonic() - t)
        c.send_action(np.concatenate([c.get_observation()["qpos"], [0.5]]))
        for _ in range(50):  # back to the start, slowly
            c.send_action(np.concatenate([q0, [0.5]]))
            time.sleep(0.02)
    h, r = np.asarray(to_hold), np.asarray(to_rest)
    return {
        "n": trials,
        "to_hold_max_s": float(h.max()),
        "to_hold_mean_s": float(h.mean()),
        "to_rest_mean_s": float(r.mean()),
        "to_rest_max_s": float(r.max()),
    }


def fuzz(endpoint: str, c: BridgeClient, n: int, curve=None) -> dict:
    before = c.heartbeat()["server"]
    frames = fuzz_frames(np.random.default_rng(0), n // 2, n - n // 2, 20, 65536)
    t = time.monotonic()
    replies = flood(endpoint, frames, curve=curve)
    dt = time.monotonic() - t
    c.reset_estop()
    c.get_observation()  # still serving
    after = c.heartbeat()["server"]
    d = {
        k: after[k] - before[k]
        for k in (
            "received",
            "malformed",
            "oversized",
            "stale",
            "no_session",
            "version_mismatch",
            "expired",
            "errors",
            "refused_control",
            "non_holder_at_driver",
            "internal_errors",
        )
    }
    return {
        "frames": len(frames),
        "replies": replies,
        "seconds": dt,
        "frames_per_s": len(frames) / dt,
        **d,
        "survived": True,
    }


def physics_ratio() -> dict:
    """Twin physics cost: raw mj_step rate of the tiny arm vs the real-time need (500 Hz)."""
    m = tiny_arm_spec().compile()
    d = mujoco.MjData(m)
    n = 20000
    t = time.perf_counter()
    mujoco.mj_step(m, d, nstep=n)
    rate = n / (time.perf_counter() - t)
    return {
        "raw_mj_step_per_s": rate,
        "realtime_need_per_s": 1 / m.opt.timestep,
        "headroom_x": rate * m.opt.timestep,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--watchdog-trials", type=int, default=20)
    ap.add_argument("--fuzz", type=int, default=10_000)
    args = ap.parse_args()
    out = {"physics": physics_ratio()}
    out["bare_loop"] = [bare_loop(f, args.seconds) for f in (50, 250, 500)]
    base = dict(
        name="bench",
        robot="tiny_arm",
        fps=50,
        endpoint="tcp://127.0.0.1:*",
        safety={"max_step": 0.1, "max_velocity": 4.0, "watchdog_s": WATCHDOG_S},
        server={"max_msg_bytes": 65536, "operators": ["operator-console"]},  # fuzz: no takeover
    )
    with ServerProcess(ServeConfig(hardware=hardware_from_dict(base))) as p:
        c = BridgeClient(p.endpoint)
        c.connect()
        try:
            out["client_loop"] = [client_loop(c, f, args.seconds) for f in (50, 200)]
            out["watchdog"] = watchdog_latency(c, args.watchdog_trials)
            out["nan_hold"] = nan_hold(c, 5)
            out["fuzz"] = fuzz(p.endpoint, c, args.fuzz)
        finally:
            c.disconnect()
    with tempfile.TemporaryDirectory() as tmp:  # the same loop, authenticated and encrypted
        keys = Path(tmp) / "keys"
        keygen(keys, ("bench", "fuzzer"))
        curve = {"server_secret": str(keys / "server.key_secret"), "allow": str(keys / "clients")}
        ck = {
            n: load_client_keys(
                CurveConfig(
                    server_public=str(keys / "server.key"),
                    client_secret=str(keys / f"{n}.key_secret"),
                )
            )
            for n in ("bench", "fuzzer")
        }
        curve_hw = hardware_from_dict({**base, "curve": curve})
        with (
            ServerProcess(ServeConfig(hardware=hardware_from_dict(base))) as p_plain,
            ServerProcess(ServeConfig(hardware=curve_hw)) as p_curve,
        ):
            c_plain = BridgeClient(p_plain.endpoint)
            c_curve = BridgeClient(p_curve.endpoint, curve=ck["bench"])
            c_plain.connect()
            c_curve.connect()
            try:
                out["rtt_plain_vs_curve"] = [
                    paired_rtt(c_plain, c_curve, f, args.seconds) for f in (50, 200)
                ]
                out["fuzz_curve"] = fuzz(p_curve.endpoint, c_curve, args.fuzz, curve=ck["fuzzer"])
            finally:
                c_curve.disconnect()
                c_plain.disconnect()
    out["load"] = {"loadavg_1min": os.getloadavg()[0], "cpus": os.cpu_count()}
    for k, v in out.items():
        print(json.dumps({k: v}))
    ms = 1e3
    print("\n| metric | value |\n|---|---|")
    for b in out["bare_loop"]:
        print(
            f"| bare loop {b['fps']:.0f} Hz | {b['rate_hz']:.2f} Hz, |err| mean "
            f"{b['mean_s'] * ms:.3f} / p99 {b['p99_s'] * ms:.3f} / max "
            f"{b['max_s'] * ms:.3f} ms |"
        )
    for b in out["client_loop"]:
        print(
            f"| client loop {b['fps']:.0f} Hz (obs+act) | {b['rate_hz']:.2f} Hz, |err| p99 "
            f"{b['p99_s'] * ms:.3f} / max {b['max_s'] * ms:.3f} ms, rtt p50 "
            f"{b['rtt_p50_s'] * ms:.3f} / p99 {b['rtt_p99_s'] * ms:.3f} ms |"
        )
    print(
        "\n| round trip (obs + act per tick) | plain p50 / p99 [ms] | CURVE p50 / p99 [ms] "
        "| CURVE / plain |\n|---|---|---|---|"
    )
    for r in out["rtt_plain_vs_curve"]:
        pl, cu = r["plain"], r["curve"]
        print(
            f"| {r['fps']:.0f} Hz | {pl['p50_s'] * ms:.3f} / {pl['p99_s'] * ms:.3f} "
            f"| {cu['p50_s'] * ms:.3f} / {cu['p99_s'] * ms:.3f} "
            f"| {r['ratio_p50']:.2f}x (p99 {r['ratio_p99']:.2f}x) |"
        )
    ld = out["load"]
    print(f"(1-min load average {ld['loadavg_1min']:.1f} on {ld['cpus']} CPUs)\n")
    w = out["watchdog"]
    print(
        f"| watchdog (deadline {w['deadline_s'] * ms:.0f} ms) | last cmd -> hold mean "
        f"{w['mean_s'] * ms:.1f} / max {w['max_s'] * ms:.1f} ms |"
    )
    n = out["nan_hold"]
    print(
        f"| NaN command | -> hold max {n['to_hold_max_s'] * ms:.1f} ms, -> at rest mean "
        f"{n['to_rest_mean_s'] * ms:.0f} / max {n['to_rest_max_s'] * ms:.0f} ms |"
    )
    f = out["fuzz"]
    print(
        f"| fuzz | {f['frames']} frames, {f['replies']} replies, {f['frames_per_s']:.0f}/s, "
        f"malformed {f['malformed']}, oversized {f['oversized']}, stale {f['stale']}, "
        f"no-session {f['no_session']}, survived |"
    )
    f = out["fuzz_curve"]
    print(
        f"| fuzz over CURVE | {f['frames']} frames, {f['replies']} replies, "
        f"{f['frames_per_s']:.0f}/s, refused (no control) {f['refused_control']}, "
        f"non-holder at driver {f['non_holder_at_driver']}, internal errors "
        f"{f['internal_errors']} |"
    )
    ph = out["physics"]
    print(
        f"| twin physics | raw mj_step {ph['raw_mj_step_per_s']:.0f}/s = "
        f"{ph['headroom_x']:.0f}x real time |"
    )


if __name__ == "__main__":
    main()
