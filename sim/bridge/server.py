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
from zmq.auth.thread import ThreadAuthenticator

from sim.bridge import wire
from sim.bridge.audit import AuditLog
from sim.bridge.control import COMMANDS, ControlArbiter, ControlError, Peer
from sim.bridge.keys import ServerKeys, check_bind
from sim.bridge.protocol import Driver
from sim.bridge.safety import FK, SafetyConfig, SafetyLayer
from sim.errors import ConfigError, SafetyError, SimError

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
        control_timeout_s: the controlling session loses control after this long without any
            request (heartbeat loss); the robot then holds [s]. None = never.
        takeover: allow a documented takeover (``claim`` with ``takeover`` and a reason).
        operators: who may take over: CURVE public keys (Z85), or client names when CURVE is
            off; empty = any session.
        audit_log: JSON-lines file the audit trail is appended to (None = memory only; the
            ``audit`` request returns it either way).
    """

    max_msg_bytes: int = wire.MAX_MESSAGE_BYTES
    max_age_s: float | None = 0.5
    watchdog_period_s: float = 0.002
    poll_s: float = 0.02
    max_peers: int = 64
    control_timeout_s: float | None = 2.0
    takeover: bool = True
    operators: tuple[str, ...] = ()
    audit_log: str | None = None

    def __post_init__(self) -> None:
        if self.control_timeout_s is not None and not self.control_timeout_s > 0:
            raise ConfigError(
                f"server.control_timeout_s must be > 0 or None, got {self.control_timeout_s}"
            )
        if not self.max_msg_bytes > 0 or not self.max_peers > 0:
            raise ConfigError("server.max_msg_bytes and server.max_peers must be > 0")


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
    sessions_started: int = 0
    refused_control: int = 0  # commands/claims from sessions without control
    claims: int = 0
    releases: int = 0
    takeovers: int = 0
    control_lost: int = 0  # holders dropped after control_timeout_s of silence
    auth_denied: int = 0  # CURVE keys not on the allow-list (ZAP said no)
    handshake_failed: int = 0  # failed CURVE handshakes (no key, wrong key, wrong server key)
    driver_cmds_holder: int = 0  # commands that reached the driver, by origin ...
    driver_cmds_server: int = 0  # ... holds from the watchdog, e-stop, control loss
    non_holder_at_driver: int = 0  # must stay 0: counted (and blocked) at the driver
    by_type: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Session:
    last_seq: int
    offset: float  # min over messages of (receive time - send time) [s]
    peer: Peer = field(default_factory=Peer)


class _DriverGate:
    """The innermost wrapper: counts every command that reaches the driver by origin, and
    blocks (and counts) any that a session without control would have sent. Arbitration
    happens before the safety layer; this is the check that it did."""

    def __init__(self, driver: Driver, server: BridgeServer) -> None:
        self._driver, self._server = driver, server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def send_action(self, action: Any) -> np.ndarray:
        srv = self._server
        session = getattr(srv._local, "session", None)
        if session is None:
            srv.stats.driver_cmds_server += 1
        elif srv.control.holds(session):
            srv.stats.driver_cmds_holder += 1
        else:
            srv.stats.non_holder_at_driver += 1
            log.error("blocked a command from a session without control at the driver")
            raise ControlError("command from a session without control blocked at the driver")
        return self._driver.send_action(action)


class _AllowList:
    """ZAP credentials provider: CURVE keys on the allow-list get in, others are counted."""

    def __init__(self, server: BridgeServer, allowed: frozenset[bytes]) -> None:
        self.server, self.allowed = server, allowed

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.allowed:
            return True
        with self.server._stats_lock:
            self.server.stats.auth_denied += 1
        self.server.audit.add(
            "auth_denied",
            {"name": None, "key": key.decode(), "address": None},
            reason="CURVE key not on the allow-list",
        )
        return False


ZAP_DOMAIN = "demoforge"
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


class BridgeServer:
    """Serve ``driver`` (wrapped in a SafetyLayer) at ``endpoint``.

    Args:
        driver: the robot-side driver (a SafetyLayer is used as is, anything else is wrapped).
        endpoint: ZeroMQ bind address, e.g. ``tcp://127.0.0.1:5555`` (``:*`` = any free port;
            read :attr:`endpoint` after :attr:`ready` is set). A non-loopback address needs
            ``keys`` (ConfigError otherwise, raised here, before any socket exists).
        safety_cfg: limits for the wrapping SafetyLayer.
        fk: forward kinematics for the workspace box.
        cfg: transport and control settings.
        keys: CURVE server keys and allow-list (:func:`sim.bridge.keys.load_server_keys`);
            None = plain TCP (loopback only).
        audit: the audit trail (default: a new one, appending to ``cfg.audit_log`` if set).
    """

    def __init__(
        self,
        driver: Driver,
        endpoint: str,
        safety_cfg: SafetyConfig | None = None,
        fk: FK | None = None,
        cfg: ServerConfig | None = None,
        keys: ServerKeys | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.cfg = cfg or ServerConfig()
        check_bind(endpoint, keys is not None)
        self.safety = (
            driver if isinstance(driver, SafetyLayer) else SafetyLayer(driver, safety_cfg, fk=fk)
        )
        self.safety.driver = _DriverGate(self.safety.driver, self)
        self.endpoint = endpoint
        self.keys = keys
        self.stats = ServerStats()
        self.audit = audit or AuditLog(self.cfg.audit_log)
        self.control = ControlArbiter(
            self.cfg.control_timeout_s,
            takeover=self.cfg.takeover,
            operators=self.cfg.operators,
            on_event=self._control_event,
        )
        self.ready = threading.Event()
        self._sessions: OrderedDict[tuple[bytes, ...], _Session] = OrderedDict()
        self._stop = threading.Event()
        self._lock = threading.RLock()  # sessions + control: request loop vs watchdog thread
        self._stats_lock = threading.Lock()
        self._local = threading.local()  # .session: the session whose request is being handled

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stop.set()

    def run(self, stop: threading.Event | None = None) -> ServerStats:
        """Serve until ``stop`` (or :meth:`stop`) is set; returns the final counters."""
        stop = stop or self._stop
        ctx = zmq.Context()
        auth = None
        monitor = None
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # Hard guard against memory abuse; frames between max_msg_bytes and this are rejected
        # (and counted) by the application, beyond it ZeroMQ drops the connection.
        sock.setsockopt(zmq.MAXMSGSIZE, 4 * self.cfg.max_msg_bytes + 4096)
        sock.setsockopt(zmq.RCVHWM, 10_000)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        if self.keys is not None:
            auth = ThreadAuthenticator(ctx, log=logging.getLogger("sim.bridge.zap"))
            auth.start()
            auth.configure_curve_callback(
                ZAP_DOMAIN, credentials_provider=_AllowList(self, self.keys.allowed)
            )
            sock.curve_secretkey = self.keys.secret
            sock.curve_publickey = self.keys.public
            sock.curve_server = True
            sock.zap_domain = ZAP_DOMAIN.encode()
            monitor = sock.get_monitor_socket(_HANDSHAKE_FAILED)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        if monitor is not None:
            poller.register(monitor, zmq.POLLIN)
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
                "bridge server on %s (robot %s, %s)",
                self.endpoint,
                self.safety.capabilities.robot,
                "CURVE" if self.keys is not None else "plain TCP, loopback",
            )
            while not stop.is_set() and not self._stop.is_set():
                events = dict(poller.poll(int(self.cfg.poll_s * 1000)))
                if monitor is not None and monitor in events:
                    self._drain_monitor(monitor)
                if sock not in events:
                    continue
                for _ in range(1024):  # drain what is queued, bounded
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
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
            if monitor is not None:
                sock.disable_monitor()
                monitor.close(0)
            sock.close(0)
            if auth is not None:
                auth.stop()
            ctx.term()
            self.audit.close()
        return self.stats

    def _drain_monitor(self, monitor: zmq.Socket) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                ev = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] & _HANDSHAKE_FAILED:
                with self._stats_lock:
                    self.stats.handshake_failed += 1

    def _watchdog(self, stop: threading.Event) -> None:
        while not stop.wait(self.cfg.watchdog_period_s):
            try:
                with self._lock:
                    lost = self.control.check_timeout()
                if lost is not None:
                    self.safety.hold(
                        f"control lost: {lost} sent nothing for {self.cfg.control_timeout_s:.2f} s"
                    )
                self.safety.check_watchdog()
            except Exception as e:  # noqa: BLE001 - the watchdog must outlive driver errors
                log.error("watchdog hold failed: %s", e)

    def _control_event(self, kind: str, peer: Peer, detail: dict) -> None:
        attr = {
            "claim": "claims",
            "release": "releases",
            "takeover": "takeovers",
            "control_lost": "control_lost",
        }[kind]
        setattr(self.stats, attr, getattr(self.stats, attr) + 1)
        self.audit.add(kind, peer.to_dict(), **detail)

    # ------------------------------------------------------------------ request handling
    def _handle(self, frames: list[Any]) -> list[bytes]:
        self.stats.received += 1
        env = [f.bytes if isinstance(f, zmq.Frame) else f for f in frames[:-1][:8]]
        last = frames[-1]
        payload = last.bytes if isinstance(last, zmq.Frame) else last
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
            with self._lock:
                body = self._dispatch(tuple(env), typ, seq, h["t"], b, t_recv, last)
            return [*env, wire.encode(typ, seq, body)]
        except ControlError as e:
            self.stats.errors += 1
            return [
                *env,
                wire.encode(wire.REPLY_ERROR, seq, wire.error_body("ControlError", str(e), typ)),
            ]
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
        finally:
            self._local.session = None

    @staticmethod
    def _peer(frame: Any, client: str) -> Peer:
        def prop(name: str) -> str | None:
            if not isinstance(frame, zmq.Frame):
                return None
            try:
                return frame.get(name) or None
            except zmq.ZMQError:
                return None

        key = prop("User-Id")
        return Peer(
            name=client, key=key if key and len(key) == 40 else None, address=prop("Peer-Address")
        )

    def _refuse(self, sess: _Session, typ: str, e: ControlError) -> None:
        self.stats.refused_control += 1
        self.audit.add("refused", sess.peer.to_dict(), request=typ, reason=str(e))

    def _dispatch(
        self,
        key: tuple[bytes, ...],
        typ: str,
        seq: int,
        t_send: float,
        b: dict[str, Any],
        t_recv: float,
        frame: Any = None,
    ) -> dict[str, Any]:
        safety = self.safety
        if typ == "estop":  # honoured from anyone, always; the hold it sends is the server's
            reason = b.get("reason", "requested")
            sess = self._sessions.get(key)
            who = str(sess.peer) if sess is not None else "a client without a session"
            safety.estop(
                f"client request from {who}: {reason}" if isinstance(reason, str) else "client"
            )
            return {"estop": safety.status()["estop"]}
        if typ == "hello":
            proto = b.get("proto", wire.PROTO_VERSION)
            if not isinstance(proto, int) or isinstance(proto, bool) or proto != wire.PROTO_VERSION:
                self.stats.version_mismatch += 1
                raise wire.WireError(
                    f"client speaks protocol {proto!r}; server speaks {wire.PROTO_VERSION}"
                )
            client = b.get("client", "")
            peer = self._peer(frame, str(client)[:64])
            self._sessions[key] = _Session(seq, t_recv - t_send, peer)
            self._sessions.move_to_end(key)
            self.stats.sessions_started += 1
            self.audit.add("session_start", peer.to_dict())
            while len(self._sessions) > self.cfg.max_peers:
                old_key, old = self._sessions.popitem(last=False)
                self.control.release(old_key, why="session evicted (max_peers)")
                self.audit.add("session_end", old.peer.to_dict(), why="evicted (max_peers)")
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
                    "control_timeout_s": self.cfg.control_timeout_s,
                    "curve": self.keys is not None,
                    "peer": peer.to_dict(),
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
        self.control.seen(key)
        if typ == "send_action":
            age = (t_recv - t_send) - sess.offset
            if self.cfg.max_age_s is not None and age > self.cfg.max_age_s:
                self.stats.expired += 1
                raise wire.WireError(
                    f"send_action seq {seq} expired: {age * 1e3:.0f} ms old "
                    f"(max {self.cfg.max_age_s * 1e3:.0f} ms); not executed"
                )
        if typ in COMMANDS:
            try:
                self.control.require(key, typ)
            except ControlError as e:
                self._refuse(sess, typ, e)
                raise
            self._local.session = key
        if typ == "send_action":
            action = wire.require(b, "action", (np.ndarray, list), typ)
            return {"sent": safety.send_action(np.asarray(action))}
        if typ == "get_observation":
            return {"obs": safety.get_observation()}
        if typ == "heartbeat":
            status = safety.status()
            status["server"] = self.stats.to_dict()
            status["control"] = {**self.control.status(), "you": self.control.holds(key)}
            link = getattr(safety.driver, "link_stats", None)
            if link is not None:
                status["driver"] = link.to_dict() if hasattr(link, "to_dict") else dict(link)
            return {"status": status}
        if typ == "claim":
            takeover = b.get("takeover", False)
            reason = b.get("reason", "")
            if not isinstance(takeover, bool) or not isinstance(reason, str):
                raise wire.WireError("claim: 'takeover' must be a bool and 'reason' a string")
            try:
                how = self.control.claim(key, sess.peer, takeover=takeover, reason=reason[:200])
            except ControlError as e:
                self._refuse(sess, "claim", e)
                raise
            return {"control": how, "holder": sess.peer.to_dict()}
        if typ == "release":
            return {"released": self.control.release(key)}
        if typ == "audit":
            since = b.get("since", 0)
            if not isinstance(since, int) or isinstance(since, bool):
                raise wire.WireError(f"audit: 'since' must be an int, got {since!r}")
            return {"events": self.audit.events(since, limit=1000)}
        if typ == "reset_estop":
            safety.reset_estop()
            return {"estop": None}
        if typ == "reset":
            return {"obs": self._reset(b)}
        if typ == "bye":
            self.control.release(key, why="disconnect")
            self._sessions.pop(key, None)
            self.audit.add("session_end", sess.peer.to_dict(), why="bye")
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
    keys: ServerKeys | None = None,
) -> ServerStats:
    """Serve ``driver`` at ``endpoint`` until ``stop`` is set or the process gets SIGTERM/SIGINT.

    Returns the server's counters. ``on_ready(server)`` runs (in a helper thread) once the socket
    is bound and the driver connected, e.g. to publish the bound endpoint.
    """
    server = BridgeServer(driver, endpoint, safety_cfg, fk=fk, cfg=server_cfg, keys=keys)
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
