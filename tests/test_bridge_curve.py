"""CURVE over loopback: allow-listed clients work, others get nothing and are counted; key files
are permission-checked; a non-loopback bind without keys is refused; the fuzz again, with CURVE
on and two competing clients, counted at the driver."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from bridge_helpers import tiny_hw

from sim.bridge import server as server_mod
from sim.bridge.backends import load_backend
from sim.bridge.client import BridgeClient
from sim.bridge.commands import serve
from sim.bridge.config import HardwareConfig, ServeConfig
from sim.bridge.control import ControlError
from sim.bridge.faults import flood, fuzz_frames
from sim.bridge.keys import (
    CurveConfig,
    check_bind,
    is_loopback,
    keygen,
    load_client_keys,
    load_server_keys,
)
from sim.bridge.process import ServerProcess
from sim.bridge.twin import TwinConfig, TwinDriver
from sim.cli.bridge import main
from sim.errors import BridgeError, ConfigError, SafetyError

FPS = 50.0
MAX_MSG = 65536


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("keys") / "keys"
    keygen(d, ("pc1", "pc2", "fuzzer"))
    other = d.parent / "stranger"
    keygen(other, ("stranger",))  # a valid key pair that is not on the allow-list
    return d


def client_keys(keys: Path, name: str, server_dir: Path | None = None):
    server = (server_dir or keys) / "server.key"
    return load_client_keys(
        CurveConfig(server_public=str(server), client_secret=str(keys / f"{name}.key_secret"))
    )


def hw(keys: Path, **kw) -> HardwareConfig:
    curve = {"server_secret": str(keys / "server.key_secret"), "allow": str(keys / "clients")}
    server = {"max_msg_bytes": MAX_MSG, "max_age_s": 0.25, "operators": ["nobody-here"]}
    return tiny_hw(FPS, curve=curve, server=server, **kw)


@pytest.fixture(scope="module")
def server(keys):
    with ServerProcess(ServeConfig(hardware=hw(keys)), dir=keys.parent) as p:
        yield p


def test_keygen_writes_private_secrets_and_an_allow_list(keys: Path, capsys):
    for name in ("server", "pc1", "pc2"):
        assert (keys / f"{name}.key_secret").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (keys / "clients").iterdir()) == [
        "fuzzer.key",
        "pc1.key",
        "pc2.key",
    ]
    sk = load_server_keys(CurveConfig(str(keys / "server.key_secret"), str(keys / "clients")))
    assert sk is not None and len(sk.allowed) == 3 and len(sk.public) == 40
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        keygen(keys, ("pc1",))
    out = keys.parent / "cli_keys"
    main(["keygen", f"out={out}", "clients=[robot_pc]"])
    assert (
        out / "clients" / "robot_pc.key"
    ).is_file() and "server.key_secret" in capsys.readouterr().out


def test_key_files_are_permission_checked(keys: Path, tmp_path: Path):
    d = tmp_path / "k"
    keygen(d, ("pc",))
    secret = d / "server.key_secret"
    os.chmod(secret, 0o644)
    with pytest.raises(
        ConfigError, match=rf"{secret} has mode 0644: readable by others; run `chmod 600"
    ):
        load_server_keys(CurveConfig(str(secret), str(d / "clients")))
    os.chmod(secret, 0o600)
    os.chmod(d / "clients", 0o777)
    with pytest.raises(ConfigError, match=r"allow-list directory .* writable by group/others"):
        load_server_keys(CurveConfig(str(secret), str(d / "clients")))
    os.chmod(d / "clients", 0o755)
    with pytest.raises(ConfigError, match="without an allow-list any client could connect"):
        load_server_keys(CurveConfig(server_secret=str(secret)))
    public_only = d / "public_only.key_secret"
    public_only.write_text((d / "server.key").read_text())
    os.chmod(public_only, 0o600)
    with pytest.raises(ConfigError, match="is this the .key file instead of the .key_secret"):
        load_client_keys(
            CurveConfig(server_public=str(d / "server.key"), client_secret=str(public_only))
        )
    with pytest.raises(ConfigError, match="needs both server_public and client_secret"):
        load_client_keys(CurveConfig(server_public=str(d / "server.key")))


@pytest.mark.parametrize(
    "endpoint", ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.123.10:5555"]
)
def test_non_loopback_bind_without_keys_is_refused_before_any_socket(endpoint, monkeypatch):
    def no_sockets(*a, **k):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(server_mod.zmq, "Context", no_sockets)
    assert not is_loopback(endpoint)
    msg = rf"refusing to bind {endpoint.replace('*', '[*]')}: .*demoforge-bridge keygen"
    with pytest.raises(ConfigError, match=msg):
        check_bind(endpoint, has_keys=False)
    twin = TwinDriver(load_backend("tiny_arm"), TwinConfig(realtime=False))
    with pytest.raises(ConfigError, match=msg):
        server_mod.BridgeServer(twin, endpoint)
    with pytest.raises(ConfigError, match=msg):  # the command refuses before building the robot
        serve(ServeConfig(hardware=tiny_hw(FPS, endpoint=endpoint)))
    for ok in ("tcp://127.0.0.1:5555", "tcp://localhost:1", "ipc:///tmp/x", "tcp://[::1]:5"):
        check_bind(ok, has_keys=False)
    check_bind(endpoint, has_keys=True)


def test_allow_listed_client_works_and_others_get_nothing(server, keys: Path):
    good = BridgeClient(server.endpoint, name="pc1", curve=client_keys(keys, "pc1"))
    good.connect()
    try:
        assert good.server_info["curve"] is True
        assert good.server_info["peer"]["key"] == client_keys(keys, "pc1").public.decode()
        good.reset_estop()
        before = good.heartbeat()["server"]
        stranger = keys.parent / "stranger"
        bad = {
            "no key": None,
            "key not on the allow-list": client_keys(stranger, "stranger", keys),
            "wrong server key": client_keys(keys, "pc2", stranger),
        }
        for what, curve in bad.items():
            c = BridgeClient(
                server.endpoint, timeout_s=0.2, connect_timeout_s=0.5, name=what, curve=curve
            )
            with pytest.raises(BridgeError, match="no reply from"):
                c.connect()
            # the server keeps serving the good client
            sent = good.send_action(np.concatenate([good.get_observation()["qpos"], [0.5]]))
            assert np.all(np.isfinite(sent))
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            after = good.heartbeat()["server"]
            if after["auth_denied"] > before["auth_denied"] and after["handshake_failed"] >= 3:
                break
            time.sleep(0.05)
        events = good.audit()
    finally:
        good.disconnect()
    assert after["sessions_started"] == before["sessions_started"]  # nobody else got a session
    assert after["auth_denied"] > before["auth_denied"]  # the unknown key, counted
    assert after["handshake_failed"] >= 3  # every failed handshake counted
    denied = [e for e in events if e["event"] == "auth_denied"]
    stranger_key = client_keys(keys.parent / "stranger", "stranger", keys).public.decode()
    assert denied and denied[-1]["peer"]["key"] == stranger_key
    assert not any(e["peer"] and e["peer"]["name"] in bad for e in events)


def test_fuzz_with_curve_and_two_competing_clients(server, keys: Path):
    rng = np.random.default_rng(int(os.environ.get("DEMOFORGE_FUZZ_SEED", "4321")))
    holder = BridgeClient(server.endpoint, name="pc1", curve=client_keys(keys, "pc1"))
    rival = BridgeClient(server.endpoint, name="pc2", curve=client_keys(keys, "pc2"), claim=False)
    holder.connect()
    rival.connect()
    holder.reset_estop()
    stop = threading.Event()
    counts = {"holder": 0, "rival_refused": 0, "rival_other": 0}  # rival: every request fails

    def hold_loop() -> None:  # the holder keeps commanding the robot at 50 Hz
        while not stop.is_set():
            try:
                holder.send_action(np.concatenate([holder.get_observation()["qpos"], [0.5]]))
                counts["holder"] += 1
            except SafetyError as e:  # the fuzzer's e-stops are honoured; the holder re-arms
                if "e-stop latched" in str(e):
                    holder.reset_estop()
            except BridgeError:
                pass
            time.sleep(1 / FPS)

    def rival_loop() -> None:  # the competing client tries everything that needs control
        ops = [
            lambda: rival.send_action(np.array([0.3, 0.2, 0.1, 0.9])),
            rival.reset_estop,
            lambda: rival.reset(seed=1),
            rival.claim,
            lambda: rival.claim(takeover=True, reason="rival"),
        ]
        k = 0
        while not stop.is_set():
            try:
                ops[k % len(ops)]()
                counts["rival_other"] += 1
            except ControlError:
                counts["rival_refused"] += 1
            except BridgeError:
                counts["rival_other"] += 1
            k += 1
            time.sleep(0.005)

    threads = [threading.Thread(target=hold_loop), threading.Thread(target=rival_loop)]
    frames = fuzz_frames(rng, 5000, 5000, 20, MAX_MSG)
    try:
        before = holder.heartbeat()["server"]
        for t in threads:
            t.start()
        replies = flood(server.endpoint, frames, curve=client_keys(keys, "fuzzer"))
        plain = flood(server.endpoint, frames[:200], timeout_s=0.5)  # no key: nothing back
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5.0)
    try:
        holder.reset_estop()  # the fuzzer's e-stops are honoured; the holder re-arms
        holder.send_action(np.concatenate([holder.get_observation()["qpos"], [0.5]]))
        after = holder.heartbeat()["server"]
    finally:
        rival.disconnect()
        holder.disconnect()
    assert len(frames) >= 10_000 and replies == len(frames) and plain == 0
    assert after["internal_errors"] == 0, "malformed input must be rejected, not crash a handler"
    assert after["non_holder_at_driver"] == 0, "a non-holder's command reached the driver"
    assert after["driver_cmds_holder"] - before["driver_cmds_holder"] >= counts["holder"] > 10
    assert counts["rival_refused"] > 10 and counts["rival_other"] == 0, counts
    assert after["refused_control"] - before["refused_control"] >= counts["rival_refused"]
    assert after["oversized"] - before["oversized"] == 20
    assert after["received"] - before["received"] >= len(frames)
