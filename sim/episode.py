"""The Episode: the one contract between readers, transforms, writers, envs and the bridge.

One episode = one attempt at one task, sampled at a fixed ``fps``; every per-step array has
leading length T. Frames: all poses are in the scene's world frame; a pose is position [m] +
quaternion **w, x, y, z** (MuJoCo order). Readers fill what their source has and leave the rest
empty; consumers call :meth:`Episode.require` to fail with the field's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import SchemaError

#: Version of the feature schema below; stored in every dataset's metadata.
#: 1.1 adds what augmentation and reset-to-state need: commanded EE targets and gripper commands
#: per arm, per-step segment labels with their reference object, the full MuJoCo state per step
#: and the joint -> arm map.
SCHEMA_VERSION = "1.1"

#: Field name -> (per-step trailing shape description, unit/frame). Documentation and validation.
FEATURES: dict[str, str] = {
    "time": "(T,) seconds from episode start",
    "qpos": "(T, n) robot joint positions [rad or m], columns = joint_names",
    "qvel": "(T, n) robot joint velocities [rad/s or m/s], columns = joint_names",
    "action": "(T, m) commands, columns = action_names (absolute joint targets + gripper [0,1])",
    "ee": "arm -> (T, 7) end-effector pose in world frame: pos [m] + quat w,x,y,z",
    "gripper": "arm -> (T,) opening in [0, 1], 0 = closed",
    "objects": "object -> (T, 7) pose in world frame: pos [m] + quat w,x,y,z",
    "subtasks": "signal -> (T,) bool",
    "images": "camera -> (T, H, W, 3) uint8 (may be a lazy loader)",
    # schema 1.1
    "target": "arm -> (T, 7) commanded EE target in world frame: pos [m] + quat w,x,y,z",
    "gripper_cmd": "arm -> (T,) commanded gripper opening in [0, 1], 0 = closed",
    "segment": "arm -> (T,) str subtask segment label ('' = none)",
    "segment_ref": "arm -> (T,) str reference object of the segment ('' = world/robot motion)",
    "state": "(T, k) full MuJoCo state per step (mj_getState with spec `state_spec`)",
    "arm_joints": "arm -> joint names of that arm (subset of joint_names)",
}

#: Fields added by schema 1.1 (all optional; readers of older data leave them empty).
SCHEMA_1_1_FIELDS = ("target", "gripper_cmd", "segment", "segment_ref", "state", "arm_joints")


@dataclass
class EpisodeMeta:
    """Per-episode metadata.

    Attributes:
        task: registered task name (or the source's task id).
        robot: robot name.
        fps: sampling rate of every per-step array [Hz].
        source: where it came from: "scripted", "hardware", "generated" or "<file>#<episode id>".
        success: task success judged by physics; None when unknown (e.g. ingested real data).
        seed: episode seed (derived from run seed and episode index), None if not simulated.
        instruction: natural-language task string.
        provenance: transforms, perturbations, config hash, source episode, ...
    """

    task: str
    robot: str
    fps: float
    source: str = "scripted"
    success: bool | None = None
    seed: int | None = None
    instruction: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION
    software_version: str = ""

    def __post_init__(self) -> None:
        if not self.software_version:
            from sim import __version__

            self.software_version = __version__


LazyImages = Callable[[], np.ndarray]


@dataclass
class Episode:
    """A time-indexed recording of one attempt at one task (see module docstring for frames)."""

    meta: EpisodeMeta
    time: np.ndarray
    joint_names: list[str] = field(default_factory=list)
    qpos: np.ndarray | None = None
    qvel: np.ndarray | None = None
    action_names: list[str] = field(default_factory=list)
    action: np.ndarray | None = None
    ee: dict[str, np.ndarray] = field(default_factory=dict)
    gripper: dict[str, np.ndarray] = field(default_factory=dict)
    objects: dict[str, np.ndarray] = field(default_factory=dict)
    subtasks: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray | LazyImages] = field(default_factory=dict)
    # schema 1.1 (optional)
    target: dict[str, np.ndarray] = field(default_factory=dict)
    gripper_cmd: dict[str, np.ndarray] = field(default_factory=dict)
    segment: dict[str, np.ndarray] = field(default_factory=dict)
    segment_ref: dict[str, np.ndarray] = field(default_factory=dict)
    state: np.ndarray | None = None
    state_spec: int | None = None  # mujoco.mjtState bits of `state` (mjSTATE_INTEGRATION)
    arm_joints: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.time))

    @property
    def arms(self) -> list[str]:
        """Arm names that have an EE track."""
        return list(self.ee)

    def image(self, camera: str) -> np.ndarray:
        """Frames of one camera as (T, H, W, 3) uint8, loading lazily if needed."""
        if camera not in self.images:
            raise SchemaError(
                f"episode has no camera {camera!r}; cameras present: {sorted(self.images)}"
            )
        frames = self.images[camera]
        if callable(frames):
            frames = np.asarray(frames())
            self.images[camera] = frames
        return frames

    def require(self, *names: str) -> None:
        """Raise SchemaError naming the first missing/empty field among ``names``."""
        for name in names:
            value = getattr(self, name)
            if value is None or (isinstance(value, (dict, list)) and len(value) == 0):
                raise SchemaError(
                    f"episode ({self.meta.source}) has no {name!r}; this step needs it "
                    f"({FEATURES.get(name, name)})"
                )

    def validate(self) -> Episode:
        """Check shapes, dtypes, finiteness and quaternion norms; return self or raise."""
        src = self.meta.source
        T = len(self)
        if self.meta.fps <= 0:
            raise SchemaError(f"{src}: meta.fps must be > 0, got {self.meta.fps}")
        t = np.asarray(self.time)
        if t.ndim != 1:
            raise SchemaError(f"{src}: 'time' must be 1-D (T,), got shape {t.shape}")
        if T and not np.all(np.isfinite(t)):
            raise SchemaError(f"{src}: 'time' has NaN/inf")
        if T > 1 and np.any(np.diff(t) <= 0):
            raise SchemaError(f"{src}: 'time' must be strictly increasing")
        for name, names in (
            ("qpos", self.joint_names),
            ("qvel", self.joint_names),
            ("action", self.action_names),
        ):
            arr = getattr(self, name)
            if arr is None:
                continue
            _check_array(src, name, arr, (T, len(names)) if names else (T, None))
        groups = (
            ("ee", 7),
            ("gripper", None),
            ("objects", 7),
            ("subtasks", None),
            ("target", 7),
            ("gripper_cmd", None),
            ("segment", None),
            ("segment_ref", None),
        )
        for group, width in groups:
            for key, arr in getattr(self, group).items():
                shape = (T, width) if width else (T,)
                numeric = group not in ("subtasks", "segment", "segment_ref")
                _check_array(src, f"{group}[{key!r}]", arr, shape, finite=numeric)
                if width == 7:
                    _check_quat(src, f"{group}[{key!r}]", np.asarray(arr)[:, 3:])
        if self.state is not None:
            _check_array(src, "state", self.state, (T, None))
            if self.state_spec is None:
                raise SchemaError(f"{src}: 'state' is set but 'state_spec' is None")
        for arm, joints in self.arm_joints.items():
            missing = [j for j in joints if j not in self.joint_names]
            if missing:
                raise SchemaError(
                    f"{src}: arm_joints[{arm!r}] names joints {missing} not in joint_names"
                )
        for cam, frames in self.images.items():
            if callable(frames):
                continue
            frames = np.asarray(frames)
            if frames.ndim != 4 or frames.shape[0] != T or frames.shape[-1] != 3:
                raise SchemaError(
                    f"{src}: images[{cam!r}] must be (T={T}, H, W, 3), got {frames.shape}"
                )
            if frames.dtype != np.uint8:
                raise SchemaError(f"{src}: images[{cam!r}] must be uint8, got {frames.dtype}")
        return self

    def slice(self, start: int, stop: int) -> Episode:
        """Steps [start, stop) as a new Episode (time re-based to 0)."""

        def cut(x):
            return None if x is None else np.asarray(x)[start:stop]

        return dataclasses.replace(
            self,
            time=np.asarray(self.time)[start:stop] - np.asarray(self.time)[start],
            qpos=cut(self.qpos),
            qvel=cut(self.qvel),
            action=cut(self.action),
            ee={k: cut(v) for k, v in self.ee.items()},
            gripper={k: cut(v) for k, v in self.gripper.items()},
            objects={k: cut(v) for k, v in self.objects.items()},
            subtasks={k: cut(v) for k, v in self.subtasks.items()},
            images={k: cut(self.image(k)) for k in self.images},
            target={k: cut(v) for k, v in self.target.items()},
            gripper_cmd={k: cut(v) for k, v in self.gripper_cmd.items()},
            segment={k: cut(v) for k, v in self.segment.items()},
            segment_ref={k: cut(v) for k, v in self.segment_ref.items()},
            state=cut(self.state),
        )


def _check_array(src: str, name: str, arr: Any, shape: tuple, finite: bool = True) -> None:
    a = np.asarray(arr)
    if a.ndim != len(shape) or any(
        s is not None and s != d for s, d in zip(shape, a.shape, strict=True)
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise SchemaError(f"{src}: {name!r} must have shape {want}, got {a.shape}")
    if finite and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        row = int(np.argwhere(~np.isfinite(a))[0][0])
        raise SchemaError(f"{src}: {name!r} has NaN/inf (first at step {row})")


def _check_quat(src: str, name: str, q: np.ndarray, tol: float = 1e-3) -> None:
    norms = np.linalg.norm(q, axis=-1)
    bad = np.abs(norms - 1.0) > tol
    if np.any(bad):
        row = int(np.argmax(bad))
        raise SchemaError(
            f"{src}: {name!r} quaternion at step {row} has norm {norms[row]:.4f}, expected 1 "
            "(pose must be pos[3] + unit quat w,x,y,z)"
        )


def stack_steps(steps: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Stack a list of per-step dicts into per-key arrays (helper for recorders)."""
    if not steps:
        return {}
    return {k: np.stack([np.asarray(s[k]) for s in steps]) for k in steps[0]}
