"""Fault injection for the wire link: a ZeroMQ proxy that delays and drops frames.

:class:`LinkProxy` sits between a :class:`~sim.bridge.client.BridgeClient` and a server
(client -> ``front`` (ROUTER, bound) -> ``back`` (DEALER, connected to the server) and back), and
holds each frame for ``delay_s`` before forwarding it; ``drop_prob`` loses frames. The server sees
the client's routing identity as part of the envelope and replies through it, so the protocol is
unchanged. Used by the fault tests and ``benchmarks/bridge.py``; loopback only.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time

import numpy as np
import zmq

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

    def __init__(self, back: str, front: str = "tcp://127.0.0.1:*", delay_s: float = 0.0,
                 drop_prob: float = 0.0, seed: int = 0) -> None:
        if not back.startswith("tcp://127.0.0.1:") or not front.startswith("tcp://127.0.0.1:"):
            raise ConfigError("LinkProxy is for loopback tests: endpoints must be "
                              "tcp://127.0.0.1:<port>")
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
                        heapq.heappush(queue, (time.monotonic() + self.delay_s, next(order),
                                               dest, frames))
        finally:
            fr.close(0)
            bk.close(0)
            ctx.term()
