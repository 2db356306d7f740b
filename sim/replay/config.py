"""Typed replay configuration: the schema of ``conf/replay.yaml`` (and ``demoforge-replay``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from sim.errors import ConfigError, UnknownNameError

MODES = ("ee", "joint", "kinematic")


@dataclass(frozen=True)
class ReplayConfig:
    """One replay.

    Attributes:
        source: dataset directory or file (LeRobot, robomimic, robosuite, RLDS, teleop log).
        format: "auto" or a format name (see :data:`sim.io.FORMATS`).
        episode: episode index in the source.
        robot: target robot: a robot dict (group ``conf/robot``), a name or a YAML path.
        task: task of the scene: ``{name, params}`` (group ``conf/task``), a name, or None.
        mode: "ee" (IK tracking), "joint" (open-loop joint targets), "kinematic" (no physics).
        ee_frame: "calibrated", "object", "world" or "auto" (world if same robot).
        model: kinematic mode: MJCF path (default: the robot's MJCF).
        output: directory for report.json + replay.mp4.
        seed: scene reset seed (default: the episode's seed, else 0).
        scale: calibrated EE mode: translation scale (target / source arm length).
        camera: robot/MJCF camera name; None = free camera looking at the torso.
        height, width: video size [px]; stride: kinematic mode renders every stride-th frame.
        control_hz: scene control rate [Hz]; source tracks are resampled to it.
        joint_map: source joint -> target joint/action name (default: match by name).
        arm_map: source arm -> scene arm (default: same names).
        object_map: ee_frame=object: source object -> scene object.
    """

    source: str
    format: str = "auto"
    episode: int = 0
    robot: Any = "demoforge_humanoid"
    task: Any = None
    mode: str = "ee"
    ee_frame: str = "auto"
    model: Optional[str] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    output: str = "replay_out"
    seed: Optional[int] = None  # noqa: UP045
    scale: float = 1.0
    camera: Optional[str] = None  # noqa: UP045
    height: int = 240
    width: int = 320
    stride: int = 1
    control_hz: float = 20.0
    joint_map: dict[str, str] = field(default_factory=dict)
    arm_map: dict[str, str] = field(default_factory=dict)
    object_map: dict[str, str] = field(default_factory=dict)

    def validate(self) -> ReplayConfig:
        """Check values before anything is read or written; return self or raise."""
        if self.mode not in MODES:
            raise UnknownNameError("replay mode", self.mode, MODES)
        from sim.io import FORMATS

        formats = (*FORMATS, "auto", "mimicgen")
        if self.format not in formats:
            raise UnknownNameError("format", self.format, formats)
        for key in ("height", "width", "stride"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"replay {key} must be >= 1, got {getattr(self, key)}")
        if self.control_hz <= 0:
            raise ConfigError(f"replay control_hz must be > 0, got {self.control_hz}")
        if self.episode < 0:
            raise ConfigError(f"replay episode must be >= 0, got {self.episode}")
        return self

    @staticmethod
    def from_mapping(cfg: Any) -> ReplayConfig:
        """From a plain dict (keys of conf/replay.yaml); unknown keys fail naming them."""
        if isinstance(cfg, ReplayConfig):
            return cfg
        known = set(ReplayConfig.__dataclass_fields__)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(
                f"unknown replay option(s) {unknown}; expected some of {sorted(known)}"
            )
        return ReplayConfig(**dict(cfg))
