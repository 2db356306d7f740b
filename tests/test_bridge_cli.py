"""Bridge command functions and their argument parsing (configs from conf/hardware/*.yaml)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.bridge.config import CompareConfig, RecordConfig
from sim.bridge.keys import CurveConfig
from sim.bridge.safety import SafetyConfig
from sim.cli.bridge import COMMANDS, hardware_from_dict, load_hardware, main, parse_args
from sim.errors import ConfigError


def test_shipped_hardware_configs_load():
    twin = load_hardware("twin")
    assert twin.transport == "zmq" and twin.safety_cfg.dt == pytest.approx(1 / twin.fps)
    lan = load_hardware("twin_lan")  # the twin's keys, plus CURVE and an open endpoint
    assert lan.endpoint == "tcp://0.0.0.0:5555" and lan.safety == twin.safety
    assert lan.curve.server_secret == "bridge_keys/server.key_secret"
    g1 = load_hardware("unitree_g1_dds")
    assert g1.transport == "dds" and g1.dds.domain_id == 1 and g1.dds.interface == "lo"


def test_parse_args_and_errors_name_the_key():
    cmd, cfg = parse_args(
        ["record", "out=/tmp/x", "n_episodes=2", "hardware.fps=50", "hardware.safety.max_step=0.05"]
    )
    assert cmd == "record" and isinstance(cfg, RecordConfig) and cfg.n_episodes == 2
    assert cfg.hardware.fps == 50 and cfg.hardware.safety_cfg.max_step == 0.05
    with pytest.raises(ConfigError, match=r"record: Could not override 'outt'"):
        parse_args(["record", "outt=1"])
    with pytest.raises(ConfigError, match=r"(?s)serve: .*hardware/nope.*twin"):
        parse_args(["serve", "hardware=nope"])
    with pytest.raises(
        ConfigError, match=r"expected a command \(serve, record, replay, compare, keygen\)"
    ):
        parse_args(["fly"])
    with pytest.raises(ConfigError, match=r"hardware.safety: unknown key 'maxstep'"):
        hardware_from_dict({"safety": {"maxstep": 1}})
    with pytest.raises(ConfigError, match="hardware.transport must be 'zmq' or 'dds'"):
        hardware_from_dict({"transport": "serial"})


@pytest.mark.timing
def test_compare_command_with_a_local_imperfect_twin(tmp_path: Path, capsys):
    main(
        [
            "compare",
            "hardware.robot=tiny_arm",
            "hardware.fps=50",
            "hardware.safety.workspace_lo=null",
            "hardware.safety.workspace_hi=null",
            f"out={tmp_path}",
            "steps=60",
            "robot_twin={cmd_latency_s: 0.04, seed: 1}",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((tmp_path / "report.json").read_text())
    assert printed["lag_s"] == report["lag_s"] and report["drivers"][1] == "twin+imperfections"
    assert 0.02 <= report["lag_s"] <= 0.1, report
    assert isinstance(CompareConfig().hardware.safety, SafetyConfig)


@pytest.mark.parametrize("args", [["--help"], ["-h"], *[[c, "--help"] for c in COMMANDS]])
def test_help_exits_0_for_the_tool_and_every_command(args):
    proc = subprocess.run(
        [sys.executable, "-c", "from sim.cli import bridge_main; bridge_main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: demoforge-bridge")
    if len(args) == 2:
        assert f"demoforge-bridge {args[0]}" in proc.stdout and "keys (defaults):" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "hardware.safety.maxstep=1"], "hardware.safety.maxstep"),
        (["record", "hardware.fps=abc"], "hardware.fps: Value 'abc'"),
        (["record", "n_episodes=x"], "n_episodes: Value 'x'"),
        (["compare", "robot_twin={latency: 1}"], "robot_twin: unknown key 'latency'"),
        (["serve", "hardware.server.control_timeout_s=0"], "server.control_timeout_s must be > 0"),
        (["serve", "hardware.curve.bogus=1"], "hardware.curve.bogus"),
        (["keygen", "outt=keys"], "'outt'"),
    ],
)
def test_typos_fail_at_start_up_naming_the_key(args, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_args(args)


def test_lan_config_needs_keys_and_says_how_to_make_them(tmp_path: Path, monkeypatch):
    from sim.bridge.commands import serve
    from sim.bridge.config import ServeConfig

    monkeypatch.chdir(tmp_path)  # the config's key paths are relative
    cmd, cfg = parse_args(["serve", "hardware=twin_lan"])
    with pytest.raises(ConfigError, match=r"bridge_keys/server.key_secret not found; make keys"):
        serve(cfg)
    open_bind = dataclasses.replace(cfg.hardware, curve=CurveConfig())
    with pytest.raises(ConfigError, match=r"refusing to bind tcp://0.0.0.0:5555"):
        serve(ServeConfig(hardware=open_bind))
    main(["keygen", "out=bridge_keys", "clients=[pc1]"])
    from sim.bridge.keys import load_client_keys, load_server_keys

    assert load_server_keys(cfg.hardware.curve) is not None  # now the config's files exist
    assert load_client_keys(cfg.hardware.curve) is not None
