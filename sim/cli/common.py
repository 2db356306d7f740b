"""What every entry point shares: one error line and exit code 2 for a SimError."""

from __future__ import annotations

import sys

from sim.errors import SimError


def fail(e: SimError) -> None:
    """Print ``demoforge: error: <message>`` to stderr and exit with status 2."""
    print(f"demoforge: error: {e}", file=sys.stderr)
    sys.exit(2)
