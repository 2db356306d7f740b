"""`demoforge-replay` entry point."""

from __future__ import annotations


def replay_main() -> None:
    """`demoforge-replay`: read a source episode and replay it (kinematic, joint or EE mode)."""
    from sim.replay import main

    main()
