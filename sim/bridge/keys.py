"""CURVE keys for the bridge: make them, read them with permission checks, decide who may bind.

ZeroMQ CURVE (CurveZMQ) authenticates both ends and encrypts every frame. The robot side (server)
has one key pair and an allow-list: a directory of client public keys (``*.key`` files as written
by :func:`keygen`). Each PC-side client has its own key pair and knows the server's public key.

Files (the format of ``zmq.auth.create_certificates``, a ZPL text file each)::

    <dir>/server.key          public key of the robot side (copy to every client)
    <dir>/server.key_secret   secret key of the robot side (stays on the robot PC, mode 0600)
    <dir>/clients/<name>.key  public key of a client: the allow-list
    <dir>/<name>.key_secret   secret key of a client (stays on that PC, mode 0600)

Secret-key files must be readable by their owner only (no group/other bits) and owned by the
user running the bridge; allow-list directories and their files must not be writable by group or
others (anyone who can add a file there could let themselves in). Violations raise a
:class:`~sim.errors.ConfigError` that names the file and the ``chmod`` that fixes it.

A bind address other than loopback (``127.0.0.1``, ``::1``, ``localhost``) or a local transport
(``ipc://``, ``inproc://``) is refused without keys: see :func:`check_bind`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from sim.errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
KEYGEN_HINT = (
    "make keys with `demoforge-bridge keygen out=<dir> clients=[pc1]`, then serve with "
    "hardware.curve.server_secret=<dir>/server.key_secret hardware.curve.allow=<dir>/clients "
    "and connect with hardware.curve.server_public=<dir>/server.key "
    "hardware.curve.client_secret=<dir>/pc1.key_secret"
)


@dataclass(frozen=True)
class CurveConfig:
    """Key files of one hardware config (``hardware.curve``); every path optional.

    Attributes:
        server_secret: robot side: the server's ``.key_secret`` file.
        allow: robot side: directory of allowed client public keys (``*.key``).
        server_public: PC side: the server's public ``.key`` file.
        client_secret: PC side: this client's ``.key_secret`` file (holds its public key too).
    """

    server_secret: str | None = None
    allow: str | None = None
    server_public: str | None = None
    client_secret: str | None = None

    @property
    def serves_curve(self) -> bool:
        return self.server_secret is not None

    @property
    def connects_curve(self) -> bool:
        return self.server_public is not None or self.client_secret is not None


@dataclass(frozen=True)
class ServerKeys:
    """Loaded robot-side keys: the server pair (Z85 bytes) and the allowed client public keys."""

    public: bytes
    secret: bytes
    allowed: frozenset[bytes]
    allow_dir: Path


@dataclass(frozen=True)
class ClientKeys:
    """Loaded PC-side keys: this client's pair and the server's public key (Z85 bytes)."""

    public: bytes
    secret: bytes
    server_public: bytes


# ---------------------------------------------------------------------------------- checks
def check_secret_file(path: str | os.PathLike) -> Path:
    """Raise ConfigError unless ``path`` exists, is a regular file, is owned by this user and
    has no group/other permission bits."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"CURVE secret key {p} not found; {KEYGEN_HINT}")
    st = p.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise ConfigError(
            f"CURVE secret key {p} is owned by uid {st.st_uid}, not by this user "
            f"(uid {os.getuid()}); refusing to use it"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"CURVE secret key {p} has mode {mode:04o}: readable by others; run `chmod 600 {p}`"
        )
    return p


def _check_not_writable_by_others(p: Path, what: str) -> None:
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o022:
        raise ConfigError(
            f"{what} {p} has mode {mode:04o}: writable by group/others, who could add keys; "
            f"run `chmod go-w {p}`"
        )


def _load_public(path: Path) -> bytes:
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as e:
        raise ConfigError(f"CURVE public key {path}: cannot read ({e})") from None
    if public is None or len(public) != 40:
        raise ConfigError(f"CURVE public key {path}: no 40-character Z85 public-key line")
    return public


def _load_secret(path: str | os.PathLike) -> tuple[bytes, bytes]:
    p = check_secret_file(path)
    try:
        public, secret = zmq.auth.load_certificate(str(p))
    except (OSError, ValueError) as e:
        raise ConfigError(f"CURVE secret key {p}: cannot read ({e})") from None
    if secret is None or len(secret) != 40 or public is None or len(public) != 40:
        raise ConfigError(
            f"CURVE secret key {p}: needs a public-key and a secret-key line (Z85, 40 "
            "characters each); is this the .key file instead of the .key_secret one?"
        )
    return public, secret


def load_allow_list(directory: str | os.PathLike) -> frozenset[bytes]:
    """Public keys of all ``*.key`` files in ``directory`` (checked for permissions)."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"CURVE allow-list {d} is not a directory of client .key files")
    _check_not_writable_by_others(d, "CURVE allow-list directory")
    keys = set()
    for f in sorted(d.glob("*.key")):
        _check_not_writable_by_others(f, "CURVE allow-list file")
        keys.add(_load_public(f))
    if not keys:
        raise ConfigError(f"CURVE allow-list {d} holds no client public keys (*.key)")
    return frozenset(keys)


def load_server_keys(cfg: CurveConfig) -> ServerKeys | None:
    """Robot-side keys from ``cfg`` (None when ``server_secret`` is unset)."""
    if cfg.server_secret is None:
        if cfg.allow is not None:
            raise ConfigError("hardware.curve.allow is set but server_secret is not; set both")
        return None
    if cfg.allow is None:
        raise ConfigError(
            "hardware.curve.server_secret is set but allow (directory of client public keys) "
            "is not: without an allow-list any client could connect"
        )
    public, secret = _load_secret(cfg.server_secret)
    return ServerKeys(public, secret, load_allow_list(cfg.allow), Path(cfg.allow))


def load_client_keys(cfg: CurveConfig) -> ClientKeys | None:
    """PC-side keys from ``cfg`` (None when neither client key is set)."""
    if not cfg.connects_curve:
        return None
    if cfg.server_public is None or cfg.client_secret is None:
        raise ConfigError(
            "hardware.curve: a CURVE client needs both server_public and client_secret"
        )
    public, secret = _load_secret(cfg.client_secret)
    server = _load_public(Path(cfg.server_public))
    return ClientKeys(public, secret, server)


# ---------------------------------------------------------------------------------- keygen
def keygen(out: str | os.PathLike, clients: tuple[str, ...] = ("client",)) -> dict[str, str]:
    """Write a server key pair and one pair per client name into ``out``.

    Layout: ``server.key`` / ``server.key_secret``, ``<name>.key_secret`` per client and its
    public ``clients/<name>.key`` (the allow-list). Secret files get mode 0600, directories 0700
    (``clients/`` 0755). Existing files are never overwritten (ConfigError naming them).

    Returns:
        name -> path of every file written.
    """
    out = Path(out)
    names = ["server", *clients]
    if len(set(names)) != len(names) or any(not n or "/" in n or n.startswith(".") for n in names):
        raise ConfigError(
            f"keygen: client names must be distinct, non-empty, without '/', and not 'server'; "
            f"got {list(clients)}"
        )
    allow = out / "clients"
    targets = [out / f"{n}.key_secret" for n in names] + [out / "server.key"]
    targets += [allow / f"{n}.key" for n in clients]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise ConfigError(f"keygen: refusing to overwrite {existing}; choose another out=")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    allow.mkdir(exist_ok=True, mode=0o755)
    os.chmod(out, 0o700)
    os.chmod(allow, 0o755)
    written: dict[str, str] = {}
    old = os.umask(0o077)
    try:
        for n in names:
            pub, sec = zmq.auth.create_certificates(str(out), n)
            os.chmod(sec, 0o600)
            written[f"{n}.key_secret"] = str(sec)
            if n == "server":
                os.chmod(pub, 0o644)
                written["server.key"] = str(pub)
            else:
                dest = allow / f"{n}.key"
                os.replace(pub, dest)
                os.chmod(dest, 0o644)
                written[f"clients/{n}.key"] = str(dest)
    finally:
        os.umask(old)
    return written


# ---------------------------------------------------------------------------------- binding
def endpoint_host(endpoint: str) -> str | None:
    """Host part of a ``tcp://host:port`` endpoint (None for ipc/inproc, which are local)."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ConfigError(f"endpoint {endpoint!r}: expected '<transport>://<address>'")
    if scheme in ("ipc", "inproc"):
        return None
    if scheme != "tcp":
        raise ConfigError(f"endpoint {endpoint!r}: transport {scheme!r} not supported (tcp, ipc)")
    host, _, _port = rest.rpartition(":")
    if ";" in host:  # tcp://src;dst: the bind side is the part after ';'
        host = host.split(";")[-1]
    return host


def is_loopback(endpoint: str) -> bool:
    """Whether binding ``endpoint`` is reachable from this machine only."""
    host = endpoint_host(endpoint)
    return host is None or host in LOOPBACK_HOSTS or host.startswith("127.")


def check_bind(endpoint: str, has_keys: bool) -> None:
    """Refuse to serve a non-loopback address without CURVE keys (ConfigError saying how)."""
    if not has_keys and not is_loopback(endpoint):
        raise ConfigError(
            f"refusing to bind {endpoint}: it is reachable from other machines, and without "
            f"CURVE keys anyone who can reach the port could command the robot; {KEYGEN_HINT}"
        )
