"""The bridge commands as plain functions: ``serve``, ``record``, ``replay``, ``compare``,
``keygen``.

Each takes one frozen dataclass from :mod:`sim.bridge.config`; the command line
(``demoforge-bridge``, :mod:`sim.cli.bridge`) builds them from conf/bridge/ and conf/hardware/
and calls these functions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.bridge.audit import to_jsonl
from sim.bridge.backends import load_backend
from sim.bridge.client import BridgeClient
from sim.bridge.compare import CompareReport, compare_drivers, sine_actions
from sim.bridge.config import (
    CompareConfig,
    DdsSection,
    HardwareConfig,
    KeygenConfig,
    RecordConfig,
    ReplayConfig,
    ServeConfig,
)
from sim.bridge.keys import keygen as make_keys
from sim.bridge.keys import load_client_keys, load_server_keys
from sim.bridge.protocol import Driver, action_from_observation
from sim.bridge.record import (
    AUDIT_FILE,
    RecordResult,
    ReplayResult,
    close_writer,
    discard_empty,
    load_episodes,
    open_writer,
    record_episodes,
    replay_episode,
)
from sim.bridge.safety import SafetyLayer
from sim.bridge.server import serve as serve_driver
from sim.bridge.twin import TwinConfig, TwinDriver
from sim.errors import BridgeError, ConfigError

__all__ = [
    "CompareConfig",
    "HardwareConfig",
    "KeygenConfig",
    "RecordConfig",
    "ReplayConfig",
    "ServeConfig",
    "compare",
    "connect_robot",
    "keygen",
    "make_twin",
    "record",
    "replay",
    "serve",
]

log = logging.getLogger("sim.bridge")


# ---------------------------------------------------------------------------------- drivers
def make_twin(hw: HardwareConfig, twin: TwinConfig | None = None) -> TwinDriver:
    """A local twin of ``hw.robot`` with ``twin`` imperfections (default ``hw.twin``)."""
    backend = load_backend(hw.robot, control_dt=1.0 / hw.fps)
    return TwinDriver(backend, hw.twin if twin is None else twin)


def _dds_map(hw: HardwareConfig, names: list[str], n_joints: int) -> Any:
    from sim.bridge.unitree_dds import DdsJointMap

    d: DdsSection = hw.dds
    gains = {
        "kp": dict(d.kp) if isinstance(d.kp, dict) else float(d.kp),
        "kd": dict(d.kd) if isinstance(d.kd, dict) else float(d.kd),
        "hold_kp": d.hold_kp,
        "hold_kd": d.hold_kd,
        "unmapped": d.unmapped,
    }
    if d.joints is not None:
        return DdsJointMap(joints=dict(d.joints), grippers=dict(d.grippers), **gains)
    return DdsJointMap.sequential(names, n_joints, **gains)


def _dds_cfg(hw: HardwareConfig) -> Any:
    from sim.bridge.unitree_dds import DdsConfig

    d = hw.dds
    return DdsConfig(
        domain_id=d.domain_id,
        interface=d.interface,
        peers=tuple(d.peers),
        robot=d.robot,
        fps=hw.fps,
        fps_max=d.fps_max,
        state_timeout_s=d.state_timeout_s,
        connect_timeout_s=d.connect_timeout_s,
        publish_hz=d.publish_hz,
        mode_pr=d.mode_pr,
    )


def connect_robot(hw: HardwareConfig, claim: bool = True) -> Driver:
    """The PC-side driver for ``hw`` (bridge client or Unitree DDS), connected.

    A bridge client claims control of the robot unless ``claim`` is False (observe only); it
    uses CURVE when ``hw.curve`` names the client keys.
    """
    if hw.transport == "zmq":
        client = BridgeClient(
            hw.endpoint,
            timeout_s=hw.timeout_s,
            name=hw.client,
            curve=load_client_keys(hw.curve),
            claim=claim,
        )
        client.connect()
        return client
    from sim.bridge.unitree_dds import UnitreeDdsDriver

    d = hw.dds
    if d.joints is not None:  # a real robot: names and limits from the YAML
        joints = list(d.joints)
        names = joints + list(d.grippers)
        lower, upper = d.lower, d.upper
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
    keys = load_server_keys(hw.curve) if hw.transport == "zmq" else None
    if hw.transport == "zmq":
        from sim.bridge.keys import check_bind

        check_bind(hw.endpoint, keys is not None)  # before building the robot
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
        server_cfg=hw.server,
        on_ready=_ready_file,
        keys=keys,
    )
    return stats.to_dict()


def record(cfg: RecordConfig) -> RecordResult:
    """Record ``n_episodes`` into ``out``; raises BridgeError after saving if the link failed."""
    if cfg.policy not in ("hold", "sine"):
        raise ConfigError(f"record.policy must be 'hold' or 'sine', got {cfg.policy!r}")
    writer = open_writer(
        cfg.out, cfg.fmt, overwrite=cfg.overwrite, config={"record": dataclasses.asdict(cfg)}
    )
    try:
        robot = connect_robot(cfg.hardware)
    except BaseException:
        discard_empty(writer)  # nothing recorded: leave no staging folder behind
        raise
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
            on_episode=writer.add,
            seed=cfg.reset_seed,
        )
    finally:
        files = {}
        if cfg.audit and isinstance(robot, BridgeClient):
            try:  # who held control, who was refused: kept beside the episodes
                files[AUDIT_FILE[cfg.fmt]] = to_jsonl(robot.audit())
            except BridgeError as e:
                log.warning("record: no audit trail from the server (%s)", e)
        try:
            path = close_writer(writer, files)
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
        twin = make_twin(hw, dataclasses.replace(hw.twin, realtime=False))
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
    twin = make_twin(hw, TwinConfig())
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


def keygen(cfg: KeygenConfig) -> dict[str, str]:
    """Write CURVE key pairs (server + ``clients``) into ``cfg.out``; returns the files."""
    files = make_keys(cfg.out, tuple(cfg.clients))
    log.info("wrote CURVE keys to %s: %s", cfg.out, ", ".join(sorted(files)))
    return files
