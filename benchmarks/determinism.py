"""What is byte-identical between workers=1 and workers=2 (and across repeated runs)?

Runs ``--runs`` pairs of the same config (seed, 2 cameras) with workers=1 and workers=2 and
compares, per pair: state/action arrays, every data parquet file, every mp4 file, and decoded
video frames. Prints one table.

    python benchmarks/determinism.py --runs 10 --episodes 3
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np

from sim.generate import GenerateConfig, generate
from sim.io.lerobot import read_lerobot
from sim.render import CameraConfig


def digest(root: Path, pattern: str) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob(pattern))
    }


def arrays(root: Path) -> bytes:
    h = hashlib.sha256()
    for e in read_lerobot(root):
        for a in (e.qpos, e.qvel, e.action, *e.ee.values(), *e.objects.values()):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.digest()


def frames(root: Path) -> list[np.ndarray]:
    return [e.image(c) for e in read_lerobot(root) for c in sorted(e.images)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--task", default="stack_blocks")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="demoforge_det_"))
    cams = CameraConfig(("head", "right_wrist"), 84, 84)
    rows, ref = [], None
    try:
        for r in range(a.runs):
            out = {}
            for w in (1, 2):
                cfg = GenerateConfig(
                    task=a.task,
                    episodes=a.episodes,
                    workers=w,
                    cameras=cams,
                    output=str(tmp / f"r{r}_w{w}"),
                )
                out[w] = Path(generate(cfg, progress=False).path)
            one, two = out[1], out[2]
            if ref is None:
                ref = one
            f1, f2 = frames(one), frames(two)
            rows.append(
                {
                    "state/action w1==w2": arrays(one) == arrays(two),
                    "parquet w1==w2": digest(one, "data/**/*.parquet")
                    == digest(two, "data/**/*.parquet"),
                    "mp4 bytes w1==w2": digest(one, "*.mp4") == digest(two, "*.mp4"),
                    "frames w1==w2": all(np.array_equal(x, y) for x, y in zip(f1, f2, strict=True)),
                    "max |frame diff|": max(
                        int(np.abs(x.astype(int) - y).max()) for x, y in zip(f1, f2, strict=True)
                    ),
                    "mp4 bytes == run 0": digest(two, "*.mp4") == digest(ref, "*.mp4"),
                }
            )
            for w in (1, 2):
                if r > 0:
                    shutil.rmtree(out[w])
    finally:
        keys = list(rows[0]) if rows else []
        print(f"{len(rows)} pairs of runs ({a.task}, {a.episodes} episodes, 2 cameras 84x84)")
        for k in keys:
            vals = [row[k] for row in rows]
            if isinstance(vals[0], bool):
                print(f"  {k:22s} {sum(vals)}/{len(vals)}")
            else:
                print(f"  {k:22s} max {max(vals)}")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
