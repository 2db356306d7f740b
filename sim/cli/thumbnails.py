"""`python -m sim.cli.thumbnails`: head-camera thumbnails of every task and room (PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    import imageio.v3 as iio

    from sim.tasks import known_tasks
    from sim.thumbnails import render_task

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="scenes/thumbnails")
    ap.add_argument("--size", default="480x640")
    ap.add_argument("--tasks", default=",".join(known_tasks()))
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rooms_done: set[str] = set()
    for task in args.tasks.split(","):
        room, frame = render_task(task, h, w)
        iio.imwrite(out / f"{task}.png", frame)
        if room not in rooms_done:
            iio.imwrite(out / f"room_{room}.png", frame)
            rooms_done.add(room)
        print(f"{task} ({room}) -> {out / f'{task}.png'}")


if __name__ == "__main__":
    main()
