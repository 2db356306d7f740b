"""`demoforge-bridge` entry point."""

from __future__ import annotations


def bridge_main() -> None:
    """`demoforge-bridge` (serve | record | replay | compare)."""
    from sim.bridge.commands import main

    main()
