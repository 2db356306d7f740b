"""Run the robot side (``commands.serve``) in its own process, e.g. for tests and benchmarks.

The child is started with the ``spawn`` method (no forked MuJoCo/ZeroMQ state), publishes its
bound endpoint through a ready file, and is stopped with SIGTERM (the server then disconnects
the driver cleanly) or killed outright to simulate a crash.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

from sim.errors import BridgeError


def _child(cfg: object) -> None:
    from sim.bridge.commands import serve

    serve(cfg)  # type: ignore[arg-type]


class ServerProcess:
    """``with ServerProcess(ServeConfig(...)) as p: BridgeClient(p.endpoint)``.

    The endpoint ``tcp://127.0.0.1:*`` binds a free port; :attr:`endpoint` is the bound one.
    ``dir``: where the ready file goes (a fresh folder inside it; default the system temp dir).
    """

    def __init__(
        self, cfg: object, start_timeout_s: float = 30.0, dir: str | os.PathLike | None = None
    ) -> None:
        self._dir = tempfile.mkdtemp(prefix="demoforge-bridge-", dir=dir)
        self.ready_file = Path(self._dir) / "endpoint"
        self.cfg = dataclasses.replace(cfg, ready_file=str(self.ready_file))  # type: ignore
        self.start_timeout_s = start_timeout_s
        self.proc: mp.process.BaseProcess | None = None
        self.endpoint = ""

    def start(self) -> ServerProcess:
        ctx = mp.get_context("spawn")
        self.proc = ctx.Process(target=_child, args=(self.cfg,), daemon=True)
        self.proc.start()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.endpoint = self.ready_file.read_text().strip()
                return self
            if not self.proc.is_alive():
                raise BridgeError(
                    f"bridge server process exited with code "
                    f"{self.proc.exitcode} before it was ready"
                )
            time.sleep(0.02)
        self.kill()
        raise BridgeError(f"bridge server process not ready within {self.start_timeout_s} s")

    def kill(self) -> None:
        """SIGKILL: the robot side dies without saying goodbye (crash simulation)."""
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5.0)

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM and wait; kill if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=timeout_s)
        if self.proc.is_alive():
            self.kill()
        code = self.proc.exitcode
        self.ready_file.unlink(missing_ok=True)
        try:
            os.rmdir(self._dir)
        except OSError:
            pass
        return code

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
