"""Fault injection for the wire link: a ZeroMQ proxy that delays and drops frames.

:class:`LinkProxy` sits between a :class:`~sim.bridge.client.BridgeClient` and a server
(client -> ``front`` (ROUTER, bound) -> ``back`` (DEALER, connected to the server) and back), and
holds each frame for ``delay_s`` before forwarding it; ``drop_prob`` loses frames. The server sees
the client's routing identity as part of the envelope and replies through it, so the protocol is
unchanged. Used by the fault tests and ``benchmarks/bridge.py``; loopback only.

:func:`fuzz_frames` makes hostile traffic: random bytes, and valid messages mutated at the byte
level (flips, truncation, insertion, duplication) or the structure level (header/body fields
replaced by wrong types, NaN, huge ints, lying array headers, deep nesting).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time

import msgpack
import numpy as np
import zmq

from sim.bridge import wire
from sim.bridge.keys import ClientKeys
from sim.errors import ConfigError


class LinkProxy:
    """Delay/drop proxy. Start with :meth:`start`, change :attr:`delay_s` at any time.

    Args:
        back: server endpoint to connect to, e.g. ``tcp://127.0.0.1:5555``.
        front: endpoint to bind for clients (``tcp://127.0.0.1:*`` = any free port; read
            :attr:`front` after :meth:`start`).
        delay_s: one-way delay added to every frame [s].
        drop_prob: probability that a frame is lost (each direction).
        seed: seed of the drop generator.
    """

    def __init__(
        self,
        back: str,
        front: str = "tcp://127.0.0.1:*",
        delay_s: float = 0.0,
        drop_prob: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not back.startswith("tcp://127.0.0.1:") or not front.startswith("tcp://127.0.0.1:"):
            raise ConfigError(
                "LinkProxy is for loopback tests: endpoints must be tcp://127.0.0.1:<port>"
            )
        self.back, self.front = back, front
        self.delay_s = delay_s
        self.drop_prob = drop_prob
        self.forwarded = 0
        self.dropped = 0
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LinkProxy:
        self._thread = threading.Thread(target=self._run, daemon=True, name="link-proxy")
        self._thread.start()
        if not self._ready.wait(5.0):
            raise ConfigError("LinkProxy did not start within 5 s")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def __enter__(self) -> LinkProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        ctx = zmq.Context()
        fr = ctx.socket(zmq.ROUTER)
        bk = ctx.socket(zmq.DEALER)
        for s in (fr, bk):
            s.setsockopt(zmq.LINGER, 0)
        fr.bind(self.front)
        self.front = fr.getsockopt_string(zmq.LAST_ENDPOINT)
        bk.connect(self.back)
        poller = zmq.Poller()
        poller.register(fr, zmq.POLLIN)
        poller.register(bk, zmq.POLLIN)
        queue: list[tuple[float, int, zmq.Socket, list[bytes]]] = []
        order = itertools.count()
        self._ready.set()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                while queue and queue[0][0] <= now:
                    _, _, sock, frames = heapq.heappop(queue)
                    try:
                        sock.send_multipart(frames, zmq.NOBLOCK)
                        self.forwarded += 1
                    except zmq.ZMQError:
                        self.dropped += 1
                wait = 10.0 if not queue else max(0.0, (queue[0][0] - now) * 1000)
                for sock, _ in poller.poll(min(wait, 10.0)):
                    for _ in range(256):
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if self.drop_prob and self._rng.random() < self.drop_prob:
                            self.dropped += 1
                            continue
                        dest = bk if sock is fr else fr
                        heapq.heappush(
                            queue, (time.monotonic() + self.delay_s, next(order), dest, frames)
                        )
        finally:
            fr.close(0)
            bk.close(0)
            ctx.term()


def valid_frames(seq0: int = 1) -> list[bytes]:
    """One valid frame per request type (hello first), sequence numbers from ``seq0``."""
    a = np.array([0.01, 0.0, 0.0, 0.5])
    msgs = [
        ("hello", {"client": "fuzz", "proto": wire.PROTO_VERSION}),
        ("get_observation", {}),
        ("send_action", {"action": a}),
        ("heartbeat", {}),
        ("estop", {"reason": "fuzz"}),
        ("reset_estop", {}),
        ("bye", {}),
        ("reset", {"seed": 1}),
        ("claim", {"reason": "fuzz"}),
        ("claim", {"takeover": True, "reason": "fuzz"}),
        ("release", {}),
        ("audit", {"since": 0}),
    ]
    return [wire.encode(t, seq0 + i, b) for i, (t, b) in enumerate(msgs)]


_JUNK = [
    None,
    -1,
    2**70,
    "xxxxx",
    1.5,
    float("nan"),
    [],
    {},
    b"\0",
    True,
    {"__nd__": 1, "dtype": "<f8", "shape": [2**30], "data": b""},
    {"__nd__": 1, "dtype": "<f8", "shape": [4], "data": b"\0" * 32},
    {"__nd__": 1, "dtype": "<f8", "shape": [4], "data": np.full(4, np.nan).tobytes()},
]


def mutate(rng: np.random.Generator, frame: bytes) -> bytes:
    """One random byte-level or structural mutation of a valid frame."""
    b = bytearray(frame)
    kind = int(rng.integers(6))
    if kind == 0 and b:  # flip bytes
        for i in rng.integers(0, len(b), size=int(rng.integers(1, 8))):
            b[int(i)] = int(rng.integers(256))
    elif kind == 1:  # truncate
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == 2:  # insert junk
        i = int(rng.integers(0, len(b) + 1))
        b[i:i] = rng.bytes(int(rng.integers(1, 32)))
    elif kind == 3:  # structural: replace a header/body field with a hostile value
        msg = msgpack.unpackb(frame, raw=False)
        where = msg["h"] if rng.random() < 0.5 else msg["b"]
        keys = [*where, "action", "seq", "objects", "qpos"]
        where[str(keys[int(rng.integers(len(keys)))])] = _JUNK[int(rng.integers(len(_JUNK)))]
        try:
            b = bytearray(msgpack.packb(msg, use_bin_type=True))
        except (TypeError, ValueError, OverflowError):
            b = bytearray(frame[:-1])
    elif kind == 4:  # deep nesting
        b = bytearray(b"\x91" * int(rng.integers(10, 3000)) + b"\x00")
    else:  # duplicate a slice
        i = int(rng.integers(0, len(b) + 1))
        b = b + b[:i]
    return bytes(b)


def fuzz_frames(
    rng: np.random.Generator,
    n_random: int = 5000,
    n_mutated: int = 5000,
    n_oversized: int = 0,
    max_msg_bytes: int = wire.MAX_MESSAGE_BYTES,
) -> list[bytes]:
    """Hostile frames in random order (a valid ``hello`` among them, so mutated requests also
    reach the session/sequence checks), oversized ones (``max_msg_bytes + 1``) at the end."""
    frames = [rng.bytes(int(rng.integers(0, 300))) for _ in range(n_random)]
    valid = valid_frames(1)
    frames.append(valid[0])
    for i in range(n_mutated):
        f = valid[int(rng.integers(len(valid)))]
        if rng.random() < 0.15:  # fresh sequence numbers: some requests execute for real
            f = wire.encode("get_observation", 10 + i, {})
        frames.append(mutate(rng, f))
    frames = [frames[i] for i in rng.permutation(len(frames))]
    pad = b"x" * (max_msg_bytes + 1)
    frames += [wire.encode("heartbeat", 1, {"pad": pad}) for _ in range(n_oversized)]
    return frames


def flood(
    endpoint: str,
    frames: list[bytes],
    window: int = 200,
    timeout_s: float = 10.0,
    curve: ClientKeys | None = None,
) -> int:
    """Send ``frames`` from a raw DEALER, ``window`` at a time, waiting for every reply.

    ``curve``: the DEALER's CURVE keys (a server with an allow-list answers only allowed keys).
    Returns the number of replies received (the server answers every frame it accepts).
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        sock.curve_secretkey = curve.secret
        sock.curve_publickey = curve.public
        sock.curve_serverkey = curve.server_public
    sock.connect(endpoint)
    sent = replies = 0
    try:
        for start in range(0, len(frames), window):
            for f in frames[start : start + window]:
                sock.send(f)
                sent += 1
            deadline = time.monotonic() + timeout_s
            while replies < sent and time.monotonic() < deadline:
                if sock.poll(100):
                    sock.recv()
                    replies += 1
    finally:
        sock.close(0)
        ctx.term()
    return replies
