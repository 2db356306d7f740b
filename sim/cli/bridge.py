"""`demoforge-bridge` entry point: Hydra composition -> typed configs -> plain bridge functions.

``demoforge-bridge <command> [overrides]`` composes ``conf/bridge/<command>.yaml`` (with the
``hardware`` group from ``conf/hardware/``), merges it into ``OmegaConf.structured`` schemas made
from the real frozen dataclasses of :mod:`sim.bridge.config`, and calls the command function of
:mod:`sim.bridge.commands`. An unknown key or a wrong type fails before anything runs, with a
:class:`~sim.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.bridge import commands
from sim.bridge.config import (
    CompareConfig,
    HardwareConfig,
    KeygenConfig,
    RecordConfig,
    ReplayConfig,
    ServeConfig,
)
from sim.bridge.record import RecordResult
from sim.errors import ConfigError, SimError

USAGE = """usage: demoforge-bridge {serve|record|replay|compare|keygen} [hardware=<name|path.yaml>]
                        [hardware.<key>=<value> ...] [<key>=<value> ...]    (Hydra overrides)
       demoforge-bridge <command> --help

  serve                    run the robot side (the twin, or a LeRobot robot) behind the server
  record                   record episodes from the robot into a dataset (LeRobot v3 or npz)
  replay                   replay a recorded episode on the robot (dry run on a twin first)
  compare                  the same actions on a local twin and on the robot; divergence report
  keygen                   CURVE key pairs for the server and its clients (allow-list)

  hardware=twin            conf/hardware/twin.yaml (default) or a YAML path
  hardware.fps=50          override a hardware key (dotted: hardware.safety.max_step=0.05)
  <key>=<value>            a field of the command's config (RecordConfig, ReplayConfig, ...)
examples:
  demoforge-bridge serve hardware=twin
  demoforge-bridge record out=outputs/rec n_episodes=2 steps=100 policy=sine
  demoforge-bridge replay episodes=outputs/rec index=0
  demoforge-bridge compare 'robot_twin={cmd_latency_s: 0.05, noise_qpos: 0.002}'
  demoforge-bridge keygen out=keys 'clients=[pc1,operator]'
"""

COMMANDS: dict[str, tuple[type, Any]] = {
    "serve": (ServeConfig, commands.serve),
    "record": (RecordConfig, commands.record),
    "replay": (ReplayConfig, commands.replay),
    "compare": (CompareConfig, commands.compare),
    "keygen": (KeygenConfig, commands.keygen),
}


# ---------------------------------------------------------------------------------- schemas
def _writable(node: Any) -> Any:
    """Frozen dataclasses give read-only nodes; the schema must accept the YAML values."""
    node._set_flag("readonly", False)
    if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
        for k in node.keys():
            _writable(node._get_node(k))
    elif isinstance(node, ListConfig) and not node._is_none() and not node._is_missing():
        for i in range(len(node)):
            _writable(node._get_node(i))
    return node


def schema(cls: type, data: Mapping[str, Any] | None = None) -> DictConfig:
    """``OmegaConf.structured(cls)``, writable; an optional dataclass field that is None gets
    its class's schema when ``data`` gives it a mapping (e.g. ``robot_twin={...}``)."""
    s = _writable(OmegaConf.structured(cls))
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value = data.get(f.name) if isinstance(data, Mapping) else None
        if s[f.name] is not None or not isinstance(value, Mapping):
            continue
        args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)]
        dc = next((a for a in args if dataclasses.is_dataclass(a)), None)
        if dc is not None:
            s[f.name] = schema(dc, value)
    return s


def build(cls: type, data: Mapping[str, Any] | DictConfig, where: str) -> Any:
    """Frozen ``cls`` from ``data`` through its structured schema; ConfigError naming the key
    (``<where>.<dotted key>``) for unknown keys, wrong types and out-of-range values."""
    if isinstance(data, DictConfig):
        data = OmegaConf.to_container(data, resolve=True)
    data = dict(data or {})
    try:
        return OmegaConf.to_object(OmegaConf.merge(schema(cls, data), data))
    except OmegaConfBaseException as e:
        key = f"{where}.{e.full_key}" if where else str(e.full_key)
        if type(e).__name__ == "ConfigKeyError":
            parent = key.rsplit(".", 1)[0] if "." in key else where
            raise ConfigError(
                f"{parent}: unknown key {str(e.key)!r} ({key}); {e.msg.splitlines()[0]}"
            ) from None
        raise ConfigError(f"{key}: {e.msg.splitlines()[0]}") from None
    except TypeError as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def hardware_from_dict(d: Mapping[str, Any]) -> HardwareConfig:
    """HardwareConfig from a YAML mapping (unknown keys raise ConfigError naming them)."""
    return build(HardwareConfig, d, "hardware")


def config_from_dict(cls: type, d: Mapping[str, Any]) -> Any:
    """A command config (Serve/Record/Replay/Compare/KeygenConfig) from a mapping."""
    return build(cls, d, "")


def load_hardware(name: str, overrides: Mapping[str, Any] | None = None) -> HardwareConfig:
    """``conf/hardware/<name>.yaml`` (or a YAML path) with dotted overrides applied."""
    from sim.paths import conf_dir

    path = (
        Path(name)
        if name.endswith((".yaml", ".yml"))
        else (conf_dir() / "hardware" / f"{name}.yaml")
    )
    if not path.exists():
        known = sorted(p.stem for p in (conf_dir() / "hardware").glob("*.yaml"))
        raise ConfigError(f"unknown hardware {name!r}; expected one of {known} or a YAML path")
    base = _load_with_defaults(path)
    merged = OmegaConf.merge(base, OmegaConf.create(dict(overrides or {})))
    return hardware_from_dict(OmegaConf.to_container(merged, resolve=True))


def _load_with_defaults(path: Path, depth: int = 0) -> DictConfig:
    """A hardware YAML; a ``defaults`` list naming other hardware configs is applied first
    (``_self_`` last), as Hydra does for the group."""
    try:
        cfg = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError) as e:
        raise ConfigError(f"hardware file {path}: cannot read ({e})") from None
    defaults = cfg.pop("defaults", None)
    if defaults is None:
        return cfg
    if depth > 8 or not isinstance(defaults, ListConfig):
        raise ConfigError(f"hardware file {path}: 'defaults' must be a list of hardware names")
    merged = OmegaConf.create({})
    for entry in defaults:
        if entry == "_self_":
            continue
        if not isinstance(entry, str):
            raise ConfigError(f"hardware file {path}: defaults entry {entry!r} is not a name")
        merged = OmegaConf.merge(
            merged, _load_with_defaults(path.with_name(f"{entry}.yaml"), depth + 1)
        )
    return OmegaConf.merge(merged, cfg)


# ---------------------------------------------------------------------------------- parsing
def parse_args(argv: list[str]) -> tuple[str, Any]:
    """``[command, override, ...]`` -> (command, its config dataclass), composed by Hydra.

    The config is ``conf/bridge/<command>.yaml`` with the ``hardware`` group
    (``conf/hardware/<name>.yaml``); overrides use Hydra syntax (``hardware=unitree_g1_dds``,
    ``hardware.fps=50``, ``n_episodes=2``). ``hardware=<file.yaml>`` loads a YAML outside conf/.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from sim.paths import conf_dir

    if not argv or argv[0] not in COMMANDS:
        raise ConfigError(f"expected a command ({', '.join(COMMANDS)}) first\n{USAGE}")
    cmd, rest = argv[0], list(argv[1:])
    hw_file = next(
        (
            a.split("=", 1)[1]
            for a in rest
            if a.startswith("hardware=") and a.endswith((".yaml", ".yml"))
        ),
        None,
    )
    if hw_file:
        rest.remove(f"hardware={hw_file}")
    try:
        with initialize_config_dir(
            version_base=None, config_dir=str(conf_dir()), job_name="demoforge-bridge"
        ):
            cfg = compose(f"bridge/{cmd}", overrides=rest)
    except HydraException as e:
        raise ConfigError(f"demoforge-bridge {cmd}: {e}\n{USAGE}") from None
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    if "hardware" not in d:  # keygen: no robot involved
        return cmd, config_from_dict(COMMANDS[cmd][0], d)
    hw = d.pop("hardware")
    if hw_file:
        dotted = [a[len("hardware.") :] for a in rest if a.startswith("hardware.")]
        hw_over = OmegaConf.to_container(OmegaConf.from_dotlist(dotted))
        hardware = load_hardware(hw_file, hw_over)
    else:
        hardware = hardware_from_dict(hw)
    return cmd, dataclasses.replace(config_from_dict(COMMANDS[cmd][0], d), hardware=hardware)


def command_help(cmd: str) -> str:
    """Help of one command: its purpose, its config fields with defaults, the hardware keys."""
    cls = COMMANDS[cmd][0]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "hardware"}
    defaults = OmegaConf.to_yaml(OmegaConf.structured(cls)).splitlines()
    own = [line for line in defaults if line.split(":")[0] in fields]
    lines = [
        f"usage: demoforge-bridge {cmd} [<key>=<value> ...]",
        "",
        (cls.__doc__ or "").strip(),
        "",
        "keys (defaults):",
        *(f"  {line}" for line in own),
    ]
    if "hardware" in {f.name for f in dataclasses.fields(cls)}:
        hw_keys = ", ".join(f.name for f in dataclasses.fields(HardwareConfig))
        lines += [
            "",
            "hardware=<name|file.yaml> (conf/hardware/: twin, unitree_g1_dds); "
            f"hardware.<key>=... with keys: {hw_keys}",
        ]
    return "\n".join(lines) + "\n"


def _summary(result: Any) -> Any:
    if isinstance(result, RecordResult):
        return {"episodes": len(result.episodes), "jitter": result.jitter}
    if hasattr(result, "summary"):
        return result.summary()
    if hasattr(result, "to_dict"):
        return result.to_dict()
    return result


def main(argv: list[str] | None = None) -> None:
    """``demoforge-bridge``: parse ``argv`` (default ``sys.argv[1:]``), run the command."""
    from sim.cli.common import fail

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        sys.exit(0 if args else 2)
    if args[0] in COMMANDS and any(a in ("-h", "--help") for a in args[1:]):
        print(command_help(args[0]))
        sys.exit(0)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    try:
        cmd, cfg = parse_args(args)
        result = COMMANDS[cmd][1](cfg)
    except SimError as e:
        fail(e)
        return
    print(json.dumps(_summary(result), indent=2, default=str))


def bridge_main() -> None:
    """`demoforge-bridge` (serve | record | replay | compare | keygen)."""
    main()
