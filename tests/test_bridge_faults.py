"""Fault tests over loopback: dead server, slow link, NaN commands, malformed/oversized floods."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from sim.bridge import wire
from sim.bridge.client import BridgeClient
from sim.bridge.commands import HardwareConfig, RecordConfig, ServeConfig, record
from sim.bridge.faults import LinkProxy
from sim.bridge.process import ServerProcess
from sim.bridge.record import load_episodes
from sim.errors import BridgeError, SafetyError

FPS = 50.0
MAX_MSG = 65536


def hw(**kw) -> HardwareConfig:
    base = dict(name="tiny", robot="tiny_arm", fps=FPS, endpoint="tcp://127.0.0.1:*",
                safety={"max_step": 0.1, "max_velocity": 4.0, "watchdog_s": 0.25},
                server={"max_msg_bytes": MAX_MSG, "max_age_s": 0.25})
    base.update(kw)
    return HardwareConfig(**base)


@pytest.fixture(scope="module")
def server():
    with ServerProcess(ServeConfig(hardware=hw())) as p:
        yield p


def _reset(c: BridgeClient) -> None:
    c.reset_estop()
    c.reset(seed=0)


def test_nan_command_is_refused_and_the_robot_holds(server):
    c = BridgeClient(server.endpoint)
    c.connect()
    try:
        _reset(c)
        for k in range(25):  # move shoulder_yaw at the velocity limit for 0.5 s
            c.send_action(np.array([0.08 * (k + 1), 0.0, 0.0, 0.5]))
            time.sleep(1 / FPS)
        assert np.abs(c.get_observation()["qvel"][0]) > 0.5  # moving
        t_sent = time.monotonic()
        with pytest.raises(SafetyError, match=r"rejected send_action \(seq \d+\): command rejected:"
                                              r" NaN/inf in \['shoulder_yaw'\]; holding position"):
            c.send_action(np.array([np.nan, 0.0, 0.0, 0.5]))
        hold = c.heartbeat()["stats"]["last_hold"]
        assert "NaN/inf" in hold["reason"]
        assert hold["t"] - t_sent < 0.5  # same CLOCK_MONOTONIC across processes on Linux
        deadline, stopped = time.monotonic() + 0.5, None
        while time.monotonic() < deadline:
            if np.abs(c.get_observation()["qvel"]).max() < 0.05:
                stopped = time.monotonic() - t_sent
                break
            time.sleep(0.005)
        assert stopped is not None, "robot still moving 500 ms after a NaN command"
        q = c.get_observation()["qpos"]
        time.sleep(0.1)
        np.testing.assert_allclose(c.get_observation()["qpos"], q, atol=0.01)  # stays put
    finally:
        c.disconnect()


def test_server_killed_mid_episode_keeps_recorded_data(tmp_path: Path):
    out = tmp_path / "ds"
    with ServerProcess(ServeConfig(hardware=hw())) as p:
        killer = threading.Timer(0.5, p.kill)
        killer.start()
        with pytest.raises(BridgeError) as e:
            record(RecordConfig(hardware=hw(endpoint=p.endpoint), out=str(out), n_episodes=3,
                                steps=20, fmt="npz", policy="sine"))
        killer.join()
    msg = str(e.value)
    assert "recording stopped: episode 1, step" in msg, msg
    assert f"no reply from {p.endpoint} within 200 ms (seq " in msg
    assert "kept 1 complete and 1 partial episode(s)" in msg
    eps = load_episodes(out)  # validated on load
    assert len(eps) == 2 and len(eps[0]) == 20 and 0 < len(eps[1]) < 20
    assert eps[1].meta.provenance["partial"] is True
    assert "no reply" in eps[1].meta.provenance["fault"]
    assert np.all(np.isfinite(eps[1].qpos))


def test_link_delayed_beyond_the_deadline(server):
    with LinkProxy(server.endpoint, delay_s=0.01) as proxy:
        c = BridgeClient(proxy.front, timeout_s=0.2)
        c.connect()
        try:
            _reset(c)
            before = c.heartbeat()
            for _ in range(5):
                c.send_action(np.array([0.05, 0, 0, 0.5]))
            proxy.delay_s = 0.35  # each way: the reply can't come back within 200 ms
            with pytest.raises(BridgeError, match=rf"no reply from {proxy.front} within 200 ms "
                                                  r"\(seq \d+\) to send_action"):
                c.send_action(np.array([0.1, 0, 0, 0.5]))
            proxy.delay_s = 0.01
            time.sleep(0.8)  # the late command reaches the server, the late reply the client
            after = c.heartbeat()
            assert c.stats.stale_replies >= 1  # the late reply was recognised and dropped
            # the command arrived 350 ms late: refused as expired, and the watchdog held
            assert after["server"]["expired"] == before["server"]["expired"] + 1
            assert after["stats"]["watchdog_holds"] > before["stats"]["watchdog_holds"]
            np.testing.assert_allclose(c.send_action(np.array([0.1, 0, 0, 0.5]))[0], 0.1,
                                       atol=0.06)  # link healthy again
        finally:
            c.disconnect()


def _valid_frames(seq0: int) -> list[bytes]:
    a = np.array([0.01, 0.0, 0.0, 0.5])
    msgs = [("hello", {"client": "fuzz", "proto": 1}), ("get_observation", {}),
            ("send_action", {"action": a}), ("heartbeat", {}), ("estop", {"reason": "fuzz"}),
            ("reset_estop", {}), ("bye", {}), ("reset", {"seed": 1})]
    return [wire.encode(t, seq0 + i, b) for i, (t, b) in enumerate(msgs)]


def _mutate(rng: np.random.Generator, frame: bytes) -> bytes:
    b = bytearray(frame)
    kind = rng.integers(6)
    if kind == 0 and b:  # flip bytes
        for i in rng.integers(0, len(b), size=rng.integers(1, 8)):
            b[i] = int(rng.integers(256))
    elif kind == 1:  # truncate
        b = b[: rng.integers(0, len(b))]
    elif kind == 2:  # insert junk
        i = int(rng.integers(0, len(b) + 1))
        b[i:i] = rng.bytes(int(rng.integers(1, 32)))
    elif kind == 3:  # structural: replace a header/body field with a random value
        msg = msgpack.unpackb(frame, raw=False)
        junk = [None, -1, 2**70, "x" * 5, 1.5, float("nan"), [], {}, b"\0", True,
                {"__nd__": 1, "dtype": "<f8", "shape": [2**30], "data": b""},
                {"__nd__": 1, "dtype": "<f8", "shape": [4], "data": b"\0" * 32},
                {"__nd__": 1, "dtype": "<f8", "shape": [4],
                 "data": np.full(4, np.nan).tobytes()}]
        where = msg["h"] if rng.random() < 0.5 else msg["b"]
        key = rng.choice(list(where) + ["action", "seq", "objects", "qpos"])
        where[str(key)] = junk[int(rng.integers(len(junk)))]
        try:
            b = bytearray(msgpack.packb(msg, use_bin_type=True))
        except (TypeError, ValueError, OverflowError):
            b = bytearray(frame[:-1])
    elif kind == 4:  # deep nesting
        depth = int(rng.integers(10, 3000))
        b = bytearray(b"\x91" * depth + b"\x00")
    else:  # duplicate a slice
        i = int(rng.integers(0, len(b) + 1))
        b = b + b[:i]
    return bytes(b)


def test_fuzz_malformed_and_oversized_messages(server):
    rng = np.random.default_rng(1234)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    c = BridgeClient(server.endpoint)
    c.connect()
    before = c.heartbeat()["server"]
    n_random, n_mutated, n_oversized, sent, replies = 5000, 5000, 20, 0, 0
    frames: list[bytes] = []
    for i in range(n_random):
        frames.append(rng.bytes(int(rng.integers(0, 300))))
    valid = _valid_frames(1)
    frames.append(valid[0])  # a hello, so mutated frames also reach the session checks
    for i in range(n_mutated):
        f = valid[int(rng.integers(len(valid)))]
        if rng.random() < 0.3:  # re-sequence valid messages: some are executed for real
            f = wire.encode("get_observation", 10 + i, {}) if rng.random() < 0.5 else f
        frames.append(_mutate(rng, f))
    for _ in range(n_oversized):
        frames.append(wire.encode("heartbeat", 1, {"pad": b"x" * (MAX_MSG + 1)}))
    order = rng.permutation(len(frames) - n_oversized)
    frames = [frames[i] for i in order] + frames[len(order):]
    t0 = time.monotonic()
    try:
        window = 200
        for start in range(0, len(frames), window):
            for f in frames[start:start + window]:
                sock.send(f)
                sent += 1
            deadline = time.monotonic() + 10.0
            while replies < sent and time.monotonic() < deadline:
                if sock.poll(1000):
                    sock.recv()
                    replies += 1
        assert replies == sent, f"server answered {replies} of {sent} frames"
        # still serving, normally, to a well-behaved client
        c.reset_estop()
        obs = c.get_observation()
        assert np.all(np.isfinite(obs["qpos"]))
        c.send_action(obs["qpos"].tolist() + [0.5])
        after = c.heartbeat()["server"]
    finally:
        c.disconnect()
        sock.close(0)
        ctx.term()
    elapsed = time.monotonic() - t0
    assert sent >= 10_000
    assert after["oversized"] - before["oversized"] == n_oversized
    rejected = sum(after[k] - before[k] for k in ("malformed", "oversized", "stale",
                                                   "no_session", "version_mismatch", "expired"))
    assert rejected >= n_random  # every random frame is rejected, and counted
    assert after["received"] - before["received"] >= sent
    print(f"fuzz: {sent} frames in {elapsed:.2f}s, rejected {rejected}, {after}")
