"""Command-line functions of the bridge: ``serve``, ``record``, ``replay``, ``compare``.

Each takes one small frozen dataclass; Hydra (``demoforge-bridge``, conf/hardware/*.yaml) builds
them with :func:`hardware_from_dict` etc. and calls these plain functions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.bridge.client import BridgeClient
from sim.bridge.compare import CompareReport, compare_drivers, sine_actions
from sim.bridge.protocol import Driver, action_from_observation
from sim.bridge.record import (
    RecordResult,
    ReplayResult,
    load_episodes,
    open_sink,
    record_episodes,
    replay_episode,
)
from sim.bridge.safety import SafetyConfig, SafetyLayer
from sim.bridge.server import ServerConfig
from sim.bridge.server import serve as serve_driver
from sim.bridge.twin import TwinConfig, TwinDriver, load_backend
from sim.errors import ConfigError

log = logging.getLogger("sim.bridge")


@dataclass(frozen=True)
class HardwareConfig:
    """One ``conf/hardware/<name>.yaml``: which robot, how it is reached, its safety limits.

    Attributes:
        name: config name.
        driver: robot-side driver: "twin", "unitree_dds" (client side of DDS) or
            "lerobot:<robot_type>".
        transport: "zmq" (demoforge wire protocol) or "dds" (Unitree LowCmd/LowState).
        endpoint: ZeroMQ address of the server (zmq transport).
        robot: twin backend: "tiny_arm", "mjcf:<path>" or "scene:<robot>/<task>".
        fps: control rate [Hz].
        timeout_s: client request deadline [s].
        safety: :class:`SafetyConfig` fields.
        twin: :class:`TwinConfig` fields.
        server: :class:`ServerConfig` fields.
        dds: :class:`~sim.bridge.unitree_dds.DdsConfig` fields plus ``joints``/``grippers``
            (name -> motor slot; default: the twin's joints in slots 0.., grippers after), ``kp``,
            ``kd``, ``hold_kp``, ``hold_kd``, ``unmapped``.
        lerobot: keyword arguments of the LeRobot robot config.
    """

    name: str = "twin"
    driver: str = "twin"
    transport: str = "zmq"
    endpoint: str = "tcp://127.0.0.1:5555"
    robot: str = "scene:demoforge_humanoid/stack_blocks"
    fps: float = 20.0
    timeout_s: float = 0.2
    safety: dict[str, Any] = field(default_factory=dict)
    twin: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    dds: dict[str, Any] = field(default_factory=dict)
    lerobot: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transport not in ("zmq", "dds"):
            raise ConfigError(f"hardware.transport must be 'zmq' or 'dds', got {self.transport!r}")
        SafetyConfig.from_dict(self.safety)  # fail early, naming the bad key
        TwinConfig.from_dict(self.twin)
        _server_cfg(self.server)

    @property
    def safety_cfg(self) -> SafetyConfig:
        d = dict(self.safety)
        d.setdefault("dt", 1.0 / self.fps)
        return SafetyConfig.from_dict(d)


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

    ``robot_twin`` (TwinConfig fields) replaces the robot by a local twin with those
    imperfections (for trying the tool without hardware); otherwise the robot is reached through
    ``hardware``.
    """

    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    out: str = "outputs/bridge_compare"
    steps: int = 200
    amplitude: float = 0.2
    episodes: str | None = None
    index: int = 0
    robot_twin: dict[str, Any] | None = None


def _dc_from_dict(cls: type, d: Mapping[str, Any] | None, where: str) -> Any:
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; expected {sorted(names)}")
    if "hardware" in d and not isinstance(d["hardware"], HardwareConfig):
        d["hardware"] = _dc_from_dict(HardwareConfig, d["hardware"], f"{where}.hardware")
    return cls(**d)


def hardware_from_dict(d: Mapping[str, Any]) -> HardwareConfig:
    """HardwareConfig from a YAML mapping (unknown keys raise ConfigError naming them)."""
    return _dc_from_dict(HardwareConfig, d, "hardware")


def config_from_dict(cls: type, d: Mapping[str, Any]) -> Any:
    """Serve/Record/Replay/CompareConfig from a mapping (``hardware`` may be a mapping)."""
    return _dc_from_dict(cls, d, cls.__name__)


def _server_cfg(d: Mapping[str, Any]) -> ServerConfig:
    return _dc_from_dict(ServerConfig, d, "hardware.server")


# ---------------------------------------------------------------------------------- drivers
def make_twin(hw: HardwareConfig, twin: Mapping[str, Any] | None = None) -> TwinDriver:
    """A local twin of ``hw.robot`` with ``twin`` imperfections (default ``hw.twin``)."""
    backend = load_backend(hw.robot, control_dt=1.0 / hw.fps)
    return TwinDriver(backend, TwinConfig.from_dict(hw.twin if twin is None else twin))


def _dds_map(hw: HardwareConfig, names: list[str], n_joints: int) -> Any:
    from sim.bridge.unitree_dds import DdsJointMap

    d = dict(hw.dds)
    gains = {k: d[k] for k in ("kp", "kd", "hold_kp", "hold_kd", "unmapped") if k in d}
    if "joints" in d:
        return DdsJointMap(joints=dict(d["joints"]), grippers=dict(d.get("grippers", {})), **gains)
    return DdsJointMap.sequential(names, n_joints, **gains)


def _dds_cfg(hw: HardwareConfig) -> Any:
    from sim.bridge.unitree_dds import DdsConfig

    keys = {f.name for f in dataclasses.fields(DdsConfig)}
    d = {k: v for k, v in hw.dds.items() if k in keys}
    if "peers" in d:
        d["peers"] = tuple(d["peers"])
    d.setdefault("fps", hw.fps)
    return DdsConfig(**d)


def connect_robot(hw: HardwareConfig) -> Driver:
    """The PC-side driver for ``hw`` (bridge client or Unitree DDS), connected."""
    if hw.transport == "zmq":
        client = BridgeClient(hw.endpoint, timeout_s=hw.timeout_s)
        client.connect()
        return client
    from sim.bridge.unitree_dds import UnitreeDdsDriver

    d = dict(hw.dds)
    if "joints" in d:  # a real robot: names and limits from the YAML
        joints = list(d["joints"])
        names = joints + list(d.get("grippers", {}))
        lower, upper = d.get("lower"), d.get("upper")
        if lower is None or upper is None:
            raise ConfigError(
                "hardware.dds: 'lower' and 'upper' limits are required with explicit 'joints'"
            )
        fk, arms = None, []
    else:  # the twin on DDS: names, limits and FK from its model
        backend = load_backend(hw.robot, control_dt=1.0 / hw.fps)
        joints, names = list(backend.joint_names), list(backend.action_names)
        lower, upper = (x.tolist() for x in backend.limits())
        fk, arms = backend.fk, list(backend.arms)
    drv = UnitreeDdsDriver(
        _dds_map(hw, names, len(joints)),
        joints,
        names,
        lower,
        upper,
        cfg=_dds_cfg(hw),
        arms=arms,
        fk=fk,
    )
    drv.connect()
    return drv


# ---------------------------------------------------------------------------------- commands
def serve(cfg: ServeConfig) -> dict[str, Any]:
    """Run the robot side until SIGTERM/SIGINT (or ``max_s``); returns the final counters."""
    hw = cfg.hardware
    stop = threading.Event()
    if cfg.max_s is not None:
        threading.Timer(cfg.max_s, stop.set).start()
    if hw.driver == "twin":
        driver: Driver = make_twin(hw)
        fk = driver.fk
    elif hw.driver.startswith("lerobot:"):
        from sim.bridge.lerobot_adapter import LeRobotDriver, make_lerobot_robot

        driver = LeRobotDriver(
            make_lerobot_robot(hw.driver.split(":", 1)[1], **hw.lerobot), fps=hw.fps
        )
        fk = None
    else:
        raise ConfigError(
            f"serve: hardware.driver {hw.driver!r} cannot be served; expected "
            "'twin' or 'lerobot:<type>'"
        )
    if hw.transport == "dds":
        from sim.bridge.unitree_dds import serve_dds

        caps = driver.capabilities
        ready = threading.Event()
        if cfg.ready_file:

            def _ready() -> None:
                if ready.wait(60):
                    Path(cfg.ready_file).write_text(f"dds:{_dds_cfg(hw).domain_id}")

            threading.Thread(target=_ready, daemon=True).start()
        stats = serve_dds(
            driver,
            _dds_map(hw, caps.action_names, len(caps.joint_names)),
            hw.safety_cfg,
            fk=fk,
            cfg=_dds_cfg(hw),
            stop=stop,
            ready=ready,
        )
        return stats.to_dict()

    def _ready_file(server: Any) -> None:
        if cfg.ready_file:
            tmp = Path(cfg.ready_file + ".tmp")
            tmp.write_text(server.endpoint)
            tmp.replace(cfg.ready_file)

    stats = serve_driver(
        driver,
        hw.endpoint,
        hw.safety_cfg,
        fk=fk,
        stop=stop,
        server_cfg=_server_cfg(hw.server),
        on_ready=_ready_file,
    )
    return stats.to_dict()


def record(cfg: RecordConfig) -> RecordResult:
    """Record ``n_episodes`` into ``out``; raises BridgeError after saving if the link failed."""
    if cfg.policy not in ("hold", "sine"):
        raise ConfigError(f"record.policy must be 'hold' or 'sine', got {cfg.policy!r}")
    robot = connect_robot(cfg.hardware)
    sink = open_sink(
        cfg.out, cfg.fmt, overwrite=cfg.overwrite, config={"record": dataclasses.asdict(cfg)}
    )
    caps = robot.capabilities
    hw_fps = cfg.hardware.fps
    try:
        policy = None
        if cfg.policy == "sine":

            def policy(i: int) -> Any:  # a fresh sine around the pose of each episode start
                acts: dict[str, np.ndarray] = {}

                def pol(obs: Mapping[str, np.ndarray], k: int) -> np.ndarray:
                    if "a" not in acts:
                        acts["a"] = sine_actions(
                            action_from_observation(obs, caps),
                            len(caps.joint_names),
                            cfg.steps,
                            hw_fps,
                            0.15,
                            2.0,
                            np.array(caps.lower),
                            np.array(caps.upper),
                        )
                    return acts["a"][k]

                return pol

        reset = None
        if cfg.reset_seed is not None and hasattr(robot, "reset"):

            def reset(i: int) -> None:
                robot.reset(seed=cfg.reset_seed + i)

        result = record_episodes(
            robot,
            cfg.n_episodes,
            cfg.steps,
            fps=hw_fps,
            policy=policy,
            task=cfg.task,
            reset=reset,
            on_episode=sink.add,
            seed=cfg.reset_seed,
        )
    finally:
        try:
            path = sink.close()
        finally:
            robot.disconnect()
    log.info("recorded %d episode(s) to %s", len(result.episodes), path)
    result.raise_for_fault()
    return result


def replay(cfg: ReplayConfig) -> ReplayResult:
    """Replay episode ``index`` of ``episodes`` on the robot (dry run on a local twin first)."""
    if not cfg.episodes:
        raise ConfigError("replay.episodes: path of a dataset (LeRobot or npz) is required")
    episodes = load_episodes(cfg.episodes)
    if not 0 <= cfg.index < len(episodes):
        raise ConfigError(
            f"replay.index {cfg.index} out of range: {cfg.episodes} has {len(episodes)} episodes"
        )
    ep = episodes[cfg.index]
    hw = cfg.hardware
    dry = None
    if cfg.dry_run:
        twin = make_twin(hw, {**hw.twin, "realtime": False})
        dry = SafetyLayer(twin, hw.safety_cfg, fk=twin.fk)
        dry.connect()
        _prepare_sim(dry, ep)
    robot = connect_robot(hw)
    try:
        if cfg.reset_sim and hasattr(robot, "reset") and robot.capabilities.driver != "lerobot":
            _prepare_sim(robot, ep)
        result = replay_episode(
            robot, ep, dry_run=dry, max_dry_run_clamp=cfg.max_dry_run_clamp, home_s=cfg.home_s
        )
    finally:
        robot.disconnect()
        if dry is not None:
            dry.disconnect()
    if cfg.report:
        Path(cfg.report).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.report).write_text(json.dumps(result.summary(), indent=2))
    return result


def _prepare_sim(driver: Any, ep: Any) -> None:
    """Put a simulated robot in the episode's initial state (objects, joints)."""
    objects = {k: np.asarray(v)[0] for k, v in ep.objects.items()}
    qpos = None if ep.qpos is None else np.asarray(ep.qpos)[0]
    if isinstance(driver, SafetyLayer):
        driver.reset_driver(seed=ep.meta.seed, level=None, objects=objects, qpos=qpos)
    else:
        driver.reset(seed=ep.meta.seed, objects=objects, qpos=qpos)


def compare(cfg: CompareConfig) -> CompareReport:
    """Run the same actions on a local twin and on the robot; write report.json + plot.png
    (the plot needs matplotlib)."""
    hw = cfg.hardware
    twin = make_twin(hw, {})
    twin_safe = SafetyLayer(twin, hw.safety_cfg, fk=twin.fk)
    if cfg.robot_twin is not None:
        other = make_twin(hw, cfg.robot_twin)
        robot: Driver = SafetyLayer(other, hw.safety_cfg, fk=other.fk)
        robot.connect()
        names = ("twin", "twin+imperfections")
    else:
        robot = connect_robot(hw)
        names = ("twin", hw.name)
    twin_safe.connect()
    try:
        caps = twin.capabilities
        if cfg.episodes:
            ep = load_episodes(cfg.episodes)[cfg.index]
            actions = np.asarray(ep.action)
        else:
            start = action_from_observation(twin.get_observation(), caps)
            actions = sine_actions(
                start,
                len(caps.joint_names),
                cfg.steps,
                hw.fps,
                cfg.amplitude,
                2.0,
                np.array(caps.lower),
                np.array(caps.upper),
            )
        report = compare_drivers(twin_safe, robot, actions, fps=hw.fps, names=names)
    finally:
        twin_safe.disconnect()
        robot.disconnect()
    out = Path(cfg.out)
    report.write_json(out / "report.json")
    try:
        report.plot(out / "plot.png")
    except ImportError as e:  # matplotlib is optional for the numbers
        log.warning("compare: no plot (%s); report.json written", e)
    return report


# ---------------------------------------------------------------------------------- CLI
USAGE = """usage: demoforge-bridge {serve|record|replay|compare} [hardware=<name|path.yaml>]
                        [hardware.<key>=<value> ...] [<key>=<value> ...]    (Hydra overrides)

  hardware=twin            conf/hardware/twin.yaml (default) or a YAML path
  hardware.fps=50          override a hardware key (dotted: hardware.safety.max_step=0.05)
  <key>=<value>            a field of the command's config (RecordConfig, ReplayConfig, ...)
examples:
  demoforge-bridge serve hardware=twin
  demoforge-bridge record out=outputs/rec n_episodes=2 steps=100 policy=sine
  demoforge-bridge replay episodes=outputs/rec index=0
  demoforge-bridge compare 'robot_twin={cmd_latency_s: 0.05, noise_qpos: 0.002}'
"""

COMMANDS: dict[str, tuple[type, Any]] = {
    "serve": (ServeConfig, serve),
    "record": (RecordConfig, record),
    "replay": (ReplayConfig, replay),
    "compare": (CompareConfig, compare),
}


def load_hardware(name: str, overrides: Mapping[str, Any] | None = None) -> HardwareConfig:
    """``conf/hardware/<name>.yaml`` (or a YAML path) with dotted overrides applied."""
    from omegaconf import OmegaConf

    from sim.paths import conf_dir

    path = (
        Path(name)
        if name.endswith((".yaml", ".yml"))
        else (conf_dir() / "hardware" / f"{name}.yaml")
    )
    if not path.exists():
        known = sorted(p.stem for p in (conf_dir() / "hardware").glob("*.yaml"))
        raise ConfigError(f"unknown hardware {name!r}; expected one of {known} or a YAML path")
    base = OmegaConf.load(path)
    merged = OmegaConf.merge(base, OmegaConf.create(dict(overrides or {})))
    return hardware_from_dict(OmegaConf.to_container(merged, resolve=True))


def parse_args(argv: list[str]) -> tuple[str, Any]:
    """``[command, override, ...]`` -> (command, its config dataclass), composed by Hydra.

    The config is ``conf/bridge/<command>.yaml`` with the ``hardware`` group
    (``conf/hardware/<name>.yaml``); overrides use Hydra syntax (``hardware=unitree_g1_dds``,
    ``hardware.fps=50``, ``n_episodes=2``). ``hardware=<file.yaml>`` loads a YAML outside conf/.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from sim.paths import conf_dir

    if not argv or argv[0] not in COMMANDS:
        raise ConfigError(f"expected a command ({', '.join(COMMANDS)}) first\n{USAGE}")
    cmd, rest = argv[0], list(argv[1:])
    hw_file = next((a.split("=", 1)[1] for a in rest
                    if a.startswith("hardware=") and a.endswith((".yaml", ".yml"))), None)
    if hw_file:
        rest.remove(f"hardware={hw_file}")
    try:
        with initialize_config_dir(version_base=None, config_dir=str(conf_dir()),
                                   job_name="demoforge-bridge"):
            cfg = compose(f"bridge/{cmd}", overrides=rest)
    except HydraException as e:
        raise ConfigError(f"demoforge-bridge {cmd}: {e}\n{USAGE}") from None
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    hw = d.pop("hardware")
    if hw_file:
        hw_over = {k[len("hardware."):]: v for k, v in OmegaConf.to_container(
            OmegaConf.from_dotlist([a for a in rest if a.startswith("hardware.")])).items()}
        hardware = load_hardware(hw_file, hw_over.get("", hw_over))
    else:
        hardware = hardware_from_dict(hw)
    return cmd, config_from_dict(COMMANDS[cmd][0], {**d, "hardware": hardware})


def main(argv: list[str] | None = None) -> None:
    """``demoforge-bridge``: parse ``argv`` (default ``sys.argv[1:]``), run the command."""
    import sys

    from sim.errors import SimError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cmd, cfg = parse_args(list(sys.argv[1:] if argv is None else argv))
        result = COMMANDS[cmd][1](cfg)
    except SimError as e:
        print(f"demoforge: error: {e}", file=sys.stderr)
        sys.exit(2)
    summary = (
        result.summary()
        if hasattr(result, "summary")
        else (result.to_dict() if hasattr(result, "to_dict") else result)
    )
    if isinstance(result, RecordResult):
        summary = {"episodes": len(result.episodes), "jitter": result.jitter}
    print(json.dumps(summary, indent=2, default=str))
