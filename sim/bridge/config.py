"""Typed configs of the bridge commands: one frozen dataclass per YAML group.

``conf/hardware/<name>.yaml`` maps to :class:`HardwareConfig` (its sections to the real
dataclasses of each part: :class:`~sim.bridge.safety.SafetyConfig`,
:class:`~sim.bridge.twin.TwinConfig`, :class:`~sim.bridge.server.ServerConfig`,
:class:`~sim.bridge.keys.CurveConfig`, :class:`DdsSection`), and ``conf/bridge/<command>.yaml``
to :class:`ServeConfig`, :class:`RecordConfig`, :class:`ReplayConfig`, :class:`CompareConfig`,
:class:`KeygenConfig`. The command line (``sim.cli.bridge``) builds them with
``OmegaConf.structured``, so an unknown key or a wrong type fails at start-up naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sim.bridge.keys import CurveConfig
from sim.bridge.safety import SafetyConfig
from sim.bridge.server import ServerConfig
from sim.bridge.twin import TwinConfig
from sim.errors import ConfigError


@dataclass(frozen=True)
class DdsSection:
    """``hardware.dds``: Unitree DDS link (:class:`~sim.bridge.unitree_dds.DdsConfig` fields)
    plus the joint map.

    Attributes:
        domain_id / interface / peers / robot / fps_max / state_timeout_s / connect_timeout_s /
            publish_hz / mode_pr: see ``DdsConfig`` (``fps`` comes from ``hardware.fps``).
        joints: our joint name -> motor slot (None = the twin's joints in slots 0..).
        grippers: ``<arm>_gripper`` -> slot (-1 = no gripper on this topic).
        lower / upper: action bounds, required with explicit ``joints``.
        kp / kd: stiffness [N m/rad] / damping [N m s/rad], one value or per joint name.
        hold_kp / hold_kd / unmapped: how slots that are not ours are commanded.
    """

    domain_id: int = 1
    interface: str = "lo"
    peers: tuple[str, ...] = ("127.0.0.1",)
    robot: str = "unitree_g1"
    fps_max: float = 500.0
    state_timeout_s: float = 0.5
    connect_timeout_s: float = 3.0
    publish_hz: float | None = None
    mode_pr: int = 0
    joints: dict[str, int] | None = None
    grippers: dict[str, int] = field(default_factory=dict)
    lower: tuple[float, ...] | None = None
    upper: tuple[float, ...] | None = None
    kp: Any = 60.0
    kd: Any = 1.5
    hold_kp: float = 80.0
    hold_kd: float = 2.0
    unmapped: str = "hold"


@dataclass(frozen=True)
class HardwareConfig:
    """One ``conf/hardware/<name>.yaml``: which robot, how it is reached, its safety limits.

    Attributes:
        name: config name.
        driver: robot-side driver: "twin", "unitree_dds" (client side of DDS) or
            "lerobot:<robot_type>".
        transport: "zmq" (demoforge wire protocol) or "dds" (Unitree LowCmd/LowState).
        endpoint: ZeroMQ address of the server (zmq transport). Off loopback it needs ``curve``.
        robot: twin backend: "tiny_arm", "mjcf:<path>" or "scene:<robot>/<task>".
        fps: control rate [Hz].
        timeout_s: client request deadline [s].
        client: name this PC reports to the server (audit label).
        safety: limits, enforced on the robot side (``dt`` defaults to ``1 / fps``).
        twin: imperfections of the simulated robot.
        server: transport and control settings of the robot side.
        curve: CURVE key files (both sides; each side reads its own).
        dds: Unitree DDS link and joint map.
        lerobot: keyword arguments of the LeRobot robot config.
    """

    name: str = "twin"
    driver: str = "twin"
    transport: str = "zmq"
    endpoint: str = "tcp://127.0.0.1:5555"
    robot: str = "scene:demoforge_humanoid/stack_blocks"
    fps: float = 20.0
    timeout_s: float = 0.2
    client: str = "demoforge"
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    twin: TwinConfig = field(default_factory=TwinConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    curve: CurveConfig = field(default_factory=CurveConfig)
    dds: DdsSection = field(default_factory=DdsSection)
    lerobot: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transport not in ("zmq", "dds"):
            raise ConfigError(f"hardware.transport must be 'zmq' or 'dds', got {self.transport!r}")
        if not self.fps > 0:
            raise ConfigError(f"hardware.fps must be > 0, got {self.fps}")

    @property
    def safety_cfg(self) -> SafetyConfig:
        """The safety limits with ``dt`` resolved to ``1 / fps`` when unset."""
        if self.safety.dt is not None:
            return self.safety
        return dataclasses.replace(self.safety, dt=1.0 / self.fps)


@dataclass(frozen=True)
class ServeConfig:
    """``serve``: run the robot side. ``ready_file`` gets the bound endpoint when serving."""

    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    ready_file: str | None = None
    max_s: float | None = None


@dataclass(frozen=True)
class RecordConfig:
    """``record``: N episodes from the robot into a dataset.

    Attributes:
        out: dataset directory.
        n_episodes / steps: how many episodes of how many control steps.
        task: task string stored in the dataset.
        fmt: "lerobot" or "npz".
        policy: "hold" (observe only) or "sine" (a small joint-space test motion).
        reset_seed: reset a simulated robot before episode i with seed ``reset_seed + i``.
        audit: store the server's audit trail beside the episodes (``meta/bridge_audit.jsonl``
            in a LeRobot dataset, ``bridge_audit.jsonl`` in an npz directory).
    """

    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    out: str = "outputs/bridge_record"
    n_episodes: int = 1
    steps: int = 100
    task: str = "bridge_record"
    fmt: str = "lerobot"
    overwrite: bool = False
    policy: str = "hold"
    reset_seed: int | None = None
    audit: bool = True


@dataclass(frozen=True)
class ReplayConfig:
    """``replay``: one episode's actions on the robot, after a dry run on a local twin."""

    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    episodes: str = ""
    index: int = 0
    dry_run: bool = True
    max_dry_run_clamp: float = 0.05
    home_s: float = 1.0
    reset_sim: bool = True
    report: str | None = None


@dataclass(frozen=True)
class CompareConfig:
    """``compare``: the same actions on a local twin and on the robot; divergence report.

    ``robot_twin`` replaces the robot by a local twin with those imperfections (for trying the
    tool without hardware); otherwise the robot is reached through ``hardware``.
    """

    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    out: str = "outputs/bridge_compare"
    steps: int = 200
    amplitude: float = 0.2
    episodes: str | None = None
    index: int = 0
    robot_twin: TwinConfig | None = None


@dataclass(frozen=True)
class KeygenConfig:
    """``keygen``: CURVE key pairs for the server and each named client, into ``out``."""

    out: str = "bridge_keys"
    clients: tuple[str, ...] = ("client",)
