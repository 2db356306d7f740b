"""Who may command the robot: one controlling session at a time (robot side).

:class:`ControlArbiter` is pure bookkeeping with an injected clock; the server asks it before any
request that moves or re-arms the robot. Rules:

* ``claim`` gives control to a session when nobody holds it (or it already does). While another
  session holds it, a claim is refused with a :class:`ControlError` naming the holder.
* ``claim`` with ``takeover=True`` and a reason takes control from the holder, if takeovers are
  enabled and the requester is one of ``operators`` (empty = any authenticated session); the
  takeover and its reason are audited.
* Control ends with ``release``, with the session's ``bye`` (disconnect), or when the holder sent
  nothing for ``timeout_s`` (heartbeat loss: the server then makes the robot hold).
* Commands (``send_action``, ``reset_estop``, ``reset``) are only accepted from the holder;
  ``estop`` is accepted from anyone; observing (``get_observation``, ``heartbeat``) needs no
  control.

Identities are :class:`Peer` values: the self-reported client name, the CURVE public key (Z85,
authenticated by the ZAP handler, None without CURVE) and the peer's IP address. Without CURVE a
name is only a label; with CURVE the key is proof.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from sim.errors import SafetyError

#: Requests that need control.
COMMANDS = ("send_action", "reset_estop", "reset")


class ControlError(SafetyError):
    """A command from a session that does not hold control (or a refused claim)."""


@dataclass(frozen=True)
class Peer:
    """Who a session is: client name (self-reported), CURVE key (authenticated), address."""

    name: str = ""
    key: str | None = None
    address: str | None = None

    def __str__(self) -> str:
        parts = [repr(self.name or "?")]
        if self.key:
            parts.append(f"key {self.key[:8]}…")
        if self.address:
            parts.append(f"from {self.address}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "key": self.key, "address": self.address}

    def matches(self, who: str) -> bool:
        """Whether operator entry ``who`` (a CURVE key, or a name) names this peer."""
        return who == self.key or (self.key is None and who == self.name)


@dataclass
class _Holder:
    session: Hashable
    peer: Peer
    since: float
    last_seen: float


class ControlArbiter:
    """One controlling session at a time.

    Args:
        timeout_s: the holder loses control after this long without any request [s]
            (None = never).
        takeover: whether a documented takeover (claim with ``takeover=True``) is allowed.
        operators: who may take over (CURVE keys, or names when CURVE is off); empty = anyone.
        clock: monotonic time source [s].
        on_event: ``on_event(kind, peer, detail)`` for every claim/release/takeover/loss (audit).
    """

    def __init__(
        self,
        timeout_s: float | None = 2.0,
        takeover: bool = True,
        operators: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, Peer, dict], None] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.takeover_enabled = takeover
        self.operators = tuple(operators)
        self.clock = clock
        self.on_event = on_event or (lambda kind, peer, detail: None)
        self._holder: _Holder | None = None

    # ------------------------------------------------------------------ queries
    @property
    def holder(self) -> Peer | None:
        return None if self._holder is None else self._holder.peer

    @property
    def holder_session(self) -> Hashable | None:
        return None if self._holder is None else self._holder.session

    def holds(self, session: Hashable) -> bool:
        return self._holder is not None and self._holder.session == session

    def status(self) -> dict:
        h = self._holder
        if h is None:
            return {"holder": None, "held_s": None, "idle_s": None}
        now = self.clock()
        return {"holder": h.peer.to_dict(), "held_s": now - h.since, "idle_s": now - h.last_seen}

    # ------------------------------------------------------------------ changes
    def seen(self, session: Hashable) -> None:
        """Any request from ``session`` keeps its control alive."""
        if self.holds(session):
            assert self._holder is not None
            self._holder.last_seen = self.clock()

    def claim(self, session: Hashable, peer: Peer, takeover: bool = False, reason: str = "") -> str:
        """Give control to ``session``; returns "claimed", "kept" or "takeover".

        Raises:
            ControlError: another session holds control (and no allowed takeover was asked).
        """
        now = self.clock()
        h = self._holder
        if h is not None and h.session == session:
            h.last_seen = now
            return "kept"
        if h is not None:
            if not takeover:
                raise ControlError(
                    f"control is held by {h.peer} (for {now - h.since:.1f} s); observe, wait "
                    "for release, or take over with claim(takeover=True, reason=...)"
                )
            if not self.takeover_enabled:
                raise ControlError(f"takeover refused: takeovers are disabled; {h.peer} holds")
            if self.operators and not any(peer.matches(o) for o in self.operators):
                raise ControlError(
                    f"takeover refused: {peer} is not an operator (server.operators); "
                    f"{h.peer} holds control"
                )
            if not reason:
                raise ControlError("takeover refused: a reason is required (it is audited)")
            self.on_event("takeover", peer, {"from": h.peer.to_dict(), "reason": reason})
            self._holder = _Holder(session, peer, now, now)
            return "takeover"
        self._holder = _Holder(session, peer, now, now)
        self.on_event("claim", peer, {"reason": reason} if reason else {})
        return "claimed"

    def release(self, session: Hashable, why: str = "release") -> bool:
        """Release control if ``session`` holds it; returns whether it did."""
        h = self._holder
        if h is None or h.session != session:
            return False
        self._holder = None
        self.on_event("release", h.peer, {"why": why, "held_s": self.clock() - h.since})
        return True

    def check_timeout(self) -> Peer | None:
        """Drop a holder that has been silent for ``timeout_s``; returns who lost control."""
        h = self._holder
        if h is None or self.timeout_s is None:
            return None
        idle = self.clock() - h.last_seen
        if idle <= self.timeout_s:
            return None
        self._holder = None
        self.on_event(
            "control_lost",
            h.peer,
            {"idle_s": idle, "timeout_s": self.timeout_s, "why": "heartbeat loss"},
        )
        return h.peer

    def require(self, session: Hashable, typ: str) -> None:
        """Raise ControlError unless ``session`` holds control (for a command ``typ``)."""
        if self.holds(session):
            return
        h = self._holder
        who = "nobody holds it: claim control first" if h is None else f"held by {h.peer}"
        raise ControlError(f"{typ} refused: this session does not hold control ({who})")
