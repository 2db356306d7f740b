"""Scaling of Ray-sharded generation: 1 vs 2 Ray workers on a local cluster, same episodes.

    python benchmarks/ray_scaling.py --episodes 12

Prints wall time, episodes/min and the scaling efficiency (speed-up / workers) against one Ray
worker, and checks that both runs wrote the same state/action bytes as a single-process run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from sim.generate import GenerateConfig, generate
from sim.io.lerobot import read_lerobot
from sim.render import CameraConfig


def arrays(path: str) -> bytes:
    return b"".join(
        np.ascontiguousarray(a, np.float32).tobytes()
        for e in read_lerobot(path)
        for a in (e.qpos, e.action)
    )


def main() -> None:
    import ray

    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--size", type=int, default=84)
    a = ap.parse_args()
    cams = CameraConfig(("head", "right_wrist"), a.size, a.size)
    with tempfile.TemporaryDirectory() as d:
        ref = generate(
            GenerateConfig(episodes=a.episodes, output=f"{d}/local", cameras=cams), progress=False
        )
        rows = {}
        for w in (1, 2):
            t = time.perf_counter()
            res = generate(
                GenerateConfig(
                    episodes=a.episodes,
                    output=f"{d}/ray{w}",
                    cameras=cams,
                    executor="ray",
                    workers=w,
                ),
                progress=False,
            )
            rows[w] = (time.perf_counter() - t, res)
            ray.shutdown()  # the next run starts a cluster of its own size
        same = all(arrays(r.path) == arrays(ref.path) for _, r in rows.values())
        print(
            f"{a.episodes} episodes, 2 cameras {a.size}x{a.size}, local Ray cluster "
            f"(start-up included); identical to single-process: {same}"
        )
        base = rows[1][0]
        for w, (wall, r) in rows.items():
            print(
                f"  ray workers={w}: {wall:6.1f} s, {60 * r.episodes / wall:5.1f} episodes/min, "
                f"speed-up x{base / wall:.2f}, efficiency {base / wall / w:.0%}"
            )


if __name__ == "__main__":
    main()
