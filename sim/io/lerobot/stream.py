"""Encode an episode's camera frames to the dataset's mp4 in the worker that recorded it.

A generation worker pushes each step's frames into a :class:`VideoStream`; when the attempt
succeeds it encodes them and hands :class:`EncodedVideo` handles to the writer, which moves the
files into its staging folder instead of encoding again (no frames are pickled to the parent);
a failed attempt encodes nothing. The bytes equal
what :class:`~sim.io.lerobot.writer.LeRobotWriter` encodes from the same frames (one encoder,
:func:`~sim.io.lerobot.video._encode_mp4`), for any number of workers.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import SchemaError
from sim.io.lerobot.stats import _image_stats
from sim.io.lerobot.video import VideoOptions, _encode_mp4, decode_frames

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
    """Collects the frames of one attempt per camera and encodes them when it succeeds.

    Encoding happens in the worker that ran the attempt (not in the parent, and only for
    attempts that are kept), so workers encode in parallel and only file names travel back.
    A background encoding thread was measured to gain nothing here: PyAV holds the GIL for much
    of each frame, so it only slowed the simulation thread's Python (IK, recording).

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
        self._frames: dict[str, list[np.ndarray]] = {}

    def final_path(self, cam: str) -> Path:
        return self.dir / f"{self.name}.{cam}.mp4"

    def push(self, frames: dict[str, np.ndarray]) -> None:
        """Add one step's frames (camera -> (H, W, 3) uint8; the arrays must not be reused)."""
        for cam, img in frames.items():
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise SchemaError(
                    f"camera {cam!r}: frames must be (H, W, 3) uint8, got {img.dtype} {img.shape}"
                )
            self._frames.setdefault(cam, []).append(img)

    def finish(self) -> dict[str, EncodedVideo]:
        """Encode each camera to ``<name>.<camera>.mp4``; camera -> EncodedVideo."""
        self.dir.mkdir(parents=True, exist_ok=True)
        out = {}
        try:
            for cam, imgs in self._frames.items():
                frames = np.stack(imgs)
                _encode_mp4(self.final_path(cam), frames, self.fps, self.video)  # atomic
                out[cam] = EncodedVideo(
                    path=str(self.final_path(cam)),
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
        """Drop this attempt's frames and any file it left (a failed attempt)."""
        for cam in self._frames:
            self.final_path(cam).unlink(missing_ok=True)
        self._frames.clear()
