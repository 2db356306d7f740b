"""The bridge server: runs beside the robot, serves one Driver over the wire protocol.

``serve(driver, endpoint, safety_cfg)`` wraps the driver in a :class:`SafetyLayer` (nothing on the
wire reaches the driver any other way), starts the watchdog thread, binds a ROUTER socket and
answers requests until ``stop`` is set (or SIGTERM/SIGINT when run in a main thread). See
:mod:`sim.bridge.wire` for the protocol.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import zmq

from sim.bridge import wire
from sim.bridge.protocol import Driver
from sim.bridge.safety import FK, SafetyConfig, SafetyLayer
from sim.errors import SafetyError, SimError

log = logging.getLogger("sim.bridge.server")


@dataclass(frozen=True)
class ServerConfig:
    """Transport settings of the server.

    Attributes:
        max_msg_bytes: larger frames are rejected unread and counted.
        max_age_s: reject ``send_action`` requests older than this [s] (None = off).
        watchdog_period_s: how often the watchdog thread checks the command age [s].
        poll_s: receive poll timeout; bounds how long ``stop`` takes to be noticed [s].
        max_peers: sessions kept (least recently used dropped beyond this).
    """

    max_msg_bytes: int = wire.MAX_MESSAGE_BYTES
    max_age_s: float | None = 0.5
    watchdog_period_s: float = 0.002
    poll_s: float = 0.02
    max_peers: int = 64


@dataclass
class ServerStats:
    """Counters of the server loop (frames, rejections by reason, per message type)."""

    received: int = 0
    replied: int = 0
    malformed: int = 0
    oversized: int = 0
    stale: int = 0
    expired: int = 0
    version_mismatch: int = 0
    no_session: int = 0
    errors: int = 0
    internal_errors: int = 0  # unexpected exceptions (bugs), never expected from bad input
    send_dropped: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Session:
    last_seq: int
    offset: float  # min over messages of (receive time - send time) [s]
    client: str = ""


class BridgeServer:
    """Serve ``driver`` (wrapped in a SafetyLayer) at ``endpoint``.

    Args:
        driver: the robot-side driver (a SafetyLayer is used as is, anything else is wrapped).
        endpoint: ZeroMQ bind address, e.g. ``tcp://127.0.0.1:5555`` (``:*`` = any free port;
            read :attr:`endpoint` after :attr:`ready` is set).
        safety_cfg: limits for the wrapping SafetyLayer.
        fk: forward kinematics for the workspace box.
        cfg: transport settings.
    """

    def __init__(
        self,
        driver: Driver,
        endpoint: str,
        safety_cfg: SafetyConfig | None = None,
        fk: FK | None = None,
        cfg: ServerConfig | None = None,
    ) -> None:
        self.safety = (
            driver if isinstance(driver, SafetyLayer) else SafetyLayer(driver, safety_cfg, fk=fk)
        )
        self.endpoint = endpoint
        self.cfg = cfg or ServerConfig()
        self.stats = ServerStats()
        self.ready = threading.Event()
        self._sessions: OrderedDict[tuple[bytes, ...], _Session] = OrderedDict()
        self._stop = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None) -> ServerStats:
        """Serve until ``stop`` (or :meth:`stop`) is set; returns the final counters."""
        stop = stop or self._stop
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # Hard guard against memory abuse; frames between max_msg_bytes and this are rejected
        # (and counted) by the application, beyond it ZeroMQ drops the connection.
        sock.setsockopt(zmq.MAXMSGSIZE, 4 * self.cfg.max_msg_bytes + 4096)
        sock.setsockopt(zmq.RCVHWM, 10_000)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        wd_stop = threading.Event()
        wd = threading.Thread(
            target=self._watchdog, args=(wd_stop,), name="bridge-watchdog", daemon=True
        )
        try:
            sock.bind(self.endpoint)
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self.safety.connect()
            wd.start()
            self.ready.set()
            log.info(
                "bridge server on %s (robot %s)", self.endpoint, self.safety.capabilities.robot
            )
            while not stop.is_set() and not self._stop.is_set():
                if sock.poll(int(self.cfg.poll_s * 1000), zmq.POLLIN) == 0:
                    continue
                for _ in range(1024):  # drain what is queued, bounded
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    reply = self._handle(frames)
                    try:
                        sock.send_multipart(reply, zmq.NOBLOCK)
                        self.stats.replied += 1
                    except zmq.ZMQError:
                        self.stats.send_dropped += 1
        finally:
            wd_stop.set()
            if wd.is_alive():
                wd.join(timeout=1.0)
            try:
                self.safety.disconnect()
            except Exception as e:  # noqa: BLE001 - shutting down; report, do not mask
                log.error("driver disconnect failed: %s", e)
            sock.close(0)
            ctx.term()
        return self.stats

    def _watchdog(self, stop: threading.Event) -> None:
        while not stop.wait(self.cfg.watchdog_period_s):
            try:
                self.safety.check_watchdog()
            except Exception as e:  # noqa: BLE001 - the watchdog must outlive driver errors
                log.error("watchdog hold failed: %s", e)

    # ------------------------------------------------------------------ request handling
    def _handle(self, frames: list[bytes]) -> list[bytes]:
        self.stats.received += 1
        env, payload = frames[:-1][:8], frames[-1]
        t_recv = time.time()
        seq, typ = -1, ""
        try:
            if len(payload) > self.cfg.max_msg_bytes:
                self.stats.oversized += 1
                raise wire.WireError(
                    f"message of {len(payload)} bytes exceeds the maximum {self.cfg.max_msg_bytes}"
                )
            try:
                h, b = wire.decode(payload, self.cfg.max_msg_bytes)
            except wire.WireError:
                self.stats.malformed += 1
                raise
            seq, typ = h["seq"], h["type"]
            if h["v"] != wire.PROTO_VERSION:
                self.stats.version_mismatch += 1
                raise wire.WireError(
                    f"protocol version {h['v']} not supported (server speaks {wire.PROTO_VERSION})"
                )
            if typ not in wire.REQUESTS:
                self.stats.malformed += 1
                raise wire.WireError(
                    f"unknown message type {typ!r}; expected one of {list(wire.REQUESTS)}"
                )
            self.stats.by_type[typ] = self.stats.by_type.get(typ, 0) + 1
            body = self._dispatch(tuple(env), typ, seq, h["t"], b, t_recv)
            return [*env, wire.encode(typ, seq, body)]
        except SafetyError as e:
            self.stats.errors += 1
            return [
                *env,
                wire.encode(wire.REPLY_ERROR, seq, wire.error_body("SafetyError", str(e), typ)),
            ]
        except wire.WireError as e:
            self.stats.errors += 1
            return [
                *env,
                wire.encode(wire.REPLY_ERROR, seq, wire.error_body("WireError", str(e), typ)),
            ]
        except SimError as e:
            self.stats.errors += 1
            return [
                *env,
                wire.encode(wire.REPLY_ERROR, seq, wire.error_body("BridgeError", str(e), typ)),
            ]
        except Exception as e:  # noqa: BLE001 - a driver bug must not kill the server
            self.stats.errors += 1
            self.stats.internal_errors += 1
            log.exception("driver error on %s", typ)
            return [
                *env,
                wire.encode(
                    wire.REPLY_ERROR,
                    seq,
                    wire.error_body("BridgeError", f"driver error: {type(e).__name__}: {e}", typ),
                ),
            ]

    def _dispatch(
        self,
        key: tuple[bytes, ...],
        typ: str,
        seq: int,
        t_send: float,
        b: dict[str, Any],
        t_recv: float,
    ) -> dict[str, Any]:
        safety = self.safety
        if typ == "estop":  # honoured from anyone, always
            reason = b.get("reason", "requested")
            safety.estop(f"client request: {reason}" if isinstance(reason, str) else "client")
            return {"estop": safety.status()["estop"]}
        if typ == "hello":
            proto = b.get("proto", wire.PROTO_VERSION)
            if not isinstance(proto, int) or isinstance(proto, bool) or proto != wire.PROTO_VERSION:
                self.stats.version_mismatch += 1
                raise wire.WireError(
                    f"client speaks protocol {proto!r}; server speaks {wire.PROTO_VERSION}"
                )
            client = b.get("client", "")
            self._sessions[key] = _Session(seq, t_recv - t_send, str(client)[:64])
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.cfg.max_peers:
                self._sessions.popitem(last=False)
            caps = safety.capabilities
            return {
                "capabilities": caps.to_dict(),
                "observation_features": {
                    k: list(v) for k, v in safety.observation_features.items()
                },
                "action_features": {k: list(v) for k, v in safety.action_features.items()},
                "server": {
                    "proto": wire.PROTO_VERSION,
                    "max_msg_bytes": self.cfg.max_msg_bytes,
                    "max_age_s": self.cfg.max_age_s,
                    "watchdog_s": safety.cfg.watchdog_s,
                    "t": time.time(),
                },
            }
        sess = self._sessions.get(key)
        if sess is None:
            self.stats.no_session += 1
            raise wire.WireError(f"{typ} (seq {seq}) without a session: send hello first")
        if seq <= sess.last_seq:
            self.stats.stale += 1
            raise wire.WireError(
                f"stale or duplicate {typ} seq {seq} (last accepted {sess.last_seq}); not executed"
            )
        sess.last_seq = seq
        sess.offset = min(sess.offset, t_recv - t_send)
        self._sessions.move_to_end(key)
        if typ == "send_action":
            age = (t_recv - t_send) - sess.offset
            if self.cfg.max_age_s is not None and age > self.cfg.max_age_s:
                self.stats.expired += 1
                raise wire.WireError(
                    f"send_action seq {seq} expired: {age * 1e3:.0f} ms old "
                    f"(max {self.cfg.max_age_s * 1e3:.0f} ms); not executed"
                )
            action = wire.require(b, "action", (np.ndarray, list), typ)
            return {"sent": safety.send_action(np.asarray(action))}
        if typ == "get_observation":
            return {"obs": safety.get_observation()}
        if typ == "heartbeat":
            status = safety.status()
            status["server"] = self.stats.to_dict()
            link = getattr(safety.driver, "link_stats", None)
            if link is not None:
                status["driver"] = link.to_dict() if hasattr(link, "to_dict") else dict(link)
            return {"status": status}
        if typ == "reset_estop":
            safety.reset_estop()
            return {"estop": None}
        if typ == "reset":
            return {"obs": self._reset(b)}
        if typ == "bye":
            self._sessions.pop(key, None)
            return {}
        raise wire.WireError(f"unhandled message type {typ!r}")  # pragma: no cover

    def _reset(self, b: dict[str, Any]) -> dict[str, np.ndarray]:
        seed = b.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise wire.WireError(f"reset: 'seed' must be an int, got {seed!r}")
        level = b.get("level")
        if level is not None and not isinstance(level, str):
            raise wire.WireError(f"reset: 'level' must be a string, got {level!r}")
        objects = b.get("objects")
        objects = {} if objects is None else objects
        if not isinstance(objects, dict) or not all(
            isinstance(v, np.ndarray) and v.shape == (7,) for v in objects.values()
        ):
            raise wire.WireError("reset: 'objects' must be a map name -> pose array (7,)")
        qpos = b.get("qpos")
        if qpos is not None and not isinstance(qpos, np.ndarray):
            raise wire.WireError("reset: 'qpos' must be an array")
        self.safety.reset_driver(seed=seed, level=level, objects=objects, qpos=qpos)
        return self.safety.get_observation()


def serve(
    driver: Driver,
    endpoint: str,
    safety_cfg: SafetyConfig | None = None,
    *,
    fk: FK | None = None,
    stop: threading.Event | None = None,
    server_cfg: ServerConfig | None = None,
    on_ready: Callable[[BridgeServer], None] | None = None,
) -> ServerStats:
    """Serve ``driver`` at ``endpoint`` until ``stop`` is set or the process gets SIGTERM/SIGINT.

    Returns the server's counters. ``on_ready(server)`` runs (in a helper thread) once the socket
    is bound and the driver connected, e.g. to publish the bound endpoint.
    """
    server = BridgeServer(driver, endpoint, safety_cfg, fk=fk, cfg=server_cfg)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    if on_ready is not None:

        def _notify() -> None:
            deadline = time.monotonic() + 60.0
            while not server.ready.wait(0.05):
                if stop.is_set() or time.monotonic() > deadline:
                    return
            on_ready(server)

        threading.Thread(target=_notify, daemon=True).start()
    return server.run(stop)
