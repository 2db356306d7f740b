"""demoforge bridge wire protocol, version 1.

Transport
    ZeroMQ DEALER (client) <-> ROUTER (server, beside the robot), TCP, e.g.
    ``tcp://127.0.0.1:5555``. Why not REQ/REP: a REQ socket that misses a reply is stuck in its
    send/recv state machine and must be torn down; with DEALER the client can time out, keep
    the socket, and drop the late reply when it arrives (it carries the old ``seq``). ROUTER
    serves several clients, and replies to each through its routing envelope. Dead peers: the
    client times out per request (``BridgeError`` naming endpoint, timeout and seq), ZMTP
    heartbeats (``ZMQ_HEARTBEAT_*``) drop dead TCP links so the socket reconnects, and
    application heartbeats report the server's safety status. The robot side never depends on
    the client being alive: its watchdog holds the robot when commands stop.

Frames
    Each message is ONE ZeroMQ frame holding a msgpack map (a ROUTER sees routing frames before
    it; a reply repeats them). At most ``MAX_MESSAGE_BYTES`` (default 4 MiB, configurable);
    larger frames are rejected with an error reply and counted, never decoded::

        {"h": {"v": 1, "type": <str>, "seq": <int>, "t": <float>}, "b": {...}}

    ``v`` protocol version, ``type`` message type, ``seq`` sender's sequence number (client:
    strictly increasing per connection, starting at 1 with ``hello``), ``t`` sender's
    ``time.time()`` at send [s]. Numpy arrays anywhere in ``b`` are maps
    ``{"__nd__": 1, "dtype": "<f8", "shape": [n, ...], "data": <bin>}`` (little-endian,
    C order; dtypes: bool, (u)int8-64, float16/32/64; ``len(data)`` must equal the size implied
    by dtype and shape).

Requests (client -> server) and their reply bodies (server -> client, same ``type``/``seq``)
    ``hello``        b: {client, proto}          -> {capabilities, observation_features,
                                                     action_features, server}
    ``get_observation`` b: {}                    -> {obs: {key: array}}
    ``send_action``  b: {action: array (m,)}     -> {sent: array (m,)} (clamped by safety)
    ``heartbeat``    b: {}                       -> {status: {estop, holding, last_cmd_age_s,
                                                     stats, server}}
    ``estop``        b: {reason}                 -> {estop: reason}
    ``reset_estop``  b: {}                       -> {estop: None}
    ``reset``        b: {seed, level, objects?}  -> {obs} (simulated drivers only)
    ``bye``          b: {}                       -> {} (ends the session, releases control)
    ``claim``        b: {takeover?, reason?}     -> {control: "claimed"|"kept"|"takeover",
                                                     holder: {name, key, address}}
    ``release``      b: {}                       -> {released: bool}
    ``audit``        b: {since?: int}            -> {events: [{t, seq, event, peer, ...}]}
    Any request can instead get ``type: "error"``, b: {kind, message, re}: ``kind`` is
    ``"SafetyError"``, ``"ControlError"``, ``"BridgeError"`` or ``"WireError"``, ``re`` the
    request type.

Rules (server)
    * ``hello`` starts a session per routing identity; other requests before it are errors.
    * ``seq`` must exceed the session's last accepted seq: stale/duplicate requests are rejected
      (error, counted) and never executed.
    * A ``send_action`` older than ``max_age_s`` (send time vs. receive time, corrected by the
      clock offset measured at ``hello``) is rejected as expired: late commands are unsafe.
    * ``estop`` is honoured from anyone, at any time, without session or seq checks.
    * One session at a time holds control (``claim``); ``send_action``, ``reset_estop`` and
      ``reset`` from any other session are refused (``ControlError`` naming the holder, counted
      and audited). Control ends with ``release``, ``bye``, or ``control_timeout_s`` without any
      request from the holder (the robot then holds). ``claim`` with ``takeover: true`` and a
      ``reason`` takes control from the holder when the server allows it (audited).
    * With CURVE (``tcp://`` off loopback requires it) only clients whose public key is on the
      server's allow-list complete the handshake; others never reach the request handler.
    * Every received frame gets exactly one reply (malformed ones an error with seq -1).
    * A different ``v`` is rejected with an error naming both versions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

from sim.errors import BridgeError

PROTO_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_ARRAY_DIMS = 4

REQUESTS = (
    "hello",
    "get_observation",
    "send_action",
    "heartbeat",
    "estop",
    "reset_estop",
    "reset",
    "bye",
    "claim",
    "release",
    "audit",
)
REPLY_ERROR = "error"
_DTYPES = {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"}


class WireError(BridgeError):
    """A frame is not a valid protocol-1 message (bad msgpack, header, array, size)."""


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        a = np.asarray(obj, order="C")
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype.str not in _DTYPES:
            raise WireError(f"cannot send array of dtype {a.dtype} (allowed: {sorted(_DTYPES)})")
        return {"__nd__": 1, "dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise WireError(f"cannot encode {type(obj).__name__} on the wire")


def _decode_array(m: dict[str, Any]) -> np.ndarray:
    dtype, shape, data = m.get("dtype"), m.get("shape"), m.get("data")
    if set(m) != {"__nd__", "dtype", "shape", "data"}:
        raise WireError(f"array map has keys {sorted(m)}; expected __nd__, data, dtype, shape")
    if dtype not in _DTYPES:
        raise WireError(f"array dtype {dtype!r} not allowed (allowed: {sorted(_DTYPES)})")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_ARRAY_DIMS
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in shape)
    ):
        raise WireError(
            f"array shape {shape!r} must be a list of <= {MAX_ARRAY_DIMS} non-negative ints"
        )
    if not isinstance(data, bytes):
        raise WireError(f"array data must be bin, got {type(data).__name__}")
    dt = np.dtype(dtype)
    size = dt.itemsize
    for s in shape:
        size *= s
    if size != len(data):
        raise WireError(f"array of dtype {dtype} shape {shape} needs {size} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dt).reshape(tuple(shape)).copy()


def _hook(m: dict[str, Any]) -> Any:
    if "__nd__" in m:
        return _decode_array(m)
    return m


def encode(
    msg_type: str,
    seq: int,
    body: Mapping[str, Any] | None = None,
    t: float | None = None,
    version: int = PROTO_VERSION,
) -> bytes:
    """One message -> one frame (see module docstring)."""
    header = {
        "v": version,
        "type": msg_type,
        "seq": int(seq),
        "t": time.time() if t is None else float(t),
    }
    return msgpack.packb({"h": header, "b": dict(body or {})}, default=_default, use_bin_type=True)


def decode(
    frame: bytes, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Frame -> (header, body); raises WireError naming what is wrong.

    The header is checked for types only; the version is checked by the receiver (so it can
    answer with both versions named).
    """
    if len(frame) > max_bytes:
        raise WireError(f"message of {len(frame)} bytes exceeds the maximum {max_bytes}")
    try:
        msg = msgpack.unpackb(
            frame,
            raw=False,
            object_hook=_hook,
            strict_map_key=True,
            use_list=True,
            max_bin_len=max_bytes,
            max_str_len=65536,
            max_array_len=65536,
            max_map_len=4096,
            max_ext_len=0,
        )
    except WireError:
        raise
    except Exception as e:  # msgpack raises many types on garbage; all mean "malformed"
        raise WireError(f"not a msgpack message: {type(e).__name__}: {e}") from None
    if not isinstance(msg, dict) or set(msg) != {"h", "b"}:
        raise WireError("message must be a map with keys 'h' (header) and 'b' (body)")
    h, b = msg["h"], msg["b"]
    if not isinstance(h, dict) or not isinstance(b, dict):
        raise WireError("header 'h' and body 'b' must be maps")
    if set(h) != {"v", "type", "seq", "t"}:
        raise WireError(f"header keys {sorted(h, key=repr)}; expected ['seq', 't', 'type', 'v']")
    if not isinstance(h["v"], int) or isinstance(h["v"], bool):
        raise WireError(f"header 'v' must be an int, got {h['v']!r}")
    if not isinstance(h["type"], str):
        raise WireError(f"header 'type' must be a string, got {type(h['type']).__name__}")
    if not isinstance(h["seq"], int) or isinstance(h["seq"], bool) or abs(h["seq"]) >= 2**63:
        raise WireError(f"header 'seq' must be an int64, got {h['seq']!r}")
    if not isinstance(h["t"], (int, float)) or isinstance(h["t"], bool) or not np.isfinite(h["t"]):
        raise WireError(f"header 't' must be a finite number, got {h['t']!r}")
    return h, b


def error_body(kind: str, message: str, re: str = "") -> dict[str, str]:
    """Body of an ``error`` reply."""
    return {"kind": kind, "message": message, "re": re}


def require(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], msg_type: str) -> Any:
    """``body[key]`` checked for type; raises WireError naming the message and key."""
    if key not in body:
        raise WireError(f"{msg_type}: body lacks {key!r}")
    value = body[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise WireError(f"{msg_type}: {key!r} must be {names}, got {type(value).__name__}")
    return value
