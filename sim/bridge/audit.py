"""Audit trail of the bridge server: who connected, who held control, what was refused.

Each event is one JSON object ``{"t", "event", "peer": {name, key, address}, ...detail}`` with
``t`` = ``time.time()`` [s]. Events: ``session_start``, ``session_end``, ``claim``, ``release``,
``takeover``, ``control_lost``, ``refused`` (a command from a session without control, or a
refused claim), ``auth_denied`` (a CURVE key not on the allow-list). They are kept in memory
(the last ``keep``) for the ``audit`` request, so a recorder can store them beside the recorded
episodes, and appended to a JSON-lines file when ``path`` is given (flushed per line; the robot
PC keeps its own copy).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger("sim.bridge.audit")


class AuditLog:
    """Thread-safe append-only event log.

    Args:
        path: JSON-lines file to append to (parents created); None = memory only.
        keep: events kept in memory.
    """

    def __init__(self, path: str | Path | None = None, keep: int = 10_000) -> None:
        self.path = None if path is None else Path(path)
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._n = 0
        self._fh = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")

    def __len__(self) -> int:
        return self._n

    def add(self, event: str, peer: dict[str, Any] | None, **detail: Any) -> dict[str, Any]:
        """Record one event (also logged at INFO, WARNING for refusals and denials)."""
        e = {"t": time.time(), "seq": 0, "event": event, "peer": peer, **detail}
        with self._lock:
            self._n += 1
            e["seq"] = self._n
            self._events.append(e)
            if self._fh is not None:
                self._fh.write(json.dumps(e, default=str) + "\n")
                self._fh.flush()
        level = {
            "refused": logging.DEBUG,
            "auth_denied": logging.WARNING,
            "takeover": logging.WARNING,
        }
        level = level.get(event, logging.INFO)
        log.log(level, "audit %s %s %s", event, peer, detail or "")
        return e

    def events(self, since: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        """Events with ``seq > since`` (oldest first), at most ``limit``."""
        with self._lock:
            out = [e for e in self._events if e["seq"] > since]
        return out[:limit]

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def to_jsonl(events: list[dict[str, Any]]) -> bytes:
    """Events as JSON-lines bytes (for staging next to a dataset)."""
    return "".join(json.dumps(e, default=str) + "\n" for e in events).encode()
