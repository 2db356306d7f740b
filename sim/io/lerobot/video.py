"""Camera videos: H.264 encoding, stream-copy concatenation and frame-exact decoding."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from sim.errors import FormatError
from sim.io.atomic import atomic_path
from sim.io.lerobot.features import TIMESTAMP_TOL_S


@dataclass(frozen=True)
class VideoOptions:
    """H.264 encoder settings for the camera videos (libx264 through PyAV).

    Attributes:
        crf: constant rate factor (0 = lossless, 23 = x264 default, higher = smaller).
        preset: x264 speed preset.
        g: keyframe interval [frames]; small values make random access cheap.
        pix_fmt: pixel format; yuv420p plays everywhere (needs even width and height).
        threads: encoder threads. Fixed (never "auto"): x264's output bytes depend on its thread
            count, and "auto" derives it from the CPUs the process may use, so the same frames
            gave different mp4 bytes on machines/processes with another CPU count.
    """

    crf: int = 23
    preset: str = "veryfast"
    g: int = 2
    pix_fmt: str = "yuv420p"
    threads: int = 1

    def encoder_options(self) -> dict[str, str]:
        """Options passed to libx264 (no B-frames so packets are in display order)."""
        return {
            "crf": str(self.crf),
            "preset": self.preset,
            "g": str(self.g),
            "bf": "0",
            "threads": str(self.threads),
        }


class Mp4Encoder:
    """Incremental H.264 mp4 writer: frame k (uint8 RGB, H x W x 3) at pts k/fps.

    The one encoding path of the package (:func:`_encode_mp4` and the streaming encoder of
    :mod:`sim.io.lerobot.stream` both use it), so the same frames give the same mp4 bytes.
    """

    def __init__(self, path: str | os.PathLike, fps: int, height: int, width: int, opts):
        self.tb = Fraction(1, fps)
        self._out = av.open(str(path), "w", format="mp4")
        stream = self._out.add_stream("libx264", rate=fps)
        stream.width, stream.height = int(width), int(height)
        stream.pix_fmt = opts.pix_fmt
        stream.codec_context.time_base = self.tb
        stream.codec_context.thread_count = opts.threads
        stream.options = opts.encoder_options()
        self._stream, self.frames = stream, 0

    def add(self, img: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        frame.pts, frame.time_base = self.frames, self.tb
        self._out.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self, flush: bool = True) -> None:
        """Flush the encoder (unless aborting) and close the file."""
        try:
            if flush:
                self._out.mux(self._stream.encode(None))
        finally:
            self._out.close()


def _encode_mp4(path: Path, frames: np.ndarray, fps: int, opts: VideoOptions) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 mp4 with frame k at pts k/fps."""
    with atomic_path(path) as tmp:
        enc = Mp4Encoder(tmp, fps, frames.shape[1], frames.shape[2], opts)
        try:
            for img in frames:
                enc.add(img)
        except BaseException:
            enc.close(flush=False)
            raise
        enc.close()


def _concat_mp4(inputs: list[Path], lengths: list[int], out_path: Path, fps: int) -> list[float]:
    """Stream-copy mp4 files end to end (no re-encode); return each input's start time [s].

    Frame k of input i lands at pts ``sum(lengths[:i]) / fps + k / fps`` exactly.

    Raises:
        FormatError: an input does not hold ``lengths[i]`` frames at constant pts steps of 1/fps.
    """
    starts: list[float] = []
    with atomic_path(out_path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        ostream = None
        tb0 = None
        offset = 0  # in ticks of tb0
        done = 0  # frames
        for path, T in zip(inputs, lengths, strict=True):
            with av.open(str(path)) as inp:
                istream = inp.streams.video[0]
                tb = istream.time_base
                step = Fraction(1, fps) / tb
                if step.denominator != 1:
                    raise FormatError(
                        f"{path}: stream time_base {tb} is not a divisor of 1/{fps} s; "
                        "cannot place frames at exact k/fps timestamps"
                    )
                if ostream is None:
                    ostream = out.add_stream_from_template(istream, opaque=True)
                    ostream.time_base = tb0 = tb
                elif tb != tb0:
                    raise FormatError(f"{path}: time_base {tb}, expected {tb0} like {inputs[0]}")
                starts.append(done / fps)
                n = 0
                for packet in inp.demux(istream):
                    if packet.dts is None:
                        continue
                    if packet.pts != n * step.numerator:
                        raise FormatError(
                            f"{path}: packet {n} has pts {packet.pts}, expected "
                            f"{n * step.numerator} (constant frame rate {fps} fps, time_base {tb})"
                        )
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = ostream
                    out.mux(packet)
                    n += 1
                if n != T:
                    raise FormatError(f"{path}: holds {n} frames, expected {T}")
                offset += T * step.numerator
                done += T
    return starts


@dataclass(frozen=True)
class VideoClip:
    """Lazy loader of one episode's frames from an mp4: call it to get (T, H, W, 3) uint8.

    Frame k is the decoded frame at pts ``from_timestamp + k / fps`` (± 1e-4 s). With
    ``sha256`` (recorded by our writer) the file is checked first: a damaged video raises a
    FormatError instead of decoding to wrong pixels.
    """

    path: Path
    from_timestamp: float
    length: int
    fps: int
    sha256: str | None = None

    def __call__(self) -> np.ndarray:
        if self.sha256 is not None:
            _verify_once(Path(self.path), self.sha256)
        return decode_frames(self.path, self.from_timestamp, self.length, self.fps)


_VERIFIED: dict[tuple[str, int, int], str] = {}


def _verify_once(path: Path, digest: str) -> None:
    """Check a file's SHA-256 (cached per path, size and mtime)."""
    from sim.io.atomic import sha256_file

    try:
        st = path.stat()
    except OSError:
        raise FormatError(f"{path}: video file missing") from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _VERIFIED.get(key) == digest:
        return
    if sha256_file(path) != digest:
        raise FormatError(
            f"{path}: content does not match the checksum recorded in meta/info.json; the "
            "video file is damaged (truncated or modified)"
        )
    _VERIFIED[key] = digest


def decode_frames(
    path: str | os.PathLike, from_timestamp: float, length: int, fps: int
) -> np.ndarray:
    """Decode ``length`` frames at ``from_timestamp + k / fps`` [s] from a video file.

    Raises:
        FormatError: the file is missing/unreadable, or a frame's pts is not on the k/fps grid, or
            fewer than ``length`` frames exist from ``from_timestamp`` on.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: video file missing; expected {length} frames at {fps} fps")
    out: np.ndarray | None = None
    got = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            if from_timestamp > 0:
                container.seek(
                    int(from_timestamp / tb) - 1, stream=stream, backward=True, any_frame=False
                )
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb) - from_timestamp
                if t < -TIMESTAMP_TOL_S:
                    continue
                k = round(t * fps)
                if abs(t - k / fps) > TIMESTAMP_TOL_S:
                    raise FormatError(
                        f"{path}: frame at pts {float(frame.pts * tb):.6f} s is not on the "
                        f"{fps} fps grid starting at {from_timestamp} s (tolerance "
                        f"{TIMESTAMP_TOL_S} s)"
                    )
                if k >= length:
                    break
                img = frame.to_ndarray(format="rgb24")
                if out is None:
                    out = np.empty((length,) + img.shape, np.uint8)
                if k != got:
                    raise FormatError(
                        f"{path}: expected frame {got} at {from_timestamp + got / fps:.6f} s, "
                        f"next decoded frame is at {from_timestamp + k / fps:.6f} s"
                    )
                out[k] = img
                got += 1
    except av.FFmpegError as e:
        raise FormatError(f"{path}: cannot decode video: {e}") from e
    if got != length or out is None:
        raise FormatError(
            f"{path}: expected {length} frames from {from_timestamp} s at {fps} fps, decoded {got}"
        )
    return out
