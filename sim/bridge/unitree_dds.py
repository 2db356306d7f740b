"""Unitree-style low-level driver over Cyclone DDS (``unitree_hg`` LowCmd_/LowState_), and a DDS
server that serves any driver (the twin) the way unitree_mujoco does.

Messages (FORMATS §3.4, same type names as unitree_sdk2py, so the real SDK interoperates):
    ``rt/lowcmd``   ``unitree_hg.msg.dds_.LowCmd_``: mode_pr, mode_machine, motor_cmd[35]
                    {mode (1 enable), q, dq, tau, kp, kd, reserve}, reserve[4], crc.
    ``rt/lowstate`` ``unitree_hg.msg.dds_.LowState_``: version[2], mode_pr, mode_machine, tick,
                    imu_state, motor_state[35] {mode, q, dq, ddq, tau_est, temperature[2], vol,
                    sensor[2], motorstate, reserve[4]}, wireless_remote[40], reserve[4], crc.
    Motor law on the robot: ``tau = tau_ff + kp (q_des - q) + kd (dq_des - dq)``.

CRC and C layouts: :mod:`sim.bridge.unitree_codec` (every command carries the SDK's CRC-32).

Joint mapping (:class:`DdsJointMap`): each of our joints has a motor slot; gripper openings
[0, 1] travel as ``q`` of a spare slot (demoforge convention for the twin; slot -1 = the robot has
no gripper on this topic, the commanded value is echoed back). Unmapped slots are commanded to
hold their measured position with ``hold_kp``/``hold_kd`` (a G1 without its locomotion service
must have every joint commanded), or disabled (``unmapped="disable"``).

Domains: the real robot is domain 0 on its NIC; simulation is domain 1 on ``lo`` (unitree_mujoco's
convention), so tests can never command a real robot. Requires the ``cyclonedds`` package
(``pip install demoforge[dds]``); the CRC/packing helpers work without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sim.bridge.protocol import (
    Capabilities,
    as_action_vector,
    gripper_arm,
    observation_features,
)
from sim.bridge.safety import FK, SafetyConfig, SafetyLayer
from sim.bridge.unitree_codec import (
    CRC_POLY,
    IMU_DTYPE,
    LOWCMD_DTYPE,
    LOWCMD_STRUCT,
    LOWSTATE_DTYPE,
    LOWSTATE_STRUCT,
    MOTOR_CMD_DTYPE,
    MOTOR_STATE_DTYPE,
    NUM_MOTORS,
    TOPIC_LOWCMD,
    TOPIC_LOWSTATE,
    crc32_core,
    crc32_core_reference,
    message_crc,
    pack,
)
from sim.errors import BridgeError, ConfigError, SafetyError

log = logging.getLogger("sim.bridge.unitree_dds")

# the codec lives in sim.bridge.unitree_codec; its names are re-exported here

__all__ = [
    "CRC_POLY",
    "IMU_DTYPE",
    "LOWCMD_DTYPE",
    "LOWCMD_STRUCT",
    "LOWSTATE_DTYPE",
    "LOWSTATE_STRUCT",
    "MOTOR_CMD_DTYPE",
    "MOTOR_STATE_DTYPE",
    "NUM_MOTORS",
    "TOPIC_LOWCMD",
    "TOPIC_LOWSTATE",
    "DdsConfig",
    "DdsJointMap",
    "UnitreeDdsDriver",
    "crc32_core",
    "crc32_core_reference",
    "message_crc",
    "pack",
    "serve_dds",
]


# ---------------------------------------------------------------------------------- mapping
@dataclass(frozen=True)
class DdsJointMap:
    """Where our joints/grippers live in the 35 motor slots, and the gains to command them.

    Attributes:
        joints: our joint name -> motor slot.
        grippers: ``<arm>_gripper`` action name -> slot carrying the opening as ``q`` (-1: none).
        kp: stiffness per joint [N·m/rad] (one value for all, or per joint name).
        kd: damping per joint [N·m·s/rad].
        hold_kp: stiffness for unmapped slots held at their measured position.
        hold_kd: damping for unmapped slots.
        unmapped: "hold" or "disable" (mode 0) for slots that are not ours.
    """

    joints: dict[str, int]
    grippers: dict[str, int] = field(default_factory=dict)
    kp: float | dict[str, float] = 60.0
    kd: float | dict[str, float] = 1.5
    hold_kp: float = 80.0
    hold_kd: float = 2.0
    unmapped: str = "hold"

    def __post_init__(self) -> None:
        slots = [s for s in (*self.joints.values(), *self.grippers.values()) if s >= 0]
        if any(not 0 <= s < NUM_MOTORS for s in slots) or len(set(slots)) != len(slots):
            raise ConfigError(
                f"dds joint map: slots must be distinct and in [0, {NUM_MOTORS}), "
                f"got {sorted(slots)}"
            )
        if self.unmapped not in ("hold", "disable"):
            raise ConfigError(
                f"dds joint map: unmapped must be 'hold' or 'disable', got {self.unmapped!r}"
            )

    def gain(self, which: str, joint: str) -> float:
        g = self.kp if which == "kp" else self.kd
        return float(g[joint]) if isinstance(g, Mapping) else float(g)

    @classmethod
    def sequential(cls, action_names: Sequence[str], n_joints: int, **kw: Any) -> DdsJointMap:
        """Joints in slots 0..n-1, grippers in the following slots (the twin's layout)."""
        joints = {name: i for i, name in enumerate(action_names[:n_joints])}
        grippers = {name: n_joints + i for i, name in enumerate(action_names[n_joints:])}
        return cls(joints=joints, grippers=grippers, **kw)


#: G1 29-DoF arm slots (FORMATS §3.4): left arm 15-21, right arm 22-28; joint names as in
#: the G1 MJCF without the "_joint" suffix (also demoforge_humanoid's arm joint names).
G1_ARM_SLOTS = {
    f"{side}_{j}": base + i
    for side, base in (("left", 15), ("right", 22))
    for i, j in enumerate(
        (
            "shoulder_pitch",
            "shoulder_roll",
            "shoulder_yaw",
            "elbow",
            "wrist_roll",
            "wrist_pitch",
            "wrist_yaw",
        )
    )
}


def dds_config_xml(interface: str = "lo", peers: Sequence[str] = ("127.0.0.1",)) -> str:
    """Cyclone DDS configuration: one interface, unicast discovery to ``peers`` (no multicast,
    which ``lo`` does not do)."""
    peer_xml = "".join(f'<Peer address="{p}"/>' for p in peers)
    return (
        '<CycloneDDS><Domain id="any"><General><Interfaces>'
        f'<NetworkInterface name="{interface}"/></Interfaces>'
        "<AllowMulticast>false</AllowMulticast></General><Discovery>"
        "<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>60"
        f"</MaxAutoParticipantIndex><Peers>{peer_xml}</Peers></Discovery></Domain></CycloneDDS>"
    )


# ---------------------------------------------------------------------------------- DDS types
try:  # import guard: the driver and server need cyclonedds; CRC/packing do not
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import Domain, DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from sim.bridge.unitree_idl import (
        IMUState_,
        LowCmd_,
        LowState_,
        MotorCmd_,
        MotorState_,
    )

    HAVE_DDS = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_DDS = False


def new_lowcmd() -> Any:
    """A zeroed ``unitree_hg`` LowCmd_ (all motors disabled)."""
    _require_dds()
    return LowCmd_(
        0, 0, [MotorCmd_(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0) for _ in range(NUM_MOTORS)], [0] * 4, 0
    )


def new_lowstate() -> Any:
    """A zeroed ``unitree_hg`` LowState_ (identity IMU quaternion)."""
    _require_dds()
    return LowState_(
        [0, 0],
        0,
        0,
        0,
        IMUState_([1.0, 0.0, 0.0, 0.0], [0.0] * 3, [0.0] * 3, [0.0] * 3, 0),
        [
            MotorState_(0, 0.0, 0.0, 0.0, 0.0, [0, 0], 0.0, [0, 0], 0, [0] * 4)
            for _ in range(NUM_MOTORS)
        ],
        [0] * 40,
        [0] * 4,
        0,
    )


_DOMAINS: dict[int, Any] = {}
_DOMAIN_LOCK = threading.Lock()


def _require_dds() -> None:
    if not HAVE_DDS:
        raise BridgeError(
            "the Unitree DDS driver needs the 'cyclonedds' package (pip install 'demoforge[dds]')"
        )


def participant(domain_id: int, interface: str, peers: Sequence[str]) -> Any:
    """A DomainParticipant on ``domain_id`` configured for ``interface`` (one config per
    domain and process: the first call decides)."""
    _require_dds()
    with _DOMAIN_LOCK:
        if domain_id not in _DOMAINS:
            _DOMAINS[domain_id] = Domain(domain_id, dds_config_xml(interface, peers))
    return DomainParticipant(domain_id)


@dataclass(frozen=True)
class DdsConfig:
    """Where and how to talk Unitree DDS.

    Attributes:
        domain_id: 1 = simulation on ``lo`` (default), 0 = the real robot on its NIC.
        interface: network interface name.
        peers: unicast discovery peers.
        robot: robot name reported in capabilities.
        fps: command rate the client aims for [Hz]; fps_max: the highest accepted.
        state_timeout_s: observations older than this raise BridgeError [s].
        connect_timeout_s: how long ``connect`` waits for the first rt/lowstate [s].
        publish_hz: re-publish the last command at this rate (Unitree examples: 500 Hz);
            None = publish only on ``send_action``.
        mode_pr: 0 = PR (pitch/roll) ankle mode.
    """

    domain_id: int = 1
    interface: str = "lo"
    peers: tuple[str, ...] = ("127.0.0.1",)
    robot: str = "unitree_g1"
    fps: float = 50.0
    fps_max: float = 500.0
    state_timeout_s: float = 0.5
    connect_timeout_s: float = 3.0
    publish_hz: float | None = None
    mode_pr: int = 0


class UnitreeDdsDriver:
    """PC-side Driver: publishes ``rt/lowcmd`` (with CRC), reads ``rt/lowstate``.

    Args:
        joint_map: our names <-> motor slots and gains.
        joint_names: qpos columns (must all be in ``joint_map.joints``).
        action_names: joints then ``<arm>_gripper``.
        lower/upper: bounds per action dim (joint limits; grippers [0, 1]).
        cfg: domain, interface, rates.
        arms: arm names; EE poses are observed only when ``fk`` is given.
        fk: forward kinematics for ``ee.<arm>`` observations (position only; orientation
            reported as identity quaternion).
    """

    def __init__(
        self,
        joint_map: DdsJointMap,
        joint_names: Sequence[str],
        action_names: Sequence[str],
        lower: Sequence[float],
        upper: Sequence[float],
        cfg: DdsConfig | None = None,
        arms: Sequence[str] = (),
        fk: FK | None = None,
    ) -> None:
        self.map = joint_map
        self.cfg = cfg or DdsConfig()
        self.fk = fk
        missing = [j for j in joint_names if j not in joint_map.joints]
        missing += [g for g in action_names[len(joint_names) :] if g not in joint_map.grippers]
        if missing:
            raise ConfigError(f"dds joint map lacks {missing}")
        self._jslots = np.array([joint_map.joints[j] for j in joint_names], dtype=int)
        self._gnames = list(action_names[len(joint_names) :])
        self._caps = Capabilities(
            robot=self.cfg.robot,
            driver="unitree-dds",
            joint_names=list(joint_names),
            action_names=list(action_names),
            arms=list(arms) if fk else [],
            fps_max=self.cfg.fps_max,
            control_dt=1.0 / self.cfg.fps,
            lower=[float(x) for x in lower],
            upper=[float(x) for x in upper],
            extra={"domain_id": self.cfg.domain_id, "interface": self.cfg.interface},
        )
        self._features = observation_features(self._caps)
        self._lock = threading.Lock()
        self._state: Any = None
        self._t_state = 0.0
        self._last_cmd: Any = None
        self._last_grip = np.zeros(len(self._gnames))
        self.bad_crc = 0
        self._dp = self._writer = self._reader = None
        self._pub_stop = threading.Event()
        self._pub: threading.Thread | None = None

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def observation_features(self) -> dict[str, tuple[int, ...]]:
        return dict(self._features)

    @property
    def action_features(self) -> dict[str, tuple[int, ...]]:
        return {"action": (len(self._caps.action_names),)}

    @property
    def last_state(self) -> Any:
        """The newest valid LowState_ received (None before connect)."""
        self._poll_state()
        return self._state

    def connect(self) -> None:
        """Join the DDS domain and wait for the first valid ``rt/lowstate``."""
        if self._dp is not None:
            return
        c = self.cfg
        self._dp = participant(c.domain_id, c.interface, c.peers)
        qos = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1))
        self._writer = DataWriter(self._dp, Topic(self._dp, TOPIC_LOWCMD, LowCmd_), qos=qos)
        self._reader = DataReader(self._dp, Topic(self._dp, TOPIC_LOWSTATE, LowState_), qos=qos)
        deadline = time.monotonic() + c.connect_timeout_s
        while time.monotonic() < deadline:
            if self._poll_state():
                break
            time.sleep(0.005)
        else:
            self._close()
            raise BridgeError(
                f"no valid {TOPIC_LOWSTATE} on DDS domain {c.domain_id} "
                f"(interface {c.interface}) within {c.connect_timeout_s:.1f} s"
            )
        if c.publish_hz:
            self._pub_stop.clear()
            self._pub = threading.Thread(target=self._republish, daemon=True, name="unitree-lowcmd")
            self._pub.start()

    def disconnect(self) -> None:
        self._pub_stop.set()
        if self._pub is not None:
            self._pub.join(timeout=1.0)
            self._pub = None
        self._close()

    def get_observation(self) -> dict[str, np.ndarray]:
        self._poll_state()
        with self._lock:
            if self._state is None:
                raise BridgeError("not connected to rt/lowstate (call connect())")
            age = time.monotonic() - self._t_state
            if age > self.cfg.state_timeout_s:
                raise BridgeError(
                    f"{TOPIC_LOWSTATE} on domain {self.cfg.domain_id} is stale: "
                    f"last valid message {age * 1e3:.0f} ms ago "
                    f"(max {self.cfg.state_timeout_s * 1e3:.0f} ms)"
                )
            ms = self._state.motor_state
            q = np.array([ms[s].q for s in self._jslots], dtype=np.float64)
            dq = np.array([ms[s].dq for s in self._jslots], dtype=np.float64)
            obs: dict[str, np.ndarray] = {"qpos": q, "qvel": dq}
            for i, name in enumerate(self._gnames):
                slot = self.map.grippers[name]
                v = ms[slot].q if slot >= 0 else self._last_grip[i]
                obs[f"gripper.{name[: -len('_gripper')]}"] = np.asarray(float(np.clip(v, 0.0, 1.0)))
        if self.fk is not None:
            for arm, pos in self.fk(q).items():
                obs[f"ee.{arm}"] = np.concatenate([np.asarray(pos, float)[:3], [1.0, 0, 0, 0]])
        return obs

    def send_action(self, action: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Publish one LowCmd_ (mapped joints: mode 1, q = target, dq = 0, kp/kd from the map)."""
        a = as_action_vector(action, self._caps.action_names)
        if not np.all(np.isfinite(a)):
            raise BridgeError(f"unitree-dds: refusing NaN/inf action {a}")
        self._poll_state()
        with self._lock:
            if self._state is None or self._writer is None:
                raise BridgeError("unitree-dds: not connected (call connect())")
            cmd = new_lowcmd()
            cmd.mode_pr = self.cfg.mode_pr
            cmd.mode_machine = self._state.mode_machine
            mapped = set()
            n = len(self._caps.joint_names)
            for name, slot, target in zip(self._caps.joint_names, self._jslots, a[:n], strict=True):
                m = cmd.motor_cmd[slot]
                m.mode, m.q, m.dq, m.tau = 1, float(target), 0.0, 0.0
                m.kp, m.kd = self.map.gain("kp", name), self.map.gain("kd", name)
                mapped.add(int(slot))
            for i, name in enumerate(self._gnames):
                slot = self.map.grippers[name]
                self._last_grip[i] = a[n + i]
                if slot >= 0:
                    m = cmd.motor_cmd[slot]
                    m.mode, m.q = 1, float(a[n + i])
                    mapped.add(slot)
            for slot in range(NUM_MOTORS):
                if slot in mapped:
                    continue
                m = cmd.motor_cmd[slot]
                if self.map.unmapped == "hold":
                    m.mode, m.q = 1, float(self._state.motor_state[slot].q)
                    m.kp, m.kd = self.map.hold_kp, self.map.hold_kd
            cmd.crc = message_crc(cmd, LOWCMD_DTYPE)
            self._writer.write(cmd)
            self._last_cmd = cmd
        return a

    # ------------------------------------------------------------------ internals
    def _poll_state(self) -> bool:
        """Take pending rt/lowstate samples; keep the newest with a valid CRC."""
        if self._reader is None:
            return False
        got = False
        for s in self._reader.take(N=16):
            if not isinstance(s, LowState_):
                continue
            if message_crc(s, LOWSTATE_DTYPE) != s.crc:
                self.bad_crc += 1
                continue
            with self._lock:
                self._state, self._t_state = s, time.monotonic()
            got = True
        return got

    def _republish(self) -> None:
        assert self.cfg.publish_hz
        period = 1.0 / self.cfg.publish_hz
        while not self._pub_stop.wait(period):
            with self._lock:
                if self._last_cmd is not None and self._writer is not None:
                    self._writer.write(self._last_cmd)

    def _close(self) -> None:
        self._writer = self._reader = None
        self._dp = None  # entities are released with the participant


@dataclass
class DdsServerStats:
    """Counters of :func:`serve_dds`."""

    lowcmd: int = 0
    bad_crc: int = 0
    disabled: int = 0
    rejected: int = 0
    applied: int = 0
    lowstate: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def serve_dds(
    driver: Any,
    joint_map: DdsJointMap,
    safety_cfg: SafetyConfig | None = None,
    *,
    fk: FK | None = None,
    cfg: DdsConfig | None = None,
    state_hz: float = 200.0,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    max_s: float | None = None,
) -> DdsServerStats:
    """Serve ``driver`` (e.g. a TwinDriver) as a Unitree robot on DDS (unitree_mujoco style).

    Every valid ``rt/lowcmd`` (CRC checked; mapped motors in mode 1) becomes an action that
    passes the :class:`SafetyLayer` (watchdog included); ``rt/lowstate`` is published at
    ``state_hz`` with our joints in their slots. ``reserve[0]`` of LowState_ carries the count of
    bad-CRC commands and ``reserve[1]`` the safety rejections (demoforge diagnostics).
    Runs until ``stop`` is set or ``max_s`` elapsed.
    """
    _require_dds()
    cfg = cfg or DdsConfig()
    stop = stop or threading.Event()
    safety = driver if isinstance(driver, SafetyLayer) else SafetyLayer(driver, safety_cfg, fk=fk)
    caps = safety.capabilities
    n = len(caps.joint_names)
    jslots = [joint_map.joints[j] for j in caps.joint_names]
    gslots = [joint_map.grippers.get(g, -1) for g in caps.action_names[n:]]
    stats = DdsServerStats()
    dp = participant(cfg.domain_id, cfg.interface, cfg.peers)
    qos = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1))
    reader = DataReader(dp, Topic(dp, TOPIC_LOWCMD, LowCmd_), qos=qos)
    writer = DataWriter(dp, Topic(dp, TOPIC_LOWSTATE, LowState_), qos=qos)
    safety.connect()
    state = new_lowstate()
    state.mode_machine = 5  # a G1 29-DoF reports 5; clients copy it back
    t0 = time.monotonic()
    period = 1.0 / state_hz
    next_t = t0
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set() and (max_s is None or time.monotonic() - t0 < max_s):
            for cmd in reader.take(N=64):
                if not isinstance(cmd, LowCmd_):
                    continue
                stats.lowcmd += 1
                if message_crc(cmd, LOWCMD_DTYPE) != cmd.crc:
                    stats.bad_crc += 1
                    continue
                if any(cmd.motor_cmd[s].mode != 1 for s in jslots):
                    stats.disabled += 1  # a motor of ours disabled: the robot holds
                    if not safety.holding:
                        safety.hold("lowcmd disabled a mapped motor (mode 0)")
                    continue
                action = [cmd.motor_cmd[s].q for s in jslots]
                action += [cmd.motor_cmd[s].q if s >= 0 else 0.0 for s in gslots]
                try:
                    safety.send_action(np.asarray(action, dtype=np.float64))
                    stats.applied += 1
                except SafetyError as e:
                    stats.rejected += 1
                    log.warning("lowcmd rejected: %s", e)
            safety.check_watchdog()
            now = time.monotonic()
            if now >= next_t:
                obs = safety.get_observation()
                ms = state.motor_state
                for j, s in enumerate(jslots):
                    ms[s].mode, ms[s].q, ms[s].dq = 1, float(obs["qpos"][j]), float(obs["qvel"][j])
                for g, s in zip(caps.action_names[n:], gslots, strict=True):
                    if s >= 0:
                        ms[s].mode = 1
                        ms[s].q = float(obs.get(f"gripper.{gripper_arm(g)}", 0.0))
                state.tick = int((now - t0) * 1000) & 0xFFFFFFFF
                state.reserve = [stats.bad_crc & 0xFFFFFFFF, stats.rejected & 0xFFFFFFFF, 0, 0]
                state.crc = message_crc(state, LOWSTATE_DTYPE)
                writer.write(state)
                stats.lowstate += 1
                next_t = max(next_t + period, now)
            time.sleep(0.0005)
    finally:
        safety.disconnect()
    return stats
