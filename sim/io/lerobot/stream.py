"""Encode an episode's camera frames to the dataset's mp4 while the episode is recorded.

A generation worker pushes each step's frames into a :class:`VideoStream`; a background thread
encodes them (x264 runs without the GIL) while the worker simulates and renders the next steps.
A successful attempt hands :class:`EncodedVideo` handles to the writer, which moves the files
into its staging folder instead of encoding again; a failed one deletes them. The bytes equal
what :class:`~sim.io.lerobot.writer.LeRobotWriter` encodes from the same frames (one encoder,
:class:`~sim.io.lerobot.video.Mp4Encoder`), for any number of workers.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import SchemaError
from sim.io.lerobot.stats import _image_stats
from sim.io.lerobot.video import Mp4Encoder, VideoOptions, decode_frames

#: staging sub-folder (inside ``<root>.partial``) where workers encode attempts' videos
SCRATCH = "encoding"


def scratch_dir(root: str | os.PathLike) -> Path:
    """Where workers encode videos for the dataset at ``root`` (removed at finalize)."""
    root = Path(root)
    return root.with_name(root.name + ".partial") / SCRATCH


@dataclass(frozen=True)
class EncodedVideo:
    """One camera of an episode, already encoded as mp4 (frame k at pts k/fps).

    Called like a lazy image loader, it decodes the frames, so any consumer still gets
    (T, H, W, 3) uint8 arrays; :class:`LeRobotWriter` moves the file instead.

    Attributes:
        path: the mp4 file.
        length, height, width: frames and size [px].
        fps: frame rate [Hz].
        video: the :class:`VideoOptions` (as a dict) it was encoded with.
        stats: LeRobot image stats of the frames (``_image_stats``).
    """

    path: str
    length: int
    height: int
    width: int
    fps: int
    video: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.length, self.height, self.width, 3)

    def __call__(self) -> np.ndarray:
        return decode_frames(self.path, 0.0, self.length, self.fps)


class VideoStream:
    """Encodes the frames of one attempt, per camera, on a background thread.

    Args:
        directory: scratch folder for the files (same file system as the dataset staging).
        name: file stem (e.g. ``attempt_000042``); files are ``<name>.<camera>.mp4``.
        fps: frame rate [Hz] (integer, as LeRobot requires).
        video: encoder settings.
    """

    def __init__(
        self, directory: str | os.PathLike, name: str, fps: int, video: VideoOptions | None = None
    ):
        self.dir, self.name, self.fps = Path(directory), name, int(fps)
        self.video = video or VideoOptions()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._frames: dict[str, list[np.ndarray]] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._encoders: dict[str, Mp4Encoder] = {}
        self._thread = threading.Thread(target=self._run, name=f"encode-{name}", daemon=True)
        self._thread.start()
        self._done = False

    def _tmp(self, cam: str) -> Path:
        return self.dir / f".{self.name}.{cam}.tmp.mp4"

    def final_path(self, cam: str) -> Path:
        return self.dir / f"{self.name}.{cam}.mp4"

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain: the caller learns of the error at finish()
            try:
                for cam, img in item.items():
                    enc = self._encoders.get(cam)
                    if enc is None:
                        h, w = img.shape[:2]
                        enc = self._encoders[cam] = Mp4Encoder(
                            self._tmp(cam), self.fps, h, w, self.video
                        )
                    enc.add(img)
            except BaseException as e:  # reported by finish()
                self._error = e

    def push(self, frames: dict[str, np.ndarray]) -> None:
        """Queue one step's frames (camera -> (H, W, 3) uint8; the arrays must not be reused)."""
        for cam, img in frames.items():
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise SchemaError(
                    f"camera {cam!r}: frames must be (H, W, 3) uint8, got {img.dtype} {img.shape}"
                )
            self._frames.setdefault(cam, []).append(img)
        self._queue.put(frames)

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> dict[str, EncodedVideo]:
        """Flush and close the files; camera -> EncodedVideo (files renamed to final names)."""
        self._stop()
        self._done = True
        try:
            if self._error is not None:
                raise self._error
            out = {}
            for cam, enc in self._encoders.items():
                enc.close()
                final = self.final_path(cam)
                os.chmod(self._tmp(cam), 0o644)
                os.replace(self._tmp(cam), final)
                frames = np.stack(self._frames[cam])
                out[cam] = EncodedVideo(
                    path=str(final),
                    length=len(frames),
                    height=int(frames.shape[1]),
                    width=int(frames.shape[2]),
                    fps=self.fps,
                    video=dataclasses.asdict(self.video),
                    stats=_image_stats(frames),
                )
            return out
        except BaseException:
            self.abort()
            raise
        finally:
            self._frames.clear()

    def abort(self) -> None:
        """Stop encoding and delete this attempt's files (a failed attempt)."""
        self._stop()
        self._done = True
        for cam, enc in self._encoders.items():
            try:
                enc.close(flush=False)
            except Exception:  # already closed or broken: the file goes anyway
                pass
            self._tmp(cam).unlink(missing_ok=True)
            self.final_path(cam).unlink(missing_ok=True)
        self._encoders.clear()
        self._frames.clear()
