"""One controller at a time: two clients against one server in another process, and the
arbiter's rules on a fake clock."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from bridge_helpers import tiny_hw

from sim.bridge.client import BridgeClient
from sim.bridge.commands import record
from sim.bridge.config import HardwareConfig, RecordConfig, ServeConfig
from sim.bridge.control import ControlArbiter, ControlError, Peer
from sim.bridge.process import ServerProcess
from sim.bridge.record import load_episodes
from sim.errors import SafetyError

FPS = 50.0
CONTROL_TIMEOUT_S = 0.4


class Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def __call__(self) -> float:
        return self.t


def test_arbiter_rules_on_a_fake_clock():
    clock, events = Clock(), []
    arb = ControlArbiter(
        timeout_s=1.0,
        operators=["ops"],
        clock=clock,
        on_event=lambda kind, peer, detail: events.append((kind, peer.name, detail)),
    )
    a, b, ops = Peer("a"), Peer("b"), Peer("ops")
    with pytest.raises(ControlError, match=r"send_action refused: .*nobody holds it"):
        arb.require("A", "send_action")
    assert arb.claim("A", a) == "claimed" and arb.claim("A", a) == "kept"
    with pytest.raises(ControlError, match=r"control is held by 'a' \(for 0.0 s\)"):
        arb.claim("B", b)
    with pytest.raises(ControlError, match=r"reset_estop refused: .*held by 'a'"):
        arb.require("B", "reset_estop")
    with pytest.raises(ControlError, match="'b' is not an operator"):
        arb.claim("B", b, takeover=True, reason="mine")
    with pytest.raises(ControlError, match="a reason is required"):
        arb.claim("O", ops, takeover=True)
    assert arb.claim("O", ops, takeover=True, reason="console") == "takeover"
    assert arb.holder == ops and not arb.release("A") and arb.release("O")
    arb.claim("A", a)
    clock.t += 0.9
    arb.seen("A")  # any request keeps control alive
    clock.t += 0.9
    assert arb.check_timeout() is None and arb.holds("A")
    clock.t += 1.01
    assert arb.check_timeout() == a and arb.holder is None
    kinds = [e[0] for e in events]
    assert kinds == ["claim", "takeover", "release", "claim", "control_lost"]
    assert events[1][2] == {"from": a.to_dict(), "reason": "console"}
    # with CURVE the operator entry is a key; a name is then not enough
    key = "K" * 40
    by_key = ControlArbiter(operators=[key], clock=clock)
    by_key.claim("A", a)
    with pytest.raises(ControlError, match="is not an operator"):
        by_key.claim("X", Peer(name=key[:5], key="Z" * 40), takeover=True, reason="r")
    with pytest.raises(ControlError, match="is not an operator"):
        by_key.claim("N", Peer(name=key, key="Z" * 40), takeover=True, reason="r")
    assert by_key.claim("O", Peer(name="any", key=key), takeover=True, reason="r") == "takeover"
    disabled = ControlArbiter(takeover=False, clock=clock)
    disabled.claim("A", a)
    with pytest.raises(ControlError, match="takeovers are disabled"):
        disabled.claim("B", b, takeover=True, reason="x")


def hw(audit: Path | None = None, **kw) -> HardwareConfig:
    server = {
        "control_timeout_s": CONTROL_TIMEOUT_S,
        "operators": ["operator-console"],
        "audit_log": None if audit is None else str(audit),
    }
    return tiny_hw(FPS, server=server, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    audit = tmp_path_factory.mktemp("robot") / "audit.jsonl"
    with ServerProcess(ServeConfig(hardware=hw(audit)), dir=audit.parent) as p:
        p.audit_path = audit
        yield p


def client(endpoint: str, name: str, **kw) -> BridgeClient:
    c = BridgeClient(endpoint, name=name, **kw)
    c.connect()
    return c


def hold_action(c: BridgeClient) -> np.ndarray:
    return np.concatenate([c.get_observation()["qpos"], [0.5]])


def test_second_client_observes_and_is_refused_while_the_first_holds(server):
    a = client(server.endpoint, "client-a")
    b = client(server.endpoint, "client-b", claim=False)
    try:
        a.reset_estop()
        a.send_action(hold_action(a))
        with pytest.raises(ControlError, match=r"send_action refused: .*held by 'client-a'"):
            b.send_action(hold_action(b))
        for request in (b.reset_estop, lambda: b.reset(seed=0)):
            with pytest.raises(ControlError, match=r"refused: .*held by 'client-a'"):
                request()
        with pytest.raises(ControlError, match=r"control is held by 'client-a'"):
            b.claim()
        # observing needs no control
        obs = b.get_observation()
        assert obs["qpos"].shape == (3,) and np.all(np.isfinite(obs["qpos"]))
        status = b.heartbeat()
        assert status["control"]["holder"]["name"] == "client-a"
        assert status["control"]["you"] is False and a.heartbeat()["control"]["you"] is True
        # e-stop is honoured from anyone; only the holder re-arms
        b.estop("client-b saw a person near the arm")
        with pytest.raises(SafetyError, match="e-stop latched"):
            a.send_action(hold_action(a))
        with pytest.raises(ControlError):
            b.reset_estop()
        a.reset_estop()
        a.send_action(hold_action(a))
        server_stats = a.heartbeat()["server"]
        assert server_stats["non_holder_at_driver"] == 0
        assert server_stats["refused_control"] >= 5
    finally:
        b.disconnect()
        a.disconnect()


def test_control_moves_on_release_disconnect_and_takeover(server):
    a = client(server.endpoint, "client-a")
    b = client(server.endpoint, "client-b", claim=False)
    try:
        assert a.release() is True
        assert b.claim() == "claimed"
        b.send_action(hold_action(b))
        with pytest.raises(ControlError, match=r"held by 'client-b'"):
            a.send_action(hold_action(a))
        b.disconnect()  # bye: the session ends and its control with it
        assert a.claim() == "claimed"
        a.send_action(hold_action(a))
        ops = client(server.endpoint, "client-b", claim=False)  # not an operator
        with pytest.raises(ControlError, match="'client-b' .* is not an operator"):
            ops.claim(takeover=True, reason="mine now")
        ops.disconnect()
        console = client(server.endpoint, "operator-console", claim=False)
        try:
            assert console.claim(takeover=True, reason="operator console: stop the demo") == (
                "takeover"
            )
            with pytest.raises(ControlError, match=r"held by 'operator-console'"):
                a.send_action(hold_action(a))
            events = console.audit()
        finally:
            console.disconnect()
    finally:
        a.disconnect()
        b.disconnect()
    take = [e for e in events if e["event"] == "takeover"][-1]
    assert take["peer"]["name"] == "operator-console" and take["from"]["name"] == "client-a"
    assert take["reason"] == "operator console: stop the demo"
    refused = [e for e in events if e["event"] == "refused"]
    assert any(e["peer"]["name"] == "client-a" and e["request"] == "send_action" for e in refused)
    assert {"session_start", "claim", "release", "session_end"} <= {e["event"] for e in events}


@pytest.mark.timing
def test_control_released_after_heartbeat_loss_with_the_robot_held(server):
    silent = client(server.endpoint, "notebook", heartbeat_s=0)  # no heartbeat thread
    b = client(server.endpoint, "client-b", claim=False)
    try:
        silent.reset_estop()
        q0 = silent.get_observation()["qpos"]
        for k in range(10):  # move, then go silent mid-motion
            silent.send_action(np.concatenate([q0 + [0.08 * (k + 1), 0, 0], [0.5]]))
            time.sleep(1 / FPS)
        t_silent = time.monotonic()
        with pytest.raises(ControlError, match="held by 'notebook'"):
            b.claim()
        time.sleep(0.3)  # past the 0.25 s watchdog, before the 0.4 s control timeout
        held = b.heartbeat()
        assert held["holding"] is True and held["control"]["holder"]["name"] == "notebook"
        q_held = b.get_observation()["qpos"]
        deadline, claimed = t_silent + 5.0, None
        while time.monotonic() < deadline:
            try:
                claimed = b.claim()
                break
            except ControlError:
                time.sleep(0.02)
        waited = time.monotonic() - t_silent
        assert claimed == "claimed", "control not released after the holder went silent"
        assert CONTROL_TIMEOUT_S - 0.05 <= waited <= CONTROL_TIMEOUT_S + 2.0, waited
        # the robot stayed where it was held while nobody had control
        np.testing.assert_allclose(b.get_observation()["qpos"], q_held, atol=0.02)
        status = b.heartbeat()
        assert status["server"]["control_lost"] >= 1 and status["holding"] is True
        with pytest.raises(ControlError, match="held by 'client-b'"):
            silent.send_action(hold_action(silent))  # the old holder is refused now
        b.send_action(hold_action(b))
        lost = [e for e in b.audit() if e["event"] == "control_lost"][-1]
        assert lost["peer"]["name"] == "notebook" and lost["why"] == "heartbeat loss"
    finally:
        b.disconnect()
        silent.disconnect()


def test_recording_keeps_the_audit_trail_beside_the_episodes(server, tmp_path: Path):
    out = tmp_path / "rec"
    res = record(
        RecordConfig(
            hardware=hw(endpoint=server.endpoint, client="recorder-pc"),
            out=str(out),
            n_episodes=1,
            steps=10,
            fmt="npz",
            policy="sine",
        )
    )
    assert len(res.episodes) == 1 and len(load_episodes(out)) == 1
    lines = (out / "bridge_audit.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    mine = [e for e in events if e["peer"] and e["peer"]["name"] == "recorder-pc"]
    assert [e["event"] for e in mine][:2] == ["session_start", "claim"]
    assert all(e["peer"]["address"] == "127.0.0.1" for e in mine)
    # the robot side keeps its own copy
    robot_side = server.audit_path.read_text().splitlines()
    assert len(robot_side) >= len(lines)


def test_recording_is_refused_while_another_client_holds_control(server, tmp_path: Path):
    # Import what record() loads lazily first: a C-extension import can hold the GIL longer than
    # the 0.4 s control lease and starve the holder's heartbeat thread (seen once in the suite).
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import sim.io.bridge_record  # noqa: F401
    import sim.io.lerobot  # noqa: F401

    holder = client(server.endpoint, "client-a")
    out = tmp_path / "rec"
    try:
        with pytest.raises(ControlError, match=r"control is held by 'client-a'"):
            record(RecordConfig(hardware=hw(endpoint=server.endpoint), out=str(out), fmt="npz"))
    finally:
        holder.disconnect()
    assert not out.exists() and not out.with_name("rec.partial").exists()
