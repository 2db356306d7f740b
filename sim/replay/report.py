"""The report every replay mode returns (JSON-serializable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.io.atomic import atomic_write_json


@dataclass
class ReplayReport:
    """What a replay did and how well it tracked.

    Attributes:
        mode: "kinematic", "joint" or "ee" (+ ``ee_frame`` for EE replays).
        source: the episode's source string; ``frames`` its length, ``fps`` its rate [Hz].
        steps: replayed steps (after resampling to the scene's control rate) [-].
        ee_pos_err: arm -> {"mean", "max"} distance desired target vs achieved EE [m].
        ee_rot_err: arm -> {"mean", "max"} rotation angle desired vs achieved [rad].
        joint_err: joint -> {"rms", "max"} commanded/source vs achieved position [rad or m].
        success: task success judged by physics; None without a task or physics.
        video: mp4 path, ``video_frames`` its frame count, ``video_size`` (H, W) [px].
    """

    mode: str
    source: str
    robot: str
    task: str | None
    frames: int
    fps: float
    steps: int = 0
    ee_frame: str | None = None
    scale: float = 1.0
    ee_pos_err: dict[str, dict[str, float]] = field(default_factory=dict)
    ee_rot_err: dict[str, dict[str, float]] = field(default_factory=dict)
    joint_err: dict[str, dict[str, float]] = field(default_factory=dict)
    mapped_joints: dict[str, str] = field(default_factory=dict)
    unmatched_joints: list[str] = field(default_factory=list)
    success: bool | None = None
    video: str | None = None
    video_frames: int = 0
    video_size: tuple[int, int] | None = None
    video_stride: int = 1
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ee_pos_err_mean(self) -> float:
        """Mean EE position error over arms [m] (nan if none)."""
        v = [e["mean"] for e in self.ee_pos_err.values()]
        return float(np.mean(v)) if v else float("nan")

    @property
    def ee_rot_err_mean(self) -> float:
        """Mean EE orientation error over arms [rad] (nan if none)."""
        v = [e["mean"] for e in self.ee_rot_err.values()]
        return float(np.mean(v)) if v else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | Path) -> Path:
        """Write the report as JSON, atomically."""
        atomic_write_json(path, self.to_dict())
        return Path(path)


def err_stats(x: np.ndarray) -> dict[str, float]:
    """{"mean", "max"} of an error series."""
    return {"mean": float(np.mean(x)), "max": float(np.max(x))}


def joint_stats(e: np.ndarray) -> dict[str, float]:
    """{"rms", "max"} of an absolute joint error series."""
    return {"rms": float(np.sqrt(np.mean(e**2))), "max": float(e.max())}
