"""The bridge client: a :class:`~sim.bridge.protocol.Driver` that talks to a bridge server.

Record/replay/compare code takes any Driver, so a remote robot behind ``serve`` is used exactly
like a local twin. Every request has a deadline; a missing reply raises
``BridgeError("no reply from tcp://127.0.0.1:5555 within 200 ms (seq 17)")``. Late replies to a
timed-out request are recognised by their ``seq`` and dropped (counted in ``stats``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from sim.bridge import wire
from sim.bridge.control import ControlError
from sim.bridge.keys import ClientKeys
from sim.bridge.protocol import Capabilities, as_action_vector
from sim.errors import BridgeError, SafetyError


@dataclass
class ClientStats:
    """Counters and round-trip times of one client."""

    requests: int = 0
    timeouts: int = 0
    stale_replies: int = 0
    bad_replies: int = 0
    errors: int = 0
    rtt_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        r = np.asarray(self.rtt_s) if self.rtt_s else np.zeros(1)
        return {
            "requests": self.requests,
            "timeouts": self.timeouts,
            "stale_replies": self.stale_replies,
            "bad_replies": self.bad_replies,
            "errors": self.errors,
            "rtt_p50_s": float(np.median(r)),
            "rtt_p99_s": float(np.percentile(r, 99)),
            "rtt_max_s": float(r.max()),
        }


class BridgeClient:
    """Driver for a robot served by :func:`sim.bridge.server.serve`.

    Args:
        endpoint: server address, e.g. ``tcp://127.0.0.1:5555``.
        timeout_s: deadline per request [s].
        connect_timeout_s: deadline for the ``hello`` exchange [s] (the server may be starting).
        heartbeat_s: if set, a background thread sends a heartbeat whenever the link was idle
            this long [s]; its result is in :attr:`last_status` / :attr:`link_error`. When the
            client claims control and this is None, it heartbeats at a quarter of the server's
            ``control_timeout_s`` so an idle holder keeps control; 0 = never heartbeat.
        name: client name reported to the server (a label; with CURVE the key is the identity).
        curve: CURVE keys (:func:`sim.bridge.keys.load_client_keys`); None = plain TCP.
        claim: claim control in :meth:`connect` (ControlError naming the holder if another
            session holds it); False = observe only (:meth:`claim` later).
    """

    def __init__(
        self,
        endpoint: str,
        timeout_s: float = 0.2,
        connect_timeout_s: float = 5.0,
        heartbeat_s: float | None = None,
        name: str = "demoforge",
        max_msg_bytes: int = wire.MAX_MESSAGE_BYTES,
        curve: ClientKeys | None = None,
        claim: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.heartbeat_s = heartbeat_s
        self.name = name
        self.max_msg_bytes = max_msg_bytes
        self.curve = curve
        self.claim_on_connect = claim
        self.stats = ClientStats()
        self.last_status: dict[str, Any] | None = None
        self.link_error: str | None = None
        self.server_info: dict[str, Any] = {}
        self._caps: Capabilities | None = None
        self._obs_features: dict[str, tuple[int, ...]] = {}
        self._act_features: dict[str, tuple[int, ...]] = {}
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self._t_last = 0.0
        self._hb_stop = threading.Event()
        self._hb: threading.Thread | None = None

    # ------------------------------------------------------------------ Driver protocol
    @property
    def capabilities(self) -> Capabilities:
        if self._caps is None:
            raise BridgeError(f"{self.endpoint}: not connected (call connect() first)")
        return self._caps

    @property
    def observation_features(self) -> dict[str, tuple[int, ...]]:
        self.capabilities  # noqa: B018 - raises when not connected
        return dict(self._obs_features)

    @property
    def action_features(self) -> dict[str, tuple[int, ...]]:
        self.capabilities  # noqa: B018
        return dict(self._act_features)

    @property
    def is_connected(self) -> bool:
        return self._sock is not None and self._caps is not None

    def connect(self) -> None:
        """Open the socket and exchange ``hello`` (raises BridgeError if nobody answers)."""
        if self._sock is not None:
            return
        self._ctx = zmq.Context()
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 50)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 250)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 1000)
        sock.setsockopt(zmq.HEARTBEAT_TTL, 2000)
        sock.setsockopt(zmq.SNDHWM, 100)
        sock.setsockopt(zmq.MAXMSGSIZE, 4 * self.max_msg_bytes + 4096)
        if self.curve is not None:
            sock.curve_secretkey = self.curve.secret
            sock.curve_publickey = self.curve.public
            sock.curve_serverkey = self.curve.server_public
        sock.connect(self.endpoint)
        self._sock = sock
        try:
            b = self._request(
                "hello", {"client": self.name, "proto": wire.PROTO_VERSION}, self.connect_timeout_s
            )
            self._caps = Capabilities.from_dict(b["capabilities"])
            self._obs_features = {k: tuple(v) for k, v in b["observation_features"].items()}
            self._act_features = {k: tuple(v) for k, v in b["action_features"].items()}
            self.server_info = dict(b.get("server", {}))
        except (BridgeError, KeyError, TypeError) as e:
            self._close()
            if isinstance(e, BridgeError):
                if self.curve is not None and "no reply" in str(e):
                    raise BridgeError(
                        f"{e} (CURVE: is this client's public key on the server's allow-list, "
                        "and hardware.curve.server_public the server's key?)"
                    ) from None
                raise
            raise BridgeError(f"{self.endpoint}: malformed hello reply ({e})") from None
        if self.claim_on_connect:
            try:
                self.claim()
            except BridgeError:
                self._close()
                raise
            if self.heartbeat_s is None and self.server_info.get("control_timeout_s"):
                self.heartbeat_s = float(self.server_info["control_timeout_s"]) / 4
        if self.heartbeat_s:
            self._hb_stop.clear()
            self._hb = threading.Thread(
                target=self._heartbeat_loop, daemon=True, name="bridge-client-heartbeat"
            )
            self._hb.start()

    def disconnect(self) -> None:
        """Say ``bye`` (best effort) and close the socket."""
        if self._sock is None:
            return
        self._hb_stop.set()
        if self._hb is not None:
            self._hb.join(timeout=2.0)
            self._hb = None
        try:
            self._request("bye", {}, min(self.timeout_s, 0.2))
        except BridgeError:
            pass
        self._close()

    def get_observation(self) -> dict[str, np.ndarray]:
        b = self._request("get_observation", {})
        obs = b.get("obs")
        if not isinstance(obs, dict) or not all(isinstance(v, np.ndarray) for v in obs.values()):
            raise BridgeError(f"{self.endpoint}: malformed observation reply")
        return obs

    def send_action(self, action: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Send a command; returns what the robot side actually sent (clamped by its safety).

        NaN/inf are forwarded on purpose: the robot-side safety layer rejects them and holds,
        and this raises its SafetyError.
        """
        a = as_action_vector(action, self.capabilities.action_names)
        b = self._request("send_action", {"action": a})
        sent = b.get("sent")
        if not isinstance(sent, np.ndarray) or sent.shape != a.shape:
            raise BridgeError(f"{self.endpoint}: malformed send_action reply")
        return sent

    # ------------------------------------------------------------------ extra requests
    def heartbeat(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Server status: e-stop, holding, last command age, safety/server/driver counters."""
        status = self._request("heartbeat", {}, timeout_s)["status"]
        self.last_status = status
        return status

    def estop(self, reason: str = "client") -> None:
        """Latch the robot-side e-stop (the robot holds; commands are refused until reset)."""
        self._request("estop", {"reason": reason})

    def reset_estop(self) -> None:
        """Clear a latched e-stop (only the session holding control may)."""
        self._request("reset_estop", {})

    def claim(self, takeover: bool = False, reason: str = "") -> str:
        """Claim control of the robot; returns "claimed", "kept" or "takeover".

        Raises:
            ControlError: another session holds control (the message names it), or a takeover
                was refused (disabled, not an operator, no reason).
        """
        b = self._request("claim", {"takeover": bool(takeover), "reason": reason})
        return str(b["control"])

    def release(self) -> bool:
        """Give control back; returns whether this session held it."""
        return bool(self._request("release", {})["released"])

    def audit(self, since: int = 0) -> list[dict[str, Any]]:
        """The server's audit events with ``seq > since`` (all of them, in pages)."""
        out: list[dict[str, Any]] = []
        while True:
            page = self._request("audit", {"since": since}, max(self.timeout_s, 1.0))["events"]
            out.extend(page)
            if len(page) < 1000:
                return out
            since = int(page[-1]["seq"])

    def reset(
        self,
        seed: int | None = None,
        level: str | None = None,
        objects: Mapping[str, np.ndarray] | None = None,
        qpos: np.ndarray | None = None,
        timeout_s: float = 2.0,
    ) -> dict[str, np.ndarray]:
        """Reset a simulated robot (twin): scene reset with ``seed``/``level``, then optional
        object poses (world frame, pos + quat w,x,y,z) and joint positions. Returns the
        observation after the reset."""
        body: dict[str, Any] = {
            "seed": seed,
            "level": level,
            "objects": {k: np.asarray(v, float) for k, v in (objects or {}).items()},
        }
        if qpos is not None:
            body["qpos"] = np.asarray(qpos, float)
        return self._request("reset", body, timeout_s)["obs"]

    # ------------------------------------------------------------------ internals
    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self._caps = None

    def _request(
        self, typ: str, body: Mapping[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            sock = self._sock
            if sock is None:
                raise BridgeError(f"{self.endpoint}: not connected (call connect() first)")
            self._seq += 1
            seq = self._seq
            self.stats.requests += 1
            t0 = time.monotonic()
            self._t_last = t0
            try:
                sock.send(wire.encode(typ, seq, body), zmq.NOBLOCK)
            except zmq.Again:
                self.stats.timeouts += 1
                raise BridgeError(
                    f"cannot send {typ} to {self.endpoint}: send queue full "
                    f"(server gone?) (seq {seq})"
                ) from None
            deadline = t0 + timeout_s
            while True:
                remaining = deadline - time.monotonic()
                if (
                    remaining <= 0
                    or sock.poll(max(1, math.ceil(remaining * 1000)), zmq.POLLIN) == 0
                ):
                    if time.monotonic() < deadline:
                        continue
                    self.stats.timeouts += 1
                    raise BridgeError(
                        f"no reply from {self.endpoint} within "
                        f"{timeout_s * 1e3:.0f} ms (seq {seq}) to {typ}"
                    )
                raw = sock.recv(zmq.NOBLOCK)
                try:
                    h, b = wire.decode(raw, self.max_msg_bytes)
                except wire.WireError:
                    self.stats.bad_replies += 1
                    continue
                if h["seq"] != seq:
                    self.stats.stale_replies += 1
                    continue
                self.stats.rtt_s.append(time.monotonic() - t0)
                if len(self.stats.rtt_s) > 100_000:
                    del self.stats.rtt_s[:50_000]
                if h["type"] == wire.REPLY_ERROR:
                    self.stats.errors += 1
                    msg = f"{self.endpoint} rejected {typ} (seq {seq}): {b.get('message', b)}"
                    if b.get("kind") == "ControlError":
                        raise ControlError(msg)
                    if b.get("kind") == "SafetyError":
                        raise SafetyError(msg)
                    raise BridgeError(msg)
                return b

    def _heartbeat_loop(self) -> None:
        assert self.heartbeat_s is not None
        while not self._hb_stop.wait(self.heartbeat_s / 2):
            if time.monotonic() - self._t_last < self.heartbeat_s:
                continue
            try:
                self.heartbeat()
                self.link_error = None
            except BridgeError as e:
                self.link_error = str(e)
